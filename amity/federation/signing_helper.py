"""The signing helper process (see signing.py), run as a script: `python -P signing_helper.py`.

It reads batches on its stdin and writes their signatures, in order, on its stdout
(lengths as 4-byte big-endian integers): a batch is the private keys (PKCS#8 DER) and the
messages, each with the index of its key. It keeps only parsed keys and exits when its
stdin closes, so it never outlives the node. It imports cryptography and the standard
library only, so that it stays small in memory.
"""

from __future__ import annotations

import signal
import struct
import sys
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

LENGTH = struct.Struct("!I")
READY = b"R"
# Parsed keys kept: the current ones, a few from before a rotation, and those of the
# schools a hosting node is signing for just now.
MAX_KEYS = 64


def serve() -> None:
    """Answer batches until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the node, which closes us
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sink.write(READY)
    sink.flush()
    parsed: dict[bytes, rsa.RSAPrivateKey] = {}
    while True:
        try:
            keys = [_read_key(source, parsed) for _ in range(_read_length(source))]
            count = _read_length(source)
            items = [
                (_read_length(source), _read(source, _read_length(source))) for _ in range(count)
            ]
        except EOFError:
            return
        for key_index, message in items:
            # rsa-sha256 as protocol/httpsig.py's rsa_sign makes it.
            signature = keys[key_index].sign(message, padding.PKCS1v15(), hashes.SHA256())
            sink.write(LENGTH.pack(len(signature)) + signature)
        sink.flush()


def _read(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise EOFError
    return data


def _read_length(source: BinaryIO) -> int:
    return int(LENGTH.unpack(_read(source, LENGTH.size))[0])


def _read_key(source: BinaryIO, parsed: dict[bytes, rsa.RSAPrivateKey]) -> rsa.RSAPrivateKey:
    der = _read(source, _read_length(source))
    if der not in parsed:
        if len(parsed) >= MAX_KEYS:
            parsed.clear()
        # The node's own keys: their consistency checks would cost more than the signing.
        key = serialization.load_der_private_key(
            der, password=None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise EOFError  # not ours to answer: stop, and the node signs itself
        parsed[der] = key
    return parsed[der]


if __name__ == "__main__":
    serve()
