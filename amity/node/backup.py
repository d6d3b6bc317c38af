"""A consistent copy of a node's data directory, taken while it may be serving."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from .config import CONFIG_FILE, load_config
from .errors import NodeError


def backup_node(data_dir: Path, destination: Path) -> None:
    """Copy config, keys and the database (SQLite online backup) into a new directory."""
    config = load_config(data_dir)
    if destination.exists():
        raise NodeError(f"{destination} already exists; give a new directory")
    destination.mkdir(mode=0o700, parents=True)
    try:
        shutil.copy2(data_dir / CONFIG_FILE, destination / CONFIG_FILE)
        shutil.copytree(config.keys_dir, destination / config.keys_dir.name)
        os.chmod(destination / config.keys_dir.name, 0o700)
        source = sqlite3.connect(config.database_path)
        target = sqlite3.connect(destination / config.database_path.name)
        try:
            with target:
                source.backup(target)
        finally:
            source.close()
            target.close()
    except BaseException:
        shutil.rmtree(destination, ignore_errors=True)
        raise
