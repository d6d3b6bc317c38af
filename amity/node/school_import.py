"""`amity school import`: a file of many schools checked row by row, then added in
batches, each batch in one transaction, with keys from a process pool.

Crash safety: a school's key files are written just before its transaction; a process
killed between the two leaves key files of an account that does not exist. Those are
removed before the next import adds that handle, so every school is either fully added
(account, keys, signed profile, deliveries queued) or absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol.school_row_checks import CheckedRow, check_rows
from ..protocol.school_rows import (
    MAX_IMPORT_BYTES,
    ImportRefused,
    RawRow,
    decode_text,
    read_csv,
    read_jsonl,
)
from .key_pool import KeyPool
from .keys import ActorKeys, key_paths
from .node import Node

READERS: dict[str, Callable[[str], list[RawRow]]] = {
    ".csv": read_csv,
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
}
# Schools a transaction: few enough that a serving node's own writes wait little.
BATCH = 20


@dataclass
class ImportPlan:
    """Every row of one file, checked against the node."""

    source: Path
    rows: list[CheckedRow]

    @property
    def good(self) -> list[CheckedRow]:
        return [row for row in self.rows if row.good]

    @property
    def already(self) -> list[CheckedRow]:
        """Rows whose school the node holds already with the same profile."""
        return [row for row in self.rows if row.already]

    @property
    def bad(self) -> list[CheckedRow]:
        return [row for row in self.rows if not row.good and not row.already]


def read_rows(path: Path) -> list[RawRow]:
    """The rows of a .csv or .jsonl file; ImportRefused for a problem of the whole file."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ImportRefused([(0, "give a .csv or .jsonl file (one school a row or line)")])
    with path.open("rb") as source:
        raw = source.read(MAX_IMPORT_BYTES + 1)
    return reader(decode_text(raw))


def local_accounts(node: Node, wanted: set[str]) -> dict[str, dict[str, Any] | None]:
    """Every handle of an account this node has or had; the current profile of those in
    `wanted` (the file's), None for the others."""
    db = node.store.db
    taken: dict[str, dict[str, Any] | None] = {}
    for (handle,) in db.execute("SELECT handle FROM actors UNION SELECT handle FROM accounts"):
        stored = node.store.profile(handle) if handle in wanted else None
        taken[str(handle)] = stored.data if stored else None
    return taken


def plan_import(node: Node, path: Path) -> ImportPlan:
    """Read and check every row of `path`; nothing is changed."""
    rows = read_rows(path)
    wanted = {row.handle for row in rows if isinstance(row.handle, str)}
    return ImportPlan(path, check_rows(rows, local_accounts(node, wanted)))


def clear_stray_keys(node: Node, rows: list[CheckedRow]) -> int:
    """Remove key files left by an import killed before the account was committed (the
    rows were checked: no account of theirs exists). Returns how many were removed."""
    removed = 0
    for row in rows:
        assert row.handle is not None
        for path in key_paths(node.config.keys_dir, row.handle):
            if path.exists():
                path.unlink()
                removed += 1
    return removed


Progress = Callable[[int, int], None]


def add_schools(
    node: Node,
    rows: list[CheckedRow],
    pool: KeyPool,
    progress: Progress | None = None,
    batch: int = BATCH,
) -> int:
    """Add each good row's school, `batch` schools a transaction; returns how many were
    added. `progress(added, total)` after each batch."""
    clear_stray_keys(node, rows)
    keys = pool.generate(len(rows))
    added = 0
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        _add_batch(node, chunk, [next(keys) for _ in chunk])
        added += len(chunk)
        if progress is not None:
            progress(added, len(rows))
    return added


def _add_batch(node: Node, rows: list[CheckedRow], keys: list[ActorKeys]) -> None:
    """All of `rows` in one transaction, or none (their key files removed again)."""
    try:
        with node.store.db.atomic():
            for row, row_keys in zip(rows, keys, strict=True):
                assert row.handle is not None and row.profile is not None
                node.add_school(row.handle, row.profile, keys=row_keys)
    except BaseException:
        clear_stray_keys(node, rows)
        raise
