"""protocol/ stays pure: importing it pulls in no I/O framework and no upper layer."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import amity.protocol

FORBIDDEN = [
    "aiohttp",
    "sqlite_utils",
    "sqlite3",
    "zeroconf",
    "click",
    "amity.node",
    "amity.federation",
    "amity.cli",
]


def test_protocol_imports_no_io_or_upper_layer() -> None:
    modules = [f"amity.protocol.{m.name}" for m in pkgutil.iter_modules(amity.protocol.__path__)]
    assert len(modules) >= 5
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + f"print([m for m in {FORBIDDEN!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_federation_does_not_import_node_or_cli() -> None:
    code = (
        "import sys, amity.federation\n"
        "print([m for m in ('amity.node', 'amity.cli') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
