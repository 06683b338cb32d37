"""Engine: wires the stages of a crawl together and runs it. Wiring only; no stage logic.

The flow of one crawl:

1. Settings are layered (defaults < settings.toml < custom_settings < SCRAPEKIT_* < -s) and
   validated; logging is configured from them.
2. The spider is built. The session is opened with the spider's headers and auth, and its
   persisted cookie jar is loaded; if the spider defines `login()`, the session is logged in
   (or found still logged in) before any page is crawled.
3. The spider's `start()` yields the first requests, pulled lazily as the frontier drains.
4. The scheduler filters every request (off-site, depth, duplicates) into the frontier.
5. The scheduler hands a request to a worker once its host's politeness gate is open (rate,
   delay, per-host concurrency, Retry-After), or at once when the HTTP cache (if on) holds
   its response; workers check robots.txt and fetch it through the one shared session
   (logging in again, once for all workers, when a page shows the login was lost), or take
   it from the cache; failures go back to the scheduler to be retried after a backoff ...
6. ... and run the request's callback on the response (its errback on failure).
7. Callbacks yield items and new requests, committed with the page's acknowledgement in
   one frontier step (new requests: back to step 4). Committed items leave the frontier's
   outbox in order, through the ordered pipelines (feed exporters last); with a durable
   frontier the feeds record how far they wrote, and a resumed crawl continues them.
8. When nothing is pending or in flight (or on CloseSpider, a CLOSESPIDER_* limit or a
   signal) the finish reason is decided (too many errors? no page succeeded?), every
   resource closes in reverse order and `crawl finished` reports the stats (`finish.py`:
   the finish reason, the summary, STATS_FILE). A crawl that fails after its checks (a
   failed login, an exception) reports them too, then raises.

Runs (see `runlog.py`, `runlock.py`): before the frontier opens, the spider's run lock is
taken (another running crawl of it: CrawlRunning, exit code 75). Opening the frontier decides
whether this run resumes the unfinished crawl or begins a new one; the first log line says
which. The run's row is kept current while it runs and gets its end, finish reason and exit
code once the summary is out, also when the crawl failed.

Signals (see `shutdown.py`): the first SIGINT/SIGTERM stops scheduling and lets in-flight
requests finish; a second cancels them at once. Pipelines and the cookie jar always close, so
feed files stay valid and the login survives; closing is bounded by CLOSE_TIMEOUT.
Reads CLOSE_TIMEOUT, CLOSESPIDER_TIMEOUT, LOG_LEVEL, LOG_FORMAT, MAX_ERRORS, PROGRESS,
LOG_STATS_INTERVAL and START_READAHEAD (STATS_FILE: `finish.py`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import structlog

from scrapekit import feedpaths, runlog, state
from scrapekit import log as logsetup
from scrapekit.exceptions import ConfigError, SettingsError
from scrapekit.finish import Built, failure, report
from scrapekit.httpcache import ResponseCache
from scrapekit.pipelines import PipelineManager
from scrapekit.pipelines.outbox import OutboxReader
from scrapekit.politeness import LocalRateLimiter, RetryPolicy, RobotsCache
from scrapekit.progress import ProgressReporter
from scrapekit.request import Request
from scrapekit.scheduler import DepthFilter, OffsiteFilter, Scheduler, UrlLengthFilter
from scrapekit.scheduler.frontier import Frontier
from scrapekit.scheduler.frontier.runs import RunStart
from scrapekit.session.login import LoginManager, has_login, login_running
from scrapekit.session.opener import open_jar, open_session
from scrapekit.session.redirects import RedirectCheck
from scrapekit.settings import Settings
from scrapekit.shutdown import StopSignals
from scrapekit.spider import Spider
from scrapekit.stats import CrawlStats
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
    keyword arguments become spider attributes. A login that fails at start raises
    LoginFailed; one lost mid-crawl ends it with finish_reason "login_failed" (the error is
    in stats["error"] and stats["login"]["error"]) once the pages in flight have finished.
    A PROXY that refuses the credentials or cannot be reached does the same with ProxyFailed
    and "proxy_failed".
    """
    return asyncio.run(crawl_async(spider_cls, settings, **spider_kwargs))


