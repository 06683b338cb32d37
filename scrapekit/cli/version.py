"""`scrapekit version`: scrapekit's version (and its HTTP stack's with -v)."""

from __future__ import annotations

import argparse
import platform
from importlib.metadata import version as dist_version
from typing import Any

from scrapekit._version import __version__


def register(commands: Any) -> None:
    """Add the `version` subcommand."""
    parser = commands.add_parser("version", help="print the version")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list key libraries")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print `scrapekit X.Y.Z`, plus Python and library versions with -v."""
    print(f"scrapekit {__version__}")
    if args.verbose:
        print(f"python {platform.python_version()}")
        for lib in ("httpx2", "selectolax", "structlog", "tenacity", "aiosqlite"):
            print(f"{lib} {dist_version(lib)}")
    return 0
