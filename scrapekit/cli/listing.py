"""`scrapekit list`: the names of the project's spiders, one per line."""

from __future__ import annotations

import argparse
from typing import Any

from scrapekit.cli.common import load_project_settings, spider_loader


def register(commands: Any) -> None:
    """Add the `list` subcommand."""
    parser = commands.add_parser("list", help="list the project's spiders")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print each spider name."""
    _, settings = load_project_settings()
    for name in spider_loader(settings).list():
        print(name)
    return 0
