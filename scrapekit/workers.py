"""WorkerPool: the only place requests are executed.

Stage 4 of the flow. CONCURRENCY tasks live in one TaskGroup. Each loops: take a request from
the scheduler (which has already waited for the host's politeness gate), check robots.txt,
fetch it through the shared session (logging in again first if the session turned out logged
out: session/relogin.py), and then either hand it back to the scheduler to retry later (the
retry policy decides; a Retry-After pauses the whole host) or run its callback (its errback on
a final failure), collect the page's items and new requests (outputs.py), and give both back to
the scheduler with its acknowledgement: one frontier commit, after which the outbox reader
takes the items to the pipelines (pipelines/outbox.py; a worker waits for its room first, so a
slow pipeline slows the crawl rather than growing memory). A worker never sleeps: every wait
happens in the scheduler. A callback's exception is logged and counted; it never stops the
crawl. Only a lost login (LoginFailed), a PROXY that refuses the session or cannot be reached
(ProxyFailed: every request would fail alike) or an unwritable feed ends it early, all
gracefully: the scheduler is closed, the pages already in flight finish (callbacks and items
complete), then the crawl reports failure. With the HTTP cache on (httpcache/policy.py), a
request the scheduler found in the cache is answered from it: nothing is sent, the response is
not judged by the login lifecycle and gives the host's politeness no feedback; a response
fetched for real is stored once it passed the login check.
Reads CONCURRENCY, HTTPERROR_ALLOWED_CODES and CLOSESPIDER_{PAGE,ERROR}COUNT
(CLOSESPIDER_ITEMCOUNT is the outbox reader's, where items are counted).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from scrapekit.callbacks import run_callback
from scrapekit.exceptions import (
    FetchError,
    FetchTimeout,
    HttpStatusError,
    RedirectBlocked,
    SessionError,
)
from scrapekit.outputs import OutputRouter
from scrapekit.politeness.retry import GiveUp, Retry, RetryPolicy, parse_retry_after
from scrapekit.request import Request
from scrapekit.scheduler.frontier import recrawl
from scrapekit.scheduler.scheduler import Validators
from scrapekit.session.relogin import Refetch, fetch_logged_in

if TYPE_CHECKING:
    from scrapekit.httpcache import ResponseCache
    from scrapekit.pipelines.outbox import OutboxReader
    from scrapekit.politeness.robots import RobotsCache
    from scrapekit.response import Response
    from scrapekit.scheduler import Scheduler
    from scrapekit.session import Session
    from scrapekit.session.login import LoginManager
    from scrapekit.settings import Settings
    from scrapekit.spider import Spider
    from scrapekit.stats import CrawlStats


@dataclass(frozen=True, slots=True)
class Page:
    """What a finished request gives back to the scheduler, committed with its acknowledgement."""

    requests: Sequence[Request] = ()
    """The requests its callback (or errback) yielded, to be admitted."""
    items: Sequence[Any] = ()
    """The items it yielded, in order: committed to the outbox with the acknowledgement."""
    validators: Validators | None = None
    """(ETag, Last-Modified) of a page fetched for good: remembered for RECRAWL_AFTER."""


_NOTHING = Page()

#: Commits a worker keeps under way while it fetches its next pages (see `_work`).
COMMITS_AHEAD = 4


class WorkerPool:
    """CONCURRENCY workers sharing one scheduler, one session and one pipeline chain."""

    def __init__(
        self,
        *,
        spider: Spider,
        scheduler: Scheduler,
        session: Session,
        stats: CrawlStats,
        settings: Settings,
        login: LoginManager | None = None,
        retry: RetryPolicy | None = None,
        robots: RobotsCache | None = None,
        outbox: OutboxReader | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.spider = spider
        self.scheduler = scheduler
        self.session = session
        self.outbox = outbox
        self.stats = stats
        self.login = login
        self.retry = retry or RetryPolicy(enabled=False)
        self.robots = robots
        self.cache = cache
        self.concurrency = int(settings["CONCURRENCY"])
        self._allowed_codes = frozenset(settings["HTTPERROR_ALLOWED_CODES"])
        self._max_pages = int(settings["CLOSESPIDER_PAGECOUNT"])
        self._max_errors = int(settings["CLOSESPIDER_ERRORCOUNT"])
        self._retry_after_max = float(settings["RETRY_AFTER_MAX"])
        #: The error that lost the login, once one did: the crawl is then draining to a stop.
        self.session_error: SessionError | None = None
        # Bound once, after logging is configured: the hot path then skips the lazy proxy.
        self._log = structlog.get_logger("scrapekit.workers").bind(spider=spider.name)
        #: Sorts what callbacks yield; the engine routes start()'s outputs through it too.
        self.outputs = OutputRouter(
            scheduler, count_error=self.count_error, start_item=self._start_item, log=self._log
        )

    async def run(self) -> None:
        """Run every worker until the scheduler has nothing left (or was closed).

        A lost login does not cancel anything: it closes the scheduler (see `_lost_session`),
        so the other workers finish the pages they hold and then find no more work. The first
        error that escapes a worker anyway (a bug) cancels the others and is raised as itself,
        not wrapped in an ExceptionGroup.
        """
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.concurrency):
                    group.create_task(self._work(group))
        except BaseExceptionGroup as errors:
            raise errors.exceptions[0] from None

    async def _work(self, group: asyncio.TaskGroup) -> None:
        """Take requests until none is left; a page's commit lands while the next are fetched.

        A durable frontier's group commit takes a few ms to land a page. Waiting for it would
        idle the worker (and its connection) for longer than a local page takes to fetch, so
        a worker keeps up to COMMITS_AHEAD commits under way and goes on fetching. Each page
        stays leased and in flight until its commit lands (its host slot was freed when its
        response came), so a crash still refetches it and the end of the crawl still waits
        for it; a failed commit still ends the crawl.
        """
        pending: deque[asyncio.Task[None]] = deque()
        try:
            while (request := await self.scheduler.next_request()) is not None:
                page = await self._page(request)
                if page is None:  # to be fetched again later: already handed back
                    continue
                if page.items and self.outbox is not None:
                    await self.outbox.room()
                while len(pending) >= COMMITS_AHEAD:
                    await pending.popleft()
                commit = self.scheduler.done(
                    request, page.requests, page.items, validators=page.validators
                )
                pending.append(group.create_task(commit))
        finally:
            while pending:
                await pending.popleft()

    async def _page(self, request: Request) -> Page | None:
        """Process one request; None when it was handed back (a retry, a lost login)."""
        try:
            return await self.process(request)
        except SessionError as exc:
            # The page was not processed: hand it back (a durable frontier keeps it).
            await self.scheduler.release(request)
            self._lost_session(exc)
            return None
        except Exception as exc:  # a bug in scrapekit or a component: keep crawling
            self.count_error("internal")
            self._log.error("worker error", url=request.url, error=repr(exc), exc_info=exc)
            return _NOTHING
        except BaseException:  # cancelled by a second signal: the page did not finish
            await self.scheduler.release(request)
            raise

    def _lost_session(self, error: SessionError) -> None:
        """Stop handing out work and let in-flight pages finish; the crawl then ends failed."""
        if self.session_error is not None:
            return  # other workers meeting the same lost login: said once already
        self.session_error = error
        reason = error.finish_reason  # "login_failed", or "proxy_failed" for the PROXY
        self._log.error(reason.replace("_", " "), error=str(error))
        self.stats.finish_reason = reason
        self.stats.failure = str(error)
        self.scheduler.close(reason)

    # -- one request -------------------------------------------------------------------------

    async def process(self, request: Request) -> Page | None:
        """Fetch one request, run its callback or errback; return the requests and items it
        produced (to be committed together).

        Return None when the request was handed back to the scheduler for a retry.
        """
        cache = self.cache
        if self.robots is not None and not await self.robots.allowed(request):
            if cache is not None:
                cache.forget(request)
            return await self._robots_refused(request)
        if cache is not None and (response := cache.take(request)) is not None:
            return await self._respond(request, response)
        try:
            response = await fetch_logged_in(self.session, self.login, request)
        except Refetch:
            # The page crossed a re-login: fetch it again through the host's gate (not a retry).
            await self.scheduler.retry_later(request, 0.0)
            return None
        except RedirectBlocked as exc:
            self.scheduler.count_drops({exc.reason: 1})
            self._log.info("redirect dropped", url=request.url, reason=exc.reason, to=exc.target)
            return _NOTHING
        except FetchError as exc:
            await self.scheduler.feedback(
                request, status=None, latency=None, timed_out=isinstance(exc, FetchTimeout)
            )
            decision = self.retry.on_error(request, exc)
            if isinstance(decision, Retry):
                await self._retry(request, decision)
                return None
            return await self._failed(request, exc, decision)
        await self.scheduler.feedback(
            request, status=response.status, latency=response.elapsed, timed_out=False
        )
        if response.status in (429, 503):
            # The server asked for a pause: honour it for the whole host, retried or not.
            pause = parse_retry_after(response.headers.get("retry-after"))
            if pause:
                await self.scheduler.pause_host(request, min(pause, self._retry_after_max))
        if cache is not None:
            await cache.store(request, response)  # it passed the login check when fetched
        return await self._respond(request, response)

    async def _respond(self, request: Request, response: Response) -> Page | None:
        """Count the response and run its callback (or errback); None if it is retried."""
        await self.scheduler.free_slot(request)  # the host may serve its next request now
        stats = self.stats
        stats.pages += 1
        stats.responses_by_status[response.status] += 1
        self._log.debug(
            "response",
            method=request.method,
            url=response.url,
            status=response.status,
            elapsed=round(response.elapsed, 6),
            **({"cached": True} if response.cached else {}),
        )
        if self._max_pages and stats.pages >= self._max_pages:
            self.scheduler.close("closespider_pagecount")
        verdict = self.retry.on_response(request, response)
        if isinstance(verdict, Retry):
            await self._retry(request, verdict)
            return None
        revisit = request.meta.get(recrawl.META_KEY)
        if response.status == 304 and isinstance(revisit, dict):
            # A revisit the server says is unchanged: done, without a callback (unless asked).
            stats.unchanged += 1
            validators = _validators(response, revisit)
            if not self._status_allowed(response):
                stats.pages_succeeded += 1
                return Page(validators=validators)
        else:
            validators = _validators(response)
        if not (200 <= response.status < 300) and not self._status_allowed(response):
            error = HttpStatusError(
                f"{response.url}: HTTP {response.status} is not handled "
                "(set HTTPERROR_ALLOWED_CODES or meta['handle_httpstatus_list'] to receive it)",
                request=request,
                response=response,
            )
            return await self._failed(request, error, verdict)
        try:
            callback = self.spider.resolve_callback(request.callback)
        except AttributeError as exc:
            self.count_error("callback")
            self._log.error("unknown callback", url=request.url, error=str(exc))
            return _NOTHING
        new_requests, items, completed = await self.outputs.route(
            run_callback(callback, response, **request.cb_kwargs),
            url=request.url,
            depth=request.depth + 1,
            callback=callback,
        )
        if completed:
            stats.pages_succeeded += 1
        if response.dropped_links:
            self.scheduler.count_drops(response.dropped_links)
        return Page(new_requests, items, validators)

    async def _robots_refused(self, request: Request) -> Page | None:
        """Drop a request robots.txt disallows; hold it while robots.txt is unavailable.

        The robots cache bounds the holds (ROBOTSTXT_TIMEOUT): once it gives up on the host,
        `hold_for` says None and the request is dropped as "robots.txt unavailable".
        """
        assert self.robots is not None
        wait = self.robots.hold_for(request)
        if wait is not None:
            # 5xx or unreachable robots.txt: the convention is "disallow for a while", so
            # the host's requests wait (in the scheduler) for robots.txt to be fetched again.
            await self.scheduler.pause_host(request, wait)
            await self.scheduler.retry_later(request, wait)
            return None
        reason = "robots.txt unavailable" if self.robots.unavailable(request) else "robots.txt"
        self.scheduler.count_drops({reason: 1})
        self._log.debug("forbidden by robots.txt", url=request.url, reason=reason)
        return _NOTHING

    def _status_allowed(self, response: Response) -> bool:
        return status_allowed(response, self._allowed_codes)

    async def _retry(self, request: Request, decision: Retry) -> None:
        """Hand the request back to wait out its backoff (the host's pause is already set)."""
        request.meta["retry_times"] = decision.attempt - 1
        self._log.debug(
            "retrying", url=request.url, reason=decision.reason, attempt=decision.attempt,
            delay=round(decision.delay, 3),
        )  # fmt: skip
        await self.scheduler.retry_later(request, decision.delay)

    async def _failed(
        self, request: Request, error: FetchError, decision: GiveUp | None = None
    ) -> Page:
        """A request failed for good: run its errback, or log the failure once."""
        reason = error.reason
        if isinstance(error, HttpStatusError) and error.response is not None:
            reason = f"http {error.response.status}"
        self.count_error(reason)
        if request.errback is not None:
            try:
                errback = self.spider.resolve_callback(request.errback, default=False)
            except AttributeError as exc:
                self.count_error("callback")
                self._log.error("unknown errback", url=request.url, error=str(exc))
                return _NOTHING
            new_requests, items, _ = await self.outputs.route(
                run_callback(errback, error),
                url=request.url,
                depth=request.depth + 1,
                callback=errback,
            )
            return Page(new_requests, items)
        attempts = decision.attempts if decision is not None else 1
        if isinstance(error, HttpStatusError) and error.response is not None and attempts == 1:
            self._log.info(
                "response ignored", url=request.url, status=error.response.status, reason=reason
            )
        else:
            self._log.warning(
                "request failed", url=request.url, reason=reason, attempts=attempts,
                error=str(error),
            )  # fmt: skip
        return _NOTHING

    async def _start_item(self, item: Any) -> None:
        """An item start() yielded: committed on its own (no page to commit it with)."""
        if self.outbox is not None:
            await self.outbox.room()
        await self.scheduler.add_items([item], start=self.scheduler.start_read)

    def count_error(self, reason: str) -> None:
        """Count an error by reason; CLOSESPIDER_ERRORCOUNT stops the crawl (the outbox
        reader counts pipeline and feed errors here too)."""
        self.stats.errors[reason] += 1
        if self._max_errors and self.stats.error_count >= self._max_errors:
            self.scheduler.close("closespider_errorcount")


def _validators(response: Response, revisit: Mapping[str, Any] | None = None) -> Validators:
    """The response's (ETag, Last-Modified); a 304 that leaves one out keeps the stored one."""
    headers = response.headers
    etag = headers.get("etag")
    modified = headers.get("last-modified")
    if revisit is not None:
        etag = etag or revisit.get("etag")
        modified = modified or revisit.get("last_modified")
    return etag, modified


def status_allowed(response: Response, allowed_codes: Collection[int]) -> bool:
    """Whether a non-2xx response still reaches its callback: HTTPERROR_ALLOWED_CODES
    (`allowed_codes`) or the request's meta["handle_httpstatus_list"/"_all"]."""
    meta = response.request.meta
    if meta.get("handle_httpstatus_all"):
        return True
    status = response.status
    return status in allowed_codes or status in meta.get("handle_httpstatus_list", ())
