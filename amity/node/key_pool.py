"""Keys for many new accounts, made in a few worker processes (an RSA-2048 key takes tens
of milliseconds of one core; a bulk import needs thousands)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .keys import ActorKeys, generate_keys

# Keys a worker makes per task: fewer round trips, and still a steady stream.
_CHUNK = 4


def default_workers() -> int:
    """One worker per core the process may use, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


def _watch_parent() -> None:
    """In a worker: exit when the importing process is gone (killed with -9, say), instead
    of waiting forever on a queue whose other end this worker itself keeps open. Ctrl-C is
    for the importing process to handle (it stops the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _make_keys(count: int) -> list[tuple[bytes, bytes]]:
    """In a worker: `count` key pairs as bytes (key objects do not cross processes)."""
    made = []
    for _ in range(count):
        keys = generate_keys()
        der = keys.rsa_private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        made.append((keys.ed25519_seed, der))
    return made


def _read_keys(seed: bytes, der: bytes) -> ActorKeys:
    private = serialization.load_der_private_key(
        der, password=None, unsafe_skip_rsa_key_validation=True
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    return ActorKeys(ed25519_seed=seed, rsa_private=private)


class KeyPool:
    """Fresh keys from `workers` processes, handed out in the order asked for; with one
    worker, made in this process (no pool to start)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else max(1, workers)
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # fork: the workers need only what this process has imported already; spawn
            # would re-import the program that started it.
            method = "fork" if sys.platform.startswith("linux") else None
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_watch_parent,
            )
        return self._executor

    def generate(self, count: int) -> Iterator[ActorKeys]:
        """`count` fresh key pairs, made ahead a few tasks per worker (bounded memory)."""
        if self.workers == 1:
            for _ in range(count):
                yield generate_keys()
            return
        pool = self._pool()
        waiting: deque[Future[list[tuple[bytes, bytes]]]] = deque()
        left = count
        while left or waiting:
            while left and len(waiting) < 3 * self.workers:
                size = min(_CHUNK, left)
                waiting.append(pool.submit(_make_keys, size))
                left -= size
            for seed, der in waiting.popleft().result():
                yield _read_keys(seed, der)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> KeyPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
