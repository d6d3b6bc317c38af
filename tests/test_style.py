"""ruff and mypy (strict on protocol/) pass on the whole tree."""

from __future__ import annotations

import subprocess
import sys

from .helpers import ROOT


def test_ruff_is_clean() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "amity"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
