"""Engine: wires the stages of a crawl together and runs it. Wiring only; no stage logic.

The flow of one crawl:

1. Settings are layered (defaults < settings.toml < custom_settings < SCRAPEKIT_* < -s) and
   validated; logging is configured from them.
2. The spider is built; its `start()` yields the first requests (and may use the session).
3. The scheduler filters every request (off-site, depth, duplicates) into the frontier.
4. Workers take requests from the scheduler ...
5. ... fetch them through the one shared session ...
6. ... and run the request's callback on the response (its errback on failure).
7. Callbacks yield new requests (back to step 3) and items ...
8. ... which flow through the ordered pipelines, feed exporters last.
9. When nothing is pending or in flight (or on CloseSpider, a CLOSESPIDER_* limit or a
   signal) every resource closes in reverse order and `crawl finished` reports the stats.

Signals: the first SIGINT/SIGTERM stops scheduling and lets in-flight requests finish; a
second one cancels them at once. Either way pipelines close, so feed files stay valid.
Reads CLOSESPIDER_TIMEOUT, LOG_LEVEL, LOG_FORMAT, PROGRESS, LOG_STATS_INTERVAL and STATS_FILE.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import structlog

from scrapekit import log as logsetup
from scrapekit.callbacks import run_callback
from scrapekit.pipelines import PipelineManager
from scrapekit.progress import ProgressReporter
from scrapekit.scheduler import DepthFilter, MemoryFrontier, OffsiteFilter, Scheduler
from scrapekit.session import Session
from scrapekit.settings import Settings
from scrapekit.spider import Spider
from scrapekit.stats import CrawlStats, write_stats_file
from scrapekit.workers import WorkerPool


@dataclass
class Crawler:
    """What a component's `from_crawler(crawler)` may read while the crawl is being built."""

    settings: Settings
    spider: Spider
    stats: CrawlStats


def crawl(
    spider_cls: type[Spider],
    settings: Settings | Mapping[str, Any] | None = None,
    **spider_kwargs: Any,
) -> dict[str, Any]:
    """Run a crawl to the end and return its stats.

    `settings` is a loaded `Settings` (as the CLI builds it) or a mapping of overrides applied
    above the defaults, the spider's custom_settings and the SCRAPEKIT_* environment. Extra
    keyword arguments become spider attributes.
    """
    return asyncio.run(crawl_async(spider_cls, settings, **spider_kwargs))


async def crawl_async(
    spider_cls: type[Spider],
    settings: Settings | Mapping[str, Any] | None = None,
    **spider_kwargs: Any,
) -> dict[str, Any]:
    """The async form of `crawl()`, for callers that already run an event loop."""
    if not isinstance(settings, Settings):
        settings = Settings.load(
            project_file=None, spider_cls=spider_cls, env=os.environ, overrides=settings
        )
    writer = logsetup.configure(settings["LOG_LEVEL"], settings["LOG_FORMAT"])
    spider = spider_cls(**spider_kwargs)
    spider.settings = settings
    stats = CrawlStats()
    log = structlog.get_logger("scrapekit.engine").bind(spider=spider.name)
    crawler = Crawler(settings=settings, spider=spider, stats=stats)

    async with AsyncExitStack() as stack:
        frontier = await stack.enter_async_context(MemoryFrontier())
        session = await stack.enter_async_context(Session.from_settings(settings))
        spider.session = session
        pipelines = await stack.enter_async_context(PipelineManager.from_crawler(crawler))
        scheduler = Scheduler(
            frontier,
            offsite=OffsiteFilter(spider.allowed_domains),
            depth=DepthFilter(int(settings["DEPTH_LIMIT"])),
        )
        pool = WorkerPool(
            spider=spider,
            scheduler=scheduler,
            session=session,
            pipelines=pipelines,
            stats=stats,
            settings=settings,
        )
        reporter = ProgressReporter(
            stats,
            scheduler,
            writer,
            live=bool(settings["PROGRESS"])
            and logsetup.use_console(settings["LOG_FORMAT"], writer.stream)
            and writer.stream.isatty(),
            interval=float(settings["LOG_STATS_INTERVAL"]),
        )
        log.info("crawl started", concurrency=pool.concurrency)
        await _run(spider, scheduler, pool, reporter, stats, settings, log)

    scheduler_stats, session_stats = scheduler.statistics(), session.statistics()
    pipeline_stats = pipelines.statistics()
    summary = stats.summary(
        spider.name,
        requests=session_stats.requests,
        dropped={"requests": scheduler_stats.dropped, "items": pipeline_stats.dropped},
        scheduler=scheduler_stats,
        session=session_stats,
        pipelines=pipeline_stats,
    )
    log.info("crawl finished", **summary)
    if stats_file := settings["STATS_FILE"]:
        write_stats_file(stats_file, summary)
    return summary


async def _run(
    spider: Spider,
    scheduler: Scheduler,
    pool: WorkerPool,
    reporter: ProgressReporter,
    stats: CrawlStats,
    settings: Settings,
    log: Any,
) -> None:
    """Run the start feeder, the workers and the reporter until the workers are done."""

    async def lazy_start() -> AsyncIterator[Any]:
        # Pull the next start request only when the frontier runs low (Scrapy 2.13 does the
        # same), so start() may read a huge URL list without holding it all in memory.
        room = 2 * pool.concurrency
        async for output in run_callback(spider.start):
            yield output
            await scheduler.wait_for_room(room)

    async def feed_start_requests() -> None:
        try:
            await pool.route(lazy_start(), url="start()", depth=0, callback=spider.start)
        finally:
            scheduler.producer_finished()

    workers = asyncio.create_task(pool.run(), name="scrapekit-workers")
    scheduler.producer_started()
    helpers = [
        asyncio.create_task(feed_start_requests(), name="scrapekit-start"),
        asyncio.create_task(reporter.run(), name="scrapekit-progress"),
    ]
    loop = asyncio.get_running_loop()
    timeout = float(settings["CLOSESPIDER_TIMEOUT"])
    timer = loop.call_later(timeout, scheduler.close, "closespider_timeout") if timeout else None

    def on_signal(signame: str) -> None:
        if scheduler.close_reason is None:
            log.warning(
                "shutting down",
                signal=signame,
                hint="in-flight requests finish; signal again to stop now",
            )
            stats.finish_reason = "shutdown"
            scheduler.close("shutdown")
        else:
            log.warning("stopping now", signal=signame)
            stats.finish_reason = "killed"
            workers.cancel()

    try:
        with _signal_handlers(loop, on_signal):
            try:
                await workers
            except asyncio.CancelledError:
                if stats.finish_reason != "killed":
                    raise
    finally:
        if timer is not None:
            timer.cancel()
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    if scheduler.close_reason is not None and stats.finish_reason == "finished":
        stats.finish_reason = scheduler.close_reason


@contextlib.contextmanager
def _signal_handlers(loop: asyncio.AbstractEventLoop, handler: Any) -> Iterator[None]:
    """Route SIGINT/SIGTERM to `handler` while the crawl runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler, sig.name)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