async def crawl_async(
    spider_cls: type[Spider],
    settings: Settings | Mapping[str, Any] | None = None,
    **spider_kwargs: Any,
) -> dict[str, Any]:
    """The async form of `crawl()`, for callers that already run an event loop.

    Every crawl that gets past its checks logs `crawl finished` (and writes STATS_FILE), even
    one that fails; the failure is then raised. The caller's signal handlers are restored.
    """
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
    signals = StopSignals(close_timeout=float(settings["CLOSE_TIMEOUT"]))
    session_name = state.session_name(settings, spider.name)
    state.check_writable(settings, session_name)
    built = Built()  # filled in as the crawl is built: a crawl that fails early reports it
    error: BaseException | None = None

    async with runlog.run_state(settings, spider.name, log) as frontier:
        with signals.installed():
            try:
                async with AsyncExitStack() as stack:
                    pool = await _build(stack, built, crawler, session_name, frontier)
                    reporter = ProgressReporter(
                        stats,
                        pool.scheduler,
                        writer,
                        live=bool(settings["PROGRESS"])
                        and logsetup.use_console(settings["LOG_FORMAT"], writer.stream)
                        and writer.stream.isatty(),
                        interval=float(settings["LOG_STATS_INTERVAL"]),
                    )
                    await stack.enter_async_context(
                        runlog.Recorder(frontier, stats, pool.scheduler)
                    )
                    log.info(
                        "crawl started", concurrency=pool.concurrency, session_name=session_name
                    )
                    try:
                        await _run(spider, pool.scheduler, pool, reporter, stats, settings, signals)
                        dropped = pool.scheduler.statistics().dropped
                        stats.judge(max_errors=int(settings["MAX_ERRORS"]), dropped=dropped)
                    finally:
                        signals.closing()
            except BaseException as exc:
                error = failure(exc, stats, signals, log)
            finally:
                signals.closed()
        if isinstance(error, ConfigError) and signals.phase == "setup":
            await runlog.end(frontier, stats, built.scheduler, error, settings, log)
            raise error  # like a bad setting: one line (exit code 2), nothing was crawled
        summary = report(spider.name, built, stats, settings, error, log, frontier.run_start())
        await runlog.end(frontier, stats, built.scheduler, error, settings, log)
    if error is not None:
        raise error
    return summary


async def _build(
    stack: AsyncExitStack, built: Built, crawler: Crawler, session_name: str, frontier: Frontier
) -> WorkerPool:
    """Open the crawl's components in order (each closes on `stack`, in reverse), logging
    in before the first page; record each in `built` as soon as it exists."""
    settings, spider, stats = crawler.settings, crawler.spider, crawler.stats
    # First: a corrupt cache file stops the crawl (exit code 2) before anything is fetched.
    cache = ResponseCache.from_settings(settings, spider.name)
    if cache is not None:
        built.cache = await stack.enter_async_context(cache)
    session = built.session = await open_session(stack, settings, spider)
    cookies = built.cookies = await open_jar(stack, session, settings, session_name)
    _expand_feed_paths(settings, spider.name, frontier.run_start())
    pipelines = PipelineManager.from_crawler(crawler)
    pipelines.resume_feeds(await frontier.feed_marks())  # an unfinished crawl's feeds go on
    await stack.enter_async_context(pipelines)
    built.pipelines = pipelines
    stack.push_async_exit(_before_pipelines_close(pipelines, stats))
    login = None
    if has_login(spider):
        login = built.login = LoginManager(spider, session, settings, cookies)
        await login.start(have_cookies=len(session.cookies) > 0)
    limiter = await stack.enter_async_context(LocalRateLimiter.from_settings(settings))
    built.limiter = limiter
    url_length = stack.enter_context(UrlLengthFilter(int(settings["URL_LENGTH_LIMIT"])).active())
    scheduler = built.scheduler = Scheduler(
        frontier,
        offsite=OffsiteFilter(spider.allowed_domains),
        depth=DepthFilter(int(settings["DEPTH_LIMIT"])),
        limiter=limiter,
        probe_new_hosts=bool(settings["ROBOTSTXT_OBEY"]),
        url_length=url_length,
        readahead=int(settings["START_READAHEAD"]),
        cache=cache,
    )
    robots = None
    if settings["ROBOTSTXT_OBEY"]:
        fetch = session.fetch if cache is None else cache.through(session.fetch)
        robots = built.robots = RobotsCache.from_settings(
            settings, fetch, on_crawl_delay=_crawl_delay_to(limiter)
        )
    session.redirect_check = _redirect_check(scheduler, robots, login)
    retry = built.retry = RetryPolicy.from_settings(settings)
    pool = WorkerPool(
        spider=spider,
        scheduler=scheduler,
        session=session,
        stats=stats,
        settings=settings,
        login=login,
        retry=retry,
        robots=robots,
        cache=cache,
    )
    # Entered last, so it closes first: the committed items reach the feeds, and their marks
    # are recorded, before the feeds close.
    pool.outbox = await stack.enter_async_context(
        OutboxReader(
            frontier,
            pipelines,
            stats,
            stop=scheduler.close,
            count_error=pool.count_error,
            max_items=int(settings["CLOSESPIDER_ITEMCOUNT"]),
        )
    )
    return pool


