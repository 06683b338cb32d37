"""How a crawl ended: its finish reason, the `crawl finished` summary, and STATS_FILE.

The engine builds the crawl's components into a `Built` as it goes, so a crawl that fails
half-way still reports what it has. Once the exit stack has closed, `failure()` turns what
ended the crawl into a finish reason (and what to raise), and `report()` logs the summary
and writes STATS_FILE, for a failed crawl too. Reads STATS_FILE.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scrapekit import log as logsetup
from scrapekit.exceptions import ConfigError, PipelineError, SessionError
from scrapekit.stats import (
    FAILED,
    REFUSALS,
    CrawlStats,
    refused,
    serious_errors,
    write_stats_file,
)

if TYPE_CHECKING:
    from scrapekit.httpcache import ResponseCache
    from scrapekit.pipelines import PipelineManager, PipelineStatistics
    from scrapekit.politeness import LocalRateLimiter, RetryPolicy, RobotsCache
    from scrapekit.scheduler import Scheduler
    from scrapekit.scheduler.frontier.runs import RunStart
    from scrapekit.session import Session
    from scrapekit.session.cookiestore import CookieSync
    from scrapekit.session.login import LoginManager
    from scrapekit.settings import Settings
    from scrapekit.shutdown import StopSignals


@dataclasses.dataclass
class Built:
    """The components of a crawl built so far (None: not built, or not used)."""

    session: Session | None = None
    cookies: CookieSync | None = None
    pipelines: PipelineManager | None = None
    login: LoginManager | None = None
    limiter: LocalRateLimiter | None = None
    scheduler: Scheduler | None = None
    robots: RobotsCache | None = None
    retry: RetryPolicy | None = None
    cache: ResponseCache | None = None


def failure(
    exc: BaseException, stats: CrawlStats, signals: StopSignals, log: Any
) -> BaseException | None:
    """Record why the crawl ended on `exc`; return what to raise after the summary, if any."""
    if signals.forgive(exc):
        # Closing overran CLOSE_TIMEOUT, or a signal abandoned it: our own cancellation.
        stats.finish_reason = "killed" if signals.abandoned == "signal" else "close_timeout"
        return None
    if isinstance(exc, asyncio.CancelledError):
        if signals.phase == "setup":
            stats.finish_reason = "shutdown"
            return KeyboardInterrupt()  # a signal stopped the crawl before it started
        stats.finish_reason = "cancelled"
        return exc
    if isinstance(exc, PipelineError):
        if signals.phase == "setup":
            stats.finish_reason = "pipeline_error"  # a pipeline could not open
            return exc
        # A feed that cannot write its last items: the crawl still reports what it did.
        log.error("pipeline close failed", error=logsetup.scrub_text(str(exc)))
        stats.finish_reason = "feed_error"
        stats.failure = logsetup.error_line(exc)
        return None
    if isinstance(exc, ConfigError):
        stats.finish_reason = "config_error"  # e.g. a corrupt cookie jar
    elif isinstance(exc, SessionError):
        stats.finish_reason = exc.finish_reason  # a failed login, or a PROXY that refused
    else:
        stats.finish_reason = "error"
    return exc


def report(
    spider: str,
    built: Built,
    stats: CrawlStats,
    settings: Settings,
    error: BaseException | None,
    log: Any,
    run: RunStart,
) -> dict[str, Any]:
    """Log `crawl finished` (at ERROR for a failed crawl), write STATS_FILE; the summary.

    `run` says which run this was (summary["run"]: id, crawl, resumed, state)."""
    session = built.session.statistics() if built.session is not None else None
    scheduler = built.scheduler.statistics() if built.scheduler is not None else None
    pipelines = built.pipelines.statistics() if built.pipelines is not None else None
    summary = stats.summary(
        spider,
        requests=session.requests if session is not None else 0,
        dropped={
            "requests": scheduler.dropped if scheduler is not None else {},
            "items": pipelines.dropped if pipelines is not None else {},
        },
        items=_items_written(pipelines),
        error=failure_text(stats, settings, error, scheduler.dropped if scheduler else {}),
        scheduler=scheduler,
        retries=_statistics(built.retry),
        rate_limits=_statistics(built.limiter),
        robots=_statistics(built.robots),
        session=session,
        cookie_jar=_statistics(built.cookies),
        login=_statistics(built.login),
        httpcache=_statistics(built.cache),
        pipelines=pipelines,
        run=run,
    )
    (log.error if stats.finish_reason in FAILED else log.info)("crawl finished", **summary)
    if stats_file := settings["STATS_FILE"]:
        try:
            write_stats_file(stats_file, logsetup.redact(summary))
        except (OSError, TypeError, ValueError) as exc:  # unwritable, or not JSON after all
            log.error("stats file not written", path=str(stats_file), error=str(exc))
    return summary


def _statistics(component: Any) -> Any:
    """A component's `statistics()`, or None when it was not built."""
    return component.statistics() if component is not None else None


