"""The process exit code of a crawl, from how it ended: one mapping for the CLI and the engine.

The meaning of each code is the CLI's EXIT_CODES table (cli/__init__.py, also in the README
and `scrapekit --help`); a test checks that every code here has its row there. The engine
records the code in the run's row (`scrapekit runs`) whether the crawl was started by the
command or by the Python API.
"""

from __future__ import annotations

import asyncio

from scrapekit.exceptions import ConfigError, CrawlRunning
from scrapekit.stats import FAILED, INTERRUPTED

OK = 0
FAILED_RUN = 1
USAGE = 2
INTERRUPTED_RUN = 3
TEMPFAIL = 75
"""EX_TEMPFAIL (sysexits.h): the spider is already running; try again later."""

#: Finish reasons of a run that ended early at a limit, cleanly: exit 0, and the next run of
#: a durable crawl continues it.
LIMITS = {
    "closespider_itemcount": "CLOSESPIDER_ITEMCOUNT",
    "closespider_pagecount": "CLOSESPIDER_PAGECOUNT",
    "closespider_timeout": "CLOSESPIDER_TIMEOUT",
}


def for_reason(finish_reason: str) -> int:
    """The exit code of a crawl that ended with `finish_reason` and raised nothing."""
    if finish_reason in FAILED:
        return FAILED_RUN
    return INTERRUPTED_RUN if finish_reason in INTERRUPTED else OK


def for_outcome(finish_reason: str, error: BaseException | None) -> int:
    """The exit code of a crawl, given the error it raised in the end (None: none)."""
    if error is None:
        return for_reason(finish_reason)
    if isinstance(error, CrawlRunning):
        return TEMPFAIL
    if isinstance(error, ConfigError):
        return USAGE
    if isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        return INTERRUPTED_RUN
    return FAILED_RUN