def _expand_feed_paths(settings: Settings, spider: str, run: RunStart) -> None:
    """Fill in FEEDS' {spider}, {time} and {run} with the crawl's first run's time and number,
    so a resumed crawl goes on writing the files it started (feedpaths.py)."""
    feeds = settings["FEEDS"]
    try:
        expanded = feedpaths.expand_feeds(
            feeds,
            spider=spider,
            started=run.crawl_started if run.crawl_started is not None else time.time(),
            run=run.first_run,
        )
    except feedpaths.PlaceholderError as exc:
        raise SettingsError("FEEDS", str(exc), settings.source("FEEDS")) from None
    if expanded != feeds:
        source = settings.source("FEEDS")
        settings.set("FEEDS", expanded, priority=settings.priority("FEEDS"), source=source)


def _before_pipelines_close(
    pipelines: PipelineManager, stats: CrawlStats
) -> Callable[..., Awaitable[None]]:
    """An exit callback run just before the pipelines close: it tells them how the crawl went,
    so an overwritten feed keeps its previous file when a failed crawl got no item."""

    async def mark(_type: object, exc: BaseException | None, _tb: object) -> None:
        if exc is not None or stats.unsuccessful:
            pipelines.crawl_failed()

    return mark


def _crawl_delay_to(limiter: LocalRateLimiter) -> Callable[[str, float], Awaitable[None]]:
    """Apply a robots.txt Crawl-delay to the slot of the origin it came from."""

    async def apply(origin: str, seconds: float) -> None:
        await limiter.set_delay(limiter.key_for(Request(origin + "/")), seconds)

    return apply


def _redirect_check(
    scheduler: Scheduler, robots: RobotsCache | None, login: LoginManager | None = None
) -> RedirectCheck:
    """A redirect hop passes the checks a link to its target would: admission, robots.txt.

    Except for the login: a hop to the login page is how a page says the session was lost,
    so it must reach the login lifecycle, and the lifecycle's own requests go wherever the
    site's login takes them, whatever robots.txt or allowed_domains say.
    """

    async def check(request: Request, target: str) -> str | None:
        if login is not None and (login_running() or login.is_login_page(target)):
            return None
        hop = request.replace(url=target)
        if why := scheduler.refusal(hop):
            return why
        if robots is not None and not await robots.allowed(hop):
            return "robots.txt"
        return None

    return check


async def _run(
    spider: Spider,
    scheduler: Scheduler,
    pool: WorkerPool,
    reporter: ProgressReporter,
    stats: CrawlStats,
    settings: Settings,
    signals: StopSignals,
) -> None:
    """Run the start feeder, the workers and the reporter until the workers are done."""
    started = 0

    async def lazy_start() -> AsyncIterator[Any]:
        # Pull the next start request only when the requests that could go soon run low
        # (Scrapy 2.13 does the same), so start() may read a huge URL list without holding it
        # all in memory; a throttled host's backlog does not count (see wait_for_room). A
        # resumed crawl skips what earlier runs stored (runlog.start_outputs).
        nonlocal started
        run = scheduler.frontier.run_start()
        async for output in runlog.start_outputs(spider, scheduler, run, 2 * pool.concurrency):
            started += 1
            yield output

    async def feed_start_requests() -> None:
        errors = stats.error_count
        try:
            await pool.outputs.route(
                lazy_start(), url="start()", depth=0, callback=spider.start, enqueue_now=True
            )
        finally:
            scheduler.producer_finished()
        if not started and stats.error_count > errors:
            stats.finish_reason = "start_failed"  # start() raised before its first request

    workers = asyncio.create_task(pool.run(), name="scrapekit-workers")
    scheduler.producer_started()
    helpers = [
        asyncio.create_task(feed_start_requests(), name="scrapekit-start"),
        asyncio.create_task(reporter.run(), name="scrapekit-progress"),
    ]
    loop = asyncio.get_running_loop()
    timeout = float(settings["CLOSESPIDER_TIMEOUT"])
    timer = loop.call_later(timeout, scheduler.close, "closespider_timeout") if timeout else None

    def graceful() -> None:
        stats.finish_reason = "shutdown"
        scheduler.close("shutdown")

    def immediate() -> None:
        stats.finish_reason = "killed"
        workers.cancel()

    signals.running(graceful, immediate)
    try:
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
    if pool.outbox is not None and stats.finish_reason != "killed":
        await pool.outbox.drain()  # the items committed so far count before the crawl is judged
    if scheduler.close_reason is not None and stats.finish_reason == "finished":
        stats.finish_reason = scheduler.close_reason
