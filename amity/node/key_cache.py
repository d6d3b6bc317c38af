"""Actors' keys read from keys/ on first use and kept in a bounded LRU cache, so a node
hosting thousands of schools neither reads every key file at start nor on each request."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from .keys import ActorKeys, keys_stamp, load_keys

DEFAULT_SIZE = 256


class KeyCache:
    """Keys by handle, at most `size` actors' at once (least recently used go first); a
    rotated key file (its stamp changed) is read again."""

    def __init__(self, keys_dir: Path, size: int = DEFAULT_SIZE) -> None:
        self.keys_dir = keys_dir
        self.size = size
        self._held: OrderedDict[str, tuple[tuple[int, ...], ActorKeys]] = OrderedDict()
        self._lock = threading.Lock()  # the event loop and the database thread share it

    def get(self, handle: str) -> ActorKeys:
        """The keys of `handle`; NodeError (from load_keys) when its key files are missing."""
        stamp = keys_stamp(self.keys_dir, handle)
        with self._lock:
            held = self._held.get(handle)
            if held is not None and held[0] == stamp and stamp:
                self._held.move_to_end(handle)
                return held[1]
        keys = load_keys(self.keys_dir, handle)
        self.put(handle, keys, stamp)
        return keys

    def put(self, handle: str, keys: ActorKeys, stamp: tuple[int, ...] | None = None) -> None:
        with self._lock:
            held_stamp = keys_stamp(self.keys_dir, handle) if stamp is None else stamp
            self._held[handle] = (held_stamp, keys)
            self._held.move_to_end(handle)
            while len(self._held) > self.size:
                self._held.popitem(last=False)

    def forget(self, handle: str) -> None:
        with self._lock:
            self._held.pop(handle, None)

    def __len__(self) -> int:
        return len(self._held)