def _items_written(pipeline_stats: PipelineStatistics | None) -> int | None:
    """What the feeds hold, not what was handed to them (a feed that failed holds none);
    None without feeds: then the items are those that passed the pipelines."""
    if pipeline_stats is None or not pipeline_stats.feeds:
        return None
    return int(min(pipeline_stats.feeds.values()))


def failure_text(
    stats: CrawlStats,
    settings: Settings,
    error: BaseException | None,
    dropped: Mapping[str, int],
) -> str | None:
    """The `error` field of a failed crawl's summary (None for any other): one redacted line
    saying what ended it, with the numbers behind it. The CLI ends its last line with it.

    The exception that ended the crawl says it best; else the component that failed it (a
    lost login, a feed); else the counters behind the finish reason. `dropped` is the
    scheduler's drops by reason.
    """
    if error is not None and not isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        return logsetup.error_line(error)
    reason = stats.finish_reason
    if reason not in FAILED:
        return None
    words = reason.replace("_", " ")
    if stats.failure:
        text = f"{words}: {stats.failure}" if reason == "feed_error" else stats.failure
    elif reason == "no_page_succeeded":
        text = f"{words}: {_count(stats.pages, 'response')}, {_errors(stats.errors)}"
        if n := refused(dropped):
            text += f", {n} refused ({_by_reason(dropped, REFUSALS)})"
    elif reason == "too_many_errors":
        errors = {k: n for k, n in stats.errors.items() if k in _serious(stats.errors)}
        text = f"{words}: {_errors(errors)}, more than MAX_ERRORS={settings['MAX_ERRORS']}"
    elif reason == "closespider_errorcount":
        limit = settings["CLOSESPIDER_ERRORCOUNT"]
        text = f"{words}: {_errors(stats.errors)} reached CLOSESPIDER_ERRORCOUNT={limit}"
    elif reason == "start_failed":
        text = f"{words}: start() raised before its first request (see `callback error`)"
    elif reason == "close_timeout":
        text = f"{words}: closing took longer than CLOSE_TIMEOUT={settings['CLOSE_TIMEOUT']}s"
    else:
        text = words
    return logsetup.scrub_text(" ".join(text.split()))


def _serious(errors: Mapping[str, int]) -> set[str]:
    """The error reasons MAX_ERRORS counts."""
    return {reason for reason in errors if serious_errors({reason: 1})}


def _errors(errors: Mapping[str, int]) -> str:
    """ "3 errors (callback 2, network 1)": a count, and the count by reason."""
    total = sum(errors.values())
    return f"{_count(total, 'error')} ({_by_reason(errors)})" if total else _count(0, "error")


def _count(n: int, noun: str) -> str:
    """ "1 error", "3 errors"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _by_reason(counts: Mapping[str, int], prefixes: tuple[str, ...] = ("",)) -> str:
    """ "callback 2, network 1": counts by reason, those starting with one of `prefixes`."""
    return ", ".join(
        f"{reason} {n}" for reason, n in sorted(counts.items()) if n and reason.startswith(prefixes)
    )
