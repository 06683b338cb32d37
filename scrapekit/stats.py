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

#: Finish reasons of a crawl that did not do its job (exit code 1).
FAILED = frozenset({"start_failed", "feed_error", "login_failed"})
#: Finish reasons of a crawl stopped by a signal (exit code 3): valid but incomplete output.
INTERRUPTED = frozenset({"shutdown", "killed"})


class CrawlStats:
    """Counters the workers update on the hot path: plain attributes, no locking needed."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.start_time = datetime.now(UTC)
        self.pages = 0
        self.items = 0
        self.responses_by_status: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.finish_reason = "finished"

    @property
    def elapsed(self) -> float:
        """Seconds since the crawl started."""
        return time.monotonic() - self.started

    @property
    def error_count(self) -> int:
        """All errors so far, of every kind."""
        return sum(self.errors.values())

    def rate(self) -> float:
        """Pages per second since the start."""
        elapsed = self.elapsed
        return self.pages / elapsed if elapsed > 0 else 0.0

    def summary(
        self, spider: str, *, requests: int, dropped: Mapping[str, Any], **components: Any
    ) -> dict[str, Any]:
        """The final stats record: the workers' counters plus each component's statistics.

        `requests` counts what was sent; `dropped` maps "requests"/"items" to counts by reason.
        """
        elapsed = self.elapsed
        record: dict[str, Any] = {
            "spider": spider,
            "finish_reason": self.finish_reason,
            "start_time": self.start_time.isoformat(timespec="seconds"),
            "finish_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "elapsed": round(elapsed, 3),
            "requests": requests,
            "pages": self.pages,
            "pages_per_second": round(self.pages / elapsed, 2) if elapsed > 0 else 0.0,
            "items": self.items,
            "dropped": _plain(dropped),
            "responses_by_status": {str(k): v for k, v in sorted(self.responses_by_status.items())},
            "errors": dict(sorted(self.errors.items())),
            "error_count": self.error_count,
        }
        for name, stats in components.items():
            record[name] = _plain(stats)
        return record


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
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
