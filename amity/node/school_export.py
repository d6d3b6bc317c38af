"""A school's export: what it needs to run its own node (`amity school export`), and the
reader `amity init --from` starts that node with.

Layout of the export directory (mode 0700, every file 0600; the keys are secret):

    manifest.json          format, version, handle, kind, old actor id and base URL,
                           export time, the SHA-256 of every other file; signed with the
                           school's Ed25519 key (eddsa-jcs-2022)
    keys/HANDLE.ed25519    the Ed25519 key (object proofs), as under a node's keys/
    keys/HANDLE.rsa.pem    the RSA key (HTTP signatures)
    profile.json           the profile in its import format (null: none published)
    profile.signed.json    the signed profile document as last published (or null)
    followers.json         [{actor, inbox, follow_id, created}]
    following.json         [{actor, state, created, document}] (document: the actor as
                           last fetched, or null)
    partnerships.json      every proposal and partnership row, its object with its proofs
    endorsements.json      the endorsements the school holds (signed by their authorities)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..federation import actor_cache, endorsement_store
from ..federation import partnership_store as store
from ..protocol.errors import ProtocolError
from ..protocol.partnership import read_partnership
from ..protocol.profile import validate_profile
from ..protocol.proofs import sign_document, verify_document
from .errors import NodeError
from .keys import ActorKeys, load_keys, save_keys
from .node import Node

EXPORT_FORMAT = "amity-school-export"
EXPORT_VERSION = 1
MANIFEST = "manifest.json"
DATA_FILES = (
    "profile.json",
    "profile.signed.json",
    "followers.json",
    "following.json",
    "partnerships.json",
    "endorsements.json",
)
MAX_FILE_BYTES = 256 * 1024 * 1024  # a school with many followers still fits


@dataclass(frozen=True)
class SchoolExport:
    """A checked export: the manifest's facts, the keys and the data files."""

    handle: str
    kind: str
    actor: str
    base_url: str
    exported: str
    keys: ActorKeys
    profile: dict[str, Any] | None
    signed_profile: dict[str, Any] | None
    followers: list[dict[str, Any]]
    following: list[dict[str, Any]]
    partnerships: list[dict[str, Any]]
    endorsements: list[dict[str, Any]]


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _school_data(node: Node, handle: str) -> dict[str, Any]:
    """Every data file's content for the school `handle`."""
    db = node.store.db
    stored = node.store.profile(handle)
    followers = [
        {"actor": r[0], "inbox": r[1], "follow_id": r[2], "created": r[3]}
        for r in db.execute(
            "SELECT actor, inbox, follow_id, created FROM followers WHERE handle = ? "
            "ORDER BY created, actor",
            [handle],
        ).fetchall()
    ]
    following = []
    for actor, state, created in db.execute(
        "SELECT actor, state, created FROM following WHERE handle = ? AND state != 'rejected' "
        "ORDER BY created, actor",
        [handle],
    ).fetchall():
        cached = actor_cache.cached_actor(db, actor)
        following.append(
            {"actor": actor, "state": state, "created": created, "document": cached and cached[0]}
        )
    rows = [
        {k: v for k, v in proposal.__dict__.items()} for proposal in store.proposals(db, handle)
    ]
    return {
        "profile.json": stored.data if stored else None,
        "profile.signed.json": stored.document if stored else None,
        "followers.json": followers,
        "following.json": following,
        "partnerships.json": rows,
        "endorsements.json": endorsement_store.held_documents(db, node.now(), node.urls.id),
    }


def export_school(node: Node, handle: str, directory: Path) -> list[str]:
    """Write the export of the school `handle` into `directory` (new, or empty); returns
    the files written. Nothing is left behind on failure."""
    node = node.for_school(handle)  # NodeError naming `amity school list` if unknown
    if node.kind != "school":
        raise NodeError(f"{handle} is a {node.kind}; only schools are exported")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise NodeError(f"{directory} exists and is not empty; give a new or empty directory")
    created = not directory.exists()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        save_keys(directory / "keys", handle, node.keys)
        with node.store.db.atomic():  # one consistent reading, while the node may serve
            files = _school_data(node, handle)
        for name, value in files.items():
            _write(directory / name, _json_bytes(value))
        names = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
        exported = node.now()
        manifest: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "handle": handle,
            "kind": node.kind,
            "actor": node.urls.id,
            "baseUrl": node.config.base_url,
            "exported": exported,
            "files": {name: _sha256(directory / name) for name in names},
        }
        signed = sign_document(manifest, node.keys.ed25519_seed, node.urls.ed25519_key_id, exported)
        _write(directory / MANIFEST, _json_bytes(signed))
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for child in directory.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    return [MANIFEST, *names]


