"""The project: the nearest folder upward holding settings.toml, and its import path."""

from __future__ import annotations

import sys
from pathlib import Path

SETTINGS_FILE = "settings.toml"


def find_project(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` (default: the working directory) with the file."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / SETTINGS_FILE).is_file():
            return folder
    return None


def activate(root: Path) -> None:
    """Make the project's modules (SPIDER_MODULES, pipelines) importable."""
    path = str(root)
    if path not in sys.path:
        sys.path.insert(0, path)
