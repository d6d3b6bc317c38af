"""The node's private keys: Ed25519 for object proofs, RSA-2048 for HTTP signatures.

Each key lives in its own file under keys/, created with mode 0600.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from nacl.signing import SigningKey

from ..protocol.errors import ProtocolError
from ..protocol.multikey import decode_ed25519_secret, encode_ed25519_secret
from .errors import NodeError


@dataclass(frozen=True)
class ActorKeys:
    """One actor's key pair of each kind."""

    ed25519_seed: bytes
    rsa_private: rsa.RSAPrivateKey

    @property
    def ed25519_public(self) -> bytes:
        return bytes(SigningKey(self.ed25519_seed).verify_key)

    @property
    def ed25519_private(self) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.ed25519_seed)

    @property
    def rsa_public_pem(self) -> str:
        return (
            self.rsa_private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )


def generate_keys() -> ActorKeys:
    """Fresh keys from the operating system's randomness."""
    return ActorKeys(
        ed25519_seed=bytes(SigningKey.generate()),
        rsa_private=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


REMOVED_DIR = "removed"


def key_paths(keys_dir: Path, handle: str) -> tuple[Path, Path]:
    """The Ed25519 and RSA key files of `handle`."""
    return keys_dir / f"{handle}.ed25519", keys_dir / f"{handle}.rsa.pem"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def save_keys(keys_dir: Path, handle: str, keys: ActorKeys) -> None:
    """Write both keys, refusing to replace existing files."""
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    ed_path, rsa_path = key_paths(keys_dir, handle)
    _write_private(ed_path, (encode_ed25519_secret(keys.ed25519_seed) + "\n").encode("ascii"))
    _write_private(
        rsa_path,
        keys.rsa_private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def load_keys(keys_dir: Path, handle: str) -> ActorKeys:
    """Read an actor's keys; NodeError naming the file when one is missing or damaged."""
    ed_path, rsa_path = key_paths(keys_dir, handle)
    try:
        seed = decode_ed25519_secret(ed_path.read_text("ascii").strip())
        # Our own keys, written by save_keys: skipping the RSA consistency checks makes a
        # load about a hundred times faster (thousands of hosted schools).
        private = serialization.load_pem_private_key(
            rsa_path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
        )
    except FileNotFoundError as exc:
        raise NodeError(f"key file missing: {exc.filename} (restore it from your backup)") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm, ProtocolError) as exc:
        raise NodeError(f"key file damaged under {keys_dir}: {exc}") from exc
    if not isinstance(private, rsa.RSAPrivateKey):
        raise NodeError(f"{rsa_path} does not hold an RSA private key")
    return ActorKeys(ed25519_seed=seed, rsa_private=private)


def retire_keys(keys_dir: Path, handle: str) -> None:
    """Move an actor's key files to keys/removed/ (a removed school's, kept for the
    operator and for signing the deliveries of its withdrawal still queued)."""
    removed = keys_dir / REMOVED_DIR
    removed.mkdir(mode=0o700, exist_ok=True)
    for path in key_paths(keys_dir, handle):
        if path.exists():
            os.replace(path, removed / path.name)


def replace_keys(keys_dir: Path, handle: str, keys: ActorKeys) -> None:
    """Swap in new keys: each written to a temporary file, then renamed over the old one."""
    staging = keys_dir / f".{handle}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    save_keys(staging, handle, keys)
    for new in staging.iterdir():
        os.replace(new, keys_dir / new.name)
    staging.rmdir()


def keys_stamp(keys_dir: Path, handle: str) -> tuple[int, ...]:
    """Modification times of the key files: a change means they were rotated."""
    try:
        return tuple(path.stat().st_mtime_ns for path in key_paths(keys_dir, handle))
    except FileNotFoundError:
        return ()
