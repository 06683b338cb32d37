"""The `scrapekit` command: parses arguments, runs one subcommand, turns errors into exit codes.

Exit codes: 0 success; 1 the crawl failed; 2 usage or configuration error; 3 the crawl was
stopped by a signal (its output is valid but incomplete).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from scrapekit.cli import crawl, listing, session, version
from scrapekit.exceptions import ConfigError, ScrapekitError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="scrapekit", description="Run scrapekit spiders from the nearest project."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (crawl, listing, session, version):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scrapekit` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"scrapekit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ScrapekitError as exc:
        print(f"scrapekit: crawl failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("scrapekit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: keep the traceback, end with one line
        traceback.print_exc()
        print(f"scrapekit: crawl failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
