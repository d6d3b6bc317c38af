"""The RSA helper process (see signing.py), run as a script: `python -P signing_helper.py`.

It reads batches on its stdin and writes one answer per item, in order, on its stdout
(lengths as 4-byte big-endian integers, every answer as a length and its bytes). A batch is
its keys (a kind byte, PRIVATE for PKCS#8 DER or PUBLIC for SubjectPublicKeyInfo DER, and
the DER) and then its items, each a kind byte and the index of its key:
- SIGN and a message: the answer is the rsa-sha256 signature;
- VERIFY, a message and a signature: the answer is one byte, VALID, INVALID, or UNCHECKED
  when the key could not be used (the node then checks itself).
It keeps only parsed keys and exits when its stdin closes, so it never outlives the node.
It imports cryptography and the standard library only, so that it stays small in memory.
"""

from __future__ import annotations

import signal
import struct
import sys
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

LENGTH = struct.Struct("!I")
READY = b"R"
PRIVATE, PUBLIC = b"P", b"U"
SIGN, VERIFY = b"S", b"V"
VALID, INVALID, UNCHECKED = b"\x01", b"\x00", b"\x02"
# Parsed keys kept: the current ones, a few from before a rotation, those of the schools a
# hosting node is signing for just now, and the peers whose deliveries it is checking.
MAX_KEYS = 256
Key = rsa.RSAPrivateKey | rsa.RSAPublicKey | None


def serve() -> None:
    """Answer batches until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the node, which closes us
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sink.write(READY)
    sink.flush()
    parsed: dict[bytes, Key] = {}
    while True:
        try:
            keys = [_read_key(source, parsed) for _ in range(_read_length(source))]
            items = [_read_item(source) for _ in range(_read_length(source))]
            for kind, key_index, message, signature in items:
                answer = _answer(kind, keys[key_index], message, signature)
                sink.write(LENGTH.pack(len(answer)) + answer)
        except EOFError:
            return
        sink.flush()


def _answer(kind: bytes, key: Key, message: bytes, signature: bytes) -> bytes:
    # rsa-sha256 as protocol/httpsig.py's rsa_sign makes it and verify_request checks it.
    if kind == SIGN:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise EOFError  # not ours to answer: stop, and the node signs itself
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    if not isinstance(key, rsa.RSAPublicKey):
        return UNCHECKED
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return INVALID
    return VALID


def _read(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise EOFError
    return data


def _read_length(source: BinaryIO) -> int:
    return int(LENGTH.unpack(_read(source, LENGTH.size))[0])


def _read_item(source: BinaryIO) -> tuple[bytes, int, bytes, bytes]:
    kind = _read(source, 1)
    key_index = _read_length(source)
    message = _read(source, _read_length(source))
    signature = _read(source, _read_length(source)) if kind == VERIFY else b""
    return kind, key_index, message, signature


def _read_key(source: BinaryIO, parsed: dict[bytes, Key]) -> Key:
    kind = _read(source, 1)
    der = kind + _read(source, _read_length(source))
    if der not in parsed:
        if len(parsed) >= MAX_KEYS:
            parsed.clear()
        parsed[der] = _load(kind, der[1:])
    return parsed[der]


def _load(kind: bytes, der: bytes) -> Key:
    try:
        if kind == PRIVATE:
            # The node's own keys: their consistency checks would cost more than the signing.
            key: object = serialization.load_der_private_key(
                der, password=None, unsafe_skip_rsa_key_validation=True
            )
        else:
            key = serialization.load_der_public_key(der)
    except ValueError:
        return None
    return key if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) else None


if __name__ == "__main__":
    serve()
