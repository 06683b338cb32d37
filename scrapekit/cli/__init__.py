"""The `scrapekit` command: parses arguments, runs one subcommand, turns errors into exit codes.

Every line it prints about an error (and a crash's traceback) goes through the same redaction
as the logs, so a password in a login URL never reaches the terminal or a cron mail.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Sequence

from scrapekit import exitcodes
from scrapekit.cli import (
    check,
    crawl,
    fetch,
    genspider,
    listing,
    parse,
    runs,
    runspider,
    session,
    shell,
    showsettings,
    startproject,
    status,
    version,
)
from scrapekit.exceptions import ConfigError, CrawlRunning, ScrapekitError
from scrapekit.log import error_line, scrub_text

#: The exit codes, row for row as in the README's table (a test keeps the two the same);
#: `scrapekit --help` shows them.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (
        0,
        "the run did its job: the crawl finished, or the run stopped at a CLOSESPIDER_* limit "
        "other than CLOSESPIDER_ERRORCOUNT (--max-pages, --max-items, --max-duration: the "
        "next run continues the crawl). Some dead links (HTTP error statuses) among good pages "
        "are fine, and so is a spider with nothing to crawl (start() yields no request)",
    ),
    (
        1,
        "the run failed: a failed or lost login; a PROXY that refuses the credentials (407) "
        "or cannot be reached; more errors than MAX_ERRORS (callback and "
        "pipeline errors, requests that failed after their retries, lost logins; not HTTP "
        "statuses); no page succeeded (every page failed, got an HTTP error status no "
        "callback accepted, or was dropped by robots.txt); a feed that could not be written; "
        "CLOSESPIDER_ERRORCOUNT reached; closing overran CLOSE_TIMEOUT",
    ),
    (
        2,
        "usage or configuration error (a bad setting, an unknown spider, a corrupt cookie "
        "jar, frontier file or HTTP cache file, an unwritable STATS_FILE, state folder or "
        "jar): nothing was fetched",
    ),
    (
        3,
        "stopped by SIGINT/SIGTERM: output files are valid but the crawl is incomplete (the "
        "next run resumes it)",
    ),
    (
        75,
        "the spider is already running (its run lock is held; the line names the pid): "
        "try again later, or pass --wait",
    ),
)


def _exit_codes_epilog() -> str:
    """The EXIT_CODES table as `--help` shows it."""
    rows = [
        textwrap.fill(meaning, width=92, initial_indent=f"  {code}  ", subsequent_indent="     ")
        for code, meaning in EXIT_CODES
    ]
    return "exit codes:\n" + "\n".join(rows) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="scrapekit",
        description="Run scrapekit spiders from the nearest project.",
        epilog=_exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-C",
        "--project",
        dest="project_dir",
        metavar="DIR",
        help="run as if started in DIR (the project folder), so cron needs no cd",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands_in_help_order = (
        crawl, runspider, listing, runs, status, session,
        startproject, genspider, fetch, shell, parse, check, showsettings, version,
    )  # fmt: skip
    for module in commands_in_help_order:
        module.register(commands)
    return parser


def failure_line(command: str, exc: BaseException) -> str:
    """The last line of a failed run, naming the command (`scrapekit: parse failed: ...`)."""
    return f"scrapekit: {command} failed: {error_line(exc)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scrapekit` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.project_dir is not None:
        try:
            os.chdir(args.project_dir)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            print(f"scrapekit: error: -C {args.project_dir}: {reason}", file=sys.stderr)
            return exitcodes.USAGE
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"scrapekit: error: {error_line(exc)}", file=sys.stderr)
        return exitcodes.USAGE
    except CrawlRunning as exc:
        print(f"scrapekit: {error_line(exc)}", file=sys.stderr)
        return exitcodes.TEMPFAIL
    except ScrapekitError as exc:
        print(failure_line(args.command, exc), file=sys.stderr)
        return exitcodes.FAILED_RUN
    except KeyboardInterrupt:
        print("scrapekit: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED_RUN
    except Exception as exc:  # a bug: keep the traceback, end with one line
        sys.stderr.write(scrub_text(traceback.format_exc()))
        print(failure_line(args.command, exc), file=sys.stderr)
        return exitcodes.FAILED_RUN