def _load_json(path: Path, shown: str) -> Any:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise NodeError(f"{shown} is over {MAX_FILE_BYTES // 2**20} MiB")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise NodeError(f"{shown} is damaged: not JSON ({exc})") from exc


def read_export(directory: Path) -> SchoolExport:
    """The export in `directory`, checked: manifest format and proof, every file's
    SHA-256, the keys, the signed profile; NodeError saying what is wrong."""
    hint = "make one on the old node with: amity school export HANDLE DIR"
    manifest_path = directory / MANIFEST
    if not directory.exists():
        raise NodeError(
            f"{directory} does not exist; give the directory `amity school export` wrote ({hint})"
        )
    if (directory.parent / MANIFEST).is_file():
        raise NodeError(
            f"{directory} is inside an export; give the export itself: --from {directory.parent}"
        )
    if not directory.is_dir() or not manifest_path.is_file():
        raise NodeError(f"{directory} is not an Amity school export (no {MANIFEST}); {hint}")
    manifest = _load_json(manifest_path, str(manifest_path))
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise NodeError(f"{directory} is not an Amity school export ({MANIFEST}); {hint}")
    if manifest.get("version") != EXPORT_VERSION:
        raise NodeError(
            f"{directory} is an export of format version {manifest.get('version')!r}; this "
            f"Amity reads version {EXPORT_VERSION} (upgrade Amity)"
        )
    files = manifest.get("files")
    handle, actor = manifest.get("handle"), manifest.get("actor")
    if not (isinstance(files, dict) and isinstance(handle, str) and isinstance(actor, str)):
        raise NodeError(f"{manifest_path} is damaged: no files, handle or actor")
    expected = {*DATA_FILES, f"keys/{handle}.ed25519", f"keys/{handle}.rsa.pem"}
    if set(files) != expected:
        raise NodeError(f"{manifest_path} is damaged: it does not list the export's files")
    for name, digest in files.items():
        path = directory / name
        if not path.is_file():
            raise NodeError(f"{path} is missing from the export; export the school again")
        if _sha256(path) != digest:
            raise NodeError(
                f"{path} is damaged or was changed since the export (its SHA-256 is not the "
                "manifest's); export the school again"
            )
    keys = load_keys(directory / "keys", handle)
    try:
        verify_document(manifest, keys.ed25519_public)
    except ProtocolError as exc:
        raise NodeError(
            f"{manifest_path} was changed since the export: its proof does not verify with "
            "the exported key"
        ) from exc
    data = {name: _load_json(directory / name, str(directory / name)) for name in DATA_FILES}
    profile, signed = data["profile.json"], data["profile.signed.json"]
    try:
        if profile is not None:
            validate_profile(profile)
        if signed is not None:
            verify_document(signed, keys.ed25519_public)
            if signed.get("attributedTo") != actor:
                raise NodeError(f"{directory}/profile.signed.json is another school's")
        for row in data["partnerships.json"]:
            read_partnership(row["document"], require_proof=False)
    except (ProtocolError, KeyError, TypeError, AttributeError) as exc:
        raise NodeError(f"{directory} is damaged: {exc}") from exc
    return SchoolExport(
        handle=handle,
        kind=str(manifest.get("kind")),
        actor=actor,
        base_url=str(manifest.get("baseUrl")),
        exported=str(manifest.get("exported")),
        keys=keys,
        profile=profile,
        signed_profile=signed,
        followers=list(data["followers.json"]),
        following=list(data["following.json"]),
        partnerships=list(data["partnerships.json"]),
        endorsements=list(data["endorsements.json"]),
    )
