"""Placeholders in feed paths: `{spider}`, `{time}` and `{run}` (`-o out/{spider}-{time}.jsonl`).

A feed's path is checked with the settings (an unknown placeholder is a one-line error, exit 2)
and expanded once the frontier has said which crawl this run belongs to. `{time}` and `{run}`
are those of the crawl's *first* run, recorded in the frontier file: a resumed crawl expands to
the same path and goes on writing the file it started, which exactly-once delivery needs (the
feed's mark is kept under its path). A new crawl (after one finished, or `--fresh`) gets a new
time and run number. `{{` and `}}` stand for literal braces, as in `str.format`.
"""

from __future__ import annotations

import difflib
import string
import time
from collections.abc import Mapping
from typing import Any

PLACEHOLDERS = ("spider", "time", "run")
"""The names a feed path may use, each in braces."""

TIME_FORMAT = "%Y-%m-%dT%H-%M-%SZ"
"""`{time}`: the UTC start time without ":" (safe in file names everywhere), e.g.
2026-12-02T13-39-33Z; it sorts as the times do."""

_SAMPLE = {"spider": "spider", "time": "2026-01-01T00-00-00Z", "run": 1}


class PlaceholderError(ValueError):
    """A feed path whose braces do not name known placeholders."""


def used(path: str) -> set[str]:
    """The placeholders `path` uses; PlaceholderError for unknown ones or broken braces."""
    try:
        fields = [
            (name, conversion)
            for _, name, _, conversion in string.Formatter().parse(path)
            if name is not None
        ]
    except ValueError as exc:
        raise PlaceholderError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    names = set()
    for name, conversion in fields:
        if name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=1)
            hint = f"did you mean {{{close[0]}}}? " if close else ""
            known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            raise PlaceholderError(f"unknown placeholder {{{name}}}; {hint}known: {known}")
        if conversion:
            raise PlaceholderError(f"{{{name}!{conversion}}}: conversions are not supported")
        names.add(name)
    try:
        path.format(**_SAMPLE)  # a bad format spec ({run:x.y}) shows here, not mid-crawl
    except (ValueError, TypeError) as exc:
        raise PlaceholderError(f"cannot expand: {exc}") from None
    return names


def time_text(started: float) -> str:
    """`{time}` for a crawl that began at `started` (seconds since the epoch)."""
    return time.strftime(TIME_FORMAT, time.gmtime(started))


def expand(path: str, *, spider: str, started: float, run: int | None) -> str:
    """`path` with its placeholders filled in; PlaceholderError if it needs a run number and
    there is none (a memory frontier keeps no runs)."""
    names = used(path)
    if not names:
        return path.format()  # "{{" and "}}" are literal braces here too
    if "run" in names and run is None:
        raise PlaceholderError(
            '{run} needs numbered runs: use FRONTIER = "sqlite", or {time} instead'
        )
    return path.format(spider=spider, time=time_text(started), run=run)


def expand_feeds(
    feeds: Mapping[str, Any], *, spider: str, started: float, run: int | None
) -> dict[str, Any]:
    """FEEDS with every path expanded; PlaceholderError (naming the path) if two paths become
    one file or one cannot be expanded."""
    expanded: dict[str, Any] = {}
    for path, options in feeds.items():
        try:
            name = expand(path, spider=spider, started=started, run=run)
        except PlaceholderError as exc:
            raise PlaceholderError(f"feed {path!r}: {exc}") from None
        if name in expanded:
            raise PlaceholderError(f"feed {path!r} expands to {name!r}, which another feed writes")
        expanded[name] = options
    return expanded
