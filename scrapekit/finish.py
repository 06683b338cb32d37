"""How a crawl ended: its finish reason, the `crawl finished` summary, and STATS_FILE.

The engine builds the crawl's components into a `Built` as it goes, so a crawl that fails
half-way still reports what it has. Once the exit stack has closed, `failure()` turns what
ended the crawl into a finish reason (and what to raise), and `report()` logs the summary
and writes STATS_FILE, for a failed crawl too. Reads STATS_FILE.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

from scrapekit import log as logsetup
from scrapekit.exceptions import ConfigError, PipelineError, SessionError
from scrapekit.stats import FAILED, CrawlStats, write_stats_file

if TYPE_CHECKING:
    from scrapekit.pipelines import PipelineManager, PipelineStatistics
    from scrapekit.politeness import LocalRateLimiter, RetryPolicy, RobotsCache
    from scrapekit.scheduler import Scheduler
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
        return None
    if isinstance(exc, ConfigError):
        stats.finish_reason = "config_error"  # e.g. a corrupt cookie jar
    elif isinstance(exc, SessionError):
        stats.finish_reason = "login_failed"
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
) -> dict[str, Any]:
    """Log `crawl finished` (at ERROR for a failed crawl), write STATS_FILE; the summary."""
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
        error=_error_field(error),
        scheduler=scheduler,
        retries=_statistics(built.retry),
        rate_limits=_statistics(built.limiter),
        robots=_statistics(built.robots),
        session=session,
        cookie_jar=_statistics(built.cookies),
        login=_statistics(built.login),
        pipelines=pipelines,
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


def _error_field(error: BaseException | None) -> str | None:
    """The `error` field of a failed crawl's summary: one redacted line."""
    if error is None or isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        return None
    return logsetup.error_line(error)
