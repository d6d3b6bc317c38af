"""The layers stay in order (cli -> node -> federation -> protocol): importing every module
of a layer pulls in no layer above it, and protocol/ no I/O framework either."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT

UPPER = {
    "amity.protocol": [
        "amity.federation",
        "amity.node",
        "amity.cli",
        "aiohttp",
        "sqlite_utils",
        "sqlite3",
        "zeroconf",
        "click",
    ],
    "amity.federation": ["amity.node", "amity.cli"],
    "amity.node": ["amity.cli"],
}

# Run in a fresh interpreter: imports every module of one package, then reports which
# forbidden modules got loaded and where `amity` came from.
_CHECK = """
import importlib, json, pkgutil, sys
package, forbidden = sys.argv[1], json.loads(sys.argv[2])
root = importlib.import_module(package)
modules = [m.name for m in pkgutil.walk_packages(root.__path__, package + ".")]
for name in modules:
    importlib.import_module(name)
print(json.dumps({
    "origin": importlib.import_module("amity").__file__,
    "modules": modules,
    "loaded": [m for m in forbidden if m in sys.modules],
}))
"""


def upward_imports(package: str, forbidden: list[str], source_root: Path = ROOT) -> list[str]:
    """The forbidden modules that importing every module of `package` loads, with the
    `amity` package taken from `source_root`."""
    result = subprocess.run(
        [sys.executable, "-c", _CHECK, package, json.dumps(forbidden)],
        capture_output=True,
        text=True,
        cwd=source_root,
        env={**os.environ, "PYTHONPATH": str(source_root)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # The check must have read the tree it was given, and a whole layer of it.
    assert Path(report["origin"]).is_relative_to(source_root / "amity")
    assert len(report["modules"]) >= 5
    return list(report["loaded"])


@pytest.mark.parametrize("package", sorted(UPPER))
def test_layer_imports_nothing_above_it(package: str) -> None:
    assert upward_imports(package, UPPER[package]) == []


def test_the_check_reports_a_planted_upward_import(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "amity", tmp_path / "amity", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "amity" / "federation" / "planted.py").write_text("import amity.node\n")
    (tmp_path / "amity" / "protocol" / "planted.py").write_text(
        "from ..federation import relations\n"
    )
    assert upward_imports("amity.federation", UPPER["amity.federation"], tmp_path) == ["amity.node"]
    assert "amity.federation" in upward_imports("amity.protocol", UPPER["amity.protocol"], tmp_path)
    assert upward_imports("amity.node", UPPER["amity.node"], tmp_path) == []
