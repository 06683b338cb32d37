"""Crawl statistics: the workers' counters, plus every component's own `statistics()`.

Components that own state report it themselves (scheduler, session, pipelines); this module
only counts what the workers see and assembles the final `crawl finished` record, which is
also written to STATS_FILE.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Finish reasons of a crawl that did not do its job (exit code 1; see README "exit codes").
FAILED = frozenset(
    {
        "close_timeout",  # closing took longer than CLOSE_TIMEOUT and was abandoned
        "closespider_errorcount",  # CLOSESPIDER_ERRORCOUNT errors stopped the crawl
        "config_error",  # a bad setting or jar found while setting up (exit code 2)
        "error",  # an unexpected exception ended the crawl
        "feed_error",  # a feed could not write its items
        "login_failed",  # the login failed, or was lost for good
        "no_page_succeeded",  # pages were tried, none was fetched and parsed
        "pipeline_error",  # a pipeline could not open
        "proxy_failed",  # PROXY refused the credentials (407) or could not be reached
        "start_failed",  # start() raised before its first request
        "too_many_errors",  # more than MAX_ERRORS errors
    }
)
#: Finish reasons of a crawl stopped by a signal (exit code 3): valid but incomplete output.
INTERRUPTED = frozenset({"shutdown", "killed"})


class CrawlStats:
    """Counters the workers update on the hot path: plain attributes, no locking needed."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.start_time = datetime.now(UTC)
        self.pages = 0
        self.pages_succeeded = 0
        """Pages fetched with an accepted status whose callback completed without raising."""
        self.items = 0
        self.unchanged = 0
        """Revisits (RECRAWL_AFTER) the server answered 304 Not Modified: succeeded, not parsed."""
        self.responses_by_status: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.finish_reason = "finished"
        self.failure: str | None = None
        """What failed the crawl, in one line, set by the component that failed it (a lost
        login, a feed that cannot be written); see `finish.failure_text`."""

    @property
    def elapsed(self) -> float:
        """Seconds since the crawl started."""
        return time.monotonic() - self.started

    @property
    def error_count(self) -> int:
        """All errors so far, of every kind."""
        return sum(self.errors.values())

    @property
    def serious_error_count(self) -> int:
        """Errors MAX_ERRORS counts (see `serious_errors`)."""
        return serious_errors(self.errors)

    @property
    def unsuccessful(self) -> bool:
        """Whether the crawl did not do its job: it failed (exit 1) or a signal stopped it (3)."""
        return self.finish_reason in FAILED or self.finish_reason in INTERRUPTED

    def judge(self, *, max_errors: int, dropped: Mapping[str, int]) -> str:
        """Decide the finish reason once the workers have stopped, and return it.

        A crawl that ended on its own terms (finished, a CLOSESPIDER_* limit, CloseSpider)
        still fails with more than `max_errors` errors (0 = no limit), or when it tried pages
        and none succeeded. Tried: a response came, an error was counted, or a worker refused
        a request (`dropped`, the scheduler's drops by reason; see `refused`). A crawl with
        nothing to crawl (start() yielded no request) did its job.
        """
        if self.unsuccessful:
            return self.finish_reason
        tried = self.pages or self.error_count or refused(dropped)
        if max_errors and self.serious_error_count > max_errors:
            self.finish_reason = "too_many_errors"
        elif tried and not self.pages_succeeded:
            self.finish_reason = "no_page_succeeded"
        return self.finish_reason

    def rate(self) -> float:
        """Pages per second since the start."""
        elapsed = self.elapsed
        return self.pages / elapsed if elapsed > 0 else 0.0

    def summary(
        self,
        spider: str,
        *,
        requests: int,
        dropped: Mapping[str, Any],
        items: int | None = None,
        error: str | None = None,
        **components: Any,
    ) -> dict[str, Any]:
        """The final stats record: the workers' counters plus each component's statistics.

        `requests` counts what was sent; `dropped` maps "requests"/"items" to counts by reason;
        `items` is what the feeds hold (default: the items that passed the pipelines);
        `error` says what ended a failed crawl (already redacted).
        """
        elapsed = self.elapsed
        record: dict[str, Any] = {
            "spider": spider,
            "finish_reason": self.finish_reason,
            **({"error": error} if error is not None else {}),
            "start_time": self.start_time.isoformat(timespec="seconds"),
            "finish_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "elapsed": round(elapsed, 3),
            "requests": requests,
            "pages": self.pages,
            "pages_succeeded": self.pages_succeeded,
            "pages_per_second": round(self.pages / elapsed, 2) if elapsed > 0 else 0.0,
            "items": self.items if items is None else items,
            "unchanged": self.unchanged,
            "dropped": _plain(dropped),
            "responses_by_status": {str(k): v for k, v in sorted(self.responses_by_status.items())},
            "errors": dict(sorted(self.errors.items())),
            "error_count": self.error_count,
        }
        for name, stats in components.items():
            record[name] = _plain(stats)
        return record


def serious_errors(errors: Mapping[str, int]) -> int:
    """Errors MAX_ERRORS counts, from errors by reason: all but HTTP error statuses nobody
    asked for ("http 404"), which are dead links, not a broken crawl."""
    return sum(n for reason, n in errors.items() if not reason.startswith("http "))


#: Drop reasons (or their beginnings) of a request a worker took on and gave up without a
#: page: robots.txt disallowed it (or stayed unavailable), or it redirected off-site or into
#: robots.txt. The scheduler's own drops (duplicate, depth, off-site links) are not tries.
REFUSALS = ("robots.txt", "redirect ")


def refused(dropped: Mapping[str, int]) -> int:
    """How many requests the workers refused, from the scheduler's drops by reason."""
    return sum(n for reason, n in dropped.items() if reason.startswith(REFUSALS))


def _plain(value: Any) -> Any:
    """Frozen statistics dataclasses (possibly nested) as JSON-ready dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def write_stats_file(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write the stats as JSON atomically (a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    # default=str, as in the JSON log: a statistic JSON cannot take is shown, not fatal.
    text = json.dumps(record, indent=2, ensure_ascii=False, default=str)
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, target)
