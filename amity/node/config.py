"""The node's configuration file (TOML) inside its data directory."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import tomli_w

from ..federation.follows import DEFAULT_POLICY, POLICIES
from ..protocol.discovery import HANDLE_PATTERN
from ..protocol.vocabulary import NODE_KINDS
from .errors import NodeError
from .forwarded import parse_networks

CONFIG_FILE = "amity.toml"
DATABASE_FILE = "amity.db"
KEYS_DIR = "keys"


@dataclass(frozen=True)
class NodeConfig:
    """What `amity init` decided: the node's account, kind and public address."""

    data_dir: Path
    handle: str
    kind: str
    base_url: str
    bind: str
    port: int
    # Seconds before the first retry of a failed delivery; later ones double from it.
    first_retry_seconds: float = 60.0
    # Inbox requests accepted per verified signing host: sustained per minute, and in a burst.
    inbox_per_minute: float = 600.0
    inbox_burst: int = 300
    # Who may follow without the operator's approval (federation/follows.py), and how many
    # followers one remote host may have.
    follow_policy: str = DEFAULT_POLICY
    followers_per_host: int = 1000
    # Inbox requests accepted per source address, counted before any signature is checked.
    inbox_per_minute_per_address: float = 1200.0
    inbox_burst_per_address: int = 600
    # Reverse proxies (IPs or CIDR networks) whose X-Forwarded-For names the client.
    trusted_proxies: tuple[str, ...] = ()
    # Seconds a connection may take to send a request's header, to stay idle between
    # requests, and to send an inbox body.
    header_timeout_seconds: float = 10.0
    idle_timeout_seconds: float = 30.0
    body_timeout_seconds: float = 30.0

    @property
    def host(self) -> str:
        """The authority part of the base URL, as used in acct: handles."""
        return urlsplit(self.base_url).netloc.lower()

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_FILE

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / KEYS_DIR


def check_handle(handle: str) -> str:
    """The handle, or NodeError saying what a handle may contain."""
    if not HANDLE_PATTERN.match(handle):
        raise NodeError(
            f"--name {handle!r}: use 1-64 lower-case letters, digits, '_' or '-' (like 'benito')"
        )
    return handle


def check_base_url(url: str) -> str:
    """The base URL without a trailing slash, or NodeError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NodeError(f"--base-url {url!r}: give the public address, like https://school.example")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise NodeError(
            f"--base-url {url!r}: no path, query or fragment (only scheme://host[:port])"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def check_kind(kind: str) -> str:
    if kind not in NODE_KINDS:
        raise NodeError(f"--kind {kind!r}: must be one of {', '.join(NODE_KINDS)}")
    return kind


def check_follow_policy(policy: object) -> str:
    if policy not in POLICIES:
        raise NodeError(
            f"[federation] follow_policy {policy!r}: must be one of {', '.join(POLICIES)}"
        )
    return str(policy)


def default_port(base_url: str) -> int:
    """The port to listen on when the operator gives none: the base URL's, else 8080."""
    port = urlsplit(base_url).port
    return port if port is not None else 8080


def config_exists(data_dir: Path) -> bool:
    return (data_dir / CONFIG_FILE).exists()


def write_config(config: NodeConfig) -> None:
    """Write the TOML file, readable only by the owner."""
    document = {
        "node": {"name": config.handle, "kind": config.kind, "base_url": config.base_url},
        "serve": {"bind": config.bind, "port": config.port},
    }
    path = config.data_dir / CONFIG_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        tomli_w.dump(document, handle)


def load_config(data_dir: Path) -> NodeConfig:
    """Read the node's configuration; NodeError when there is no node or it is damaged."""
    path = data_dir / CONFIG_FILE
    if not path.exists():
        raise NodeError(
            f"no Amity node in {data_dir}; create one with: amity init --data {data_dir} "
            "--name myschool --base-url https://amity.myschool.example"
        )
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
        node, serve = document["node"], document.get("serve", {})
        federation = document.get("federation", {})
        return NodeConfig(
            data_dir=data_dir,
            handle=check_handle(node["name"]),
            kind=check_kind(node["kind"]),
            base_url=check_base_url(node["base_url"]),
            bind=str(serve.get("bind", "127.0.0.1")),
            port=int(serve.get("port", default_port(node["base_url"]))),
            first_retry_seconds=float(federation.get("first_retry_seconds", 60.0)),
            follow_policy=check_follow_policy(federation.get("follow_policy", DEFAULT_POLICY)),
            followers_per_host=int(_positive(federation, "followers_per_host", 1000)),
            inbox_per_minute=_positive(federation, "inbox_per_minute", 600.0),
            inbox_burst=int(_positive(federation, "inbox_burst", 300)),
            inbox_per_minute_per_address=_positive(
                federation, "inbox_per_minute_per_address", 1200.0
            ),
            inbox_burst_per_address=int(_positive(federation, "inbox_burst_per_address", 600)),
            trusted_proxies=_trusted_proxies(federation.get("trusted_proxies", [])),
            header_timeout_seconds=_positive(federation, "header_timeout_seconds", 10.0),
            idle_timeout_seconds=_positive(federation, "idle_timeout_seconds", 30.0),
            body_timeout_seconds=_positive(federation, "body_timeout_seconds", 30.0),
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, NodeError) as exc:
        raise NodeError(f"{path} is damaged: {exc}") from exc


def _positive(table: dict[str, object], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"[federation] {key} must be a number above 0, not {value!r}")
    return float(value)


def _trusted_proxies(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError('[federation] trusted_proxies must be a list, like ["127.0.0.1"]')
    parse_networks(value)  # refuses what is not an address or network
    return tuple(str(entry) for entry in value)
