"""WorkerPool: the only place requests are executed.

Stage 4 of the flow. CONCURRENCY tasks live in one TaskGroup. Each loops: take a request from
the scheduler, fetch it through the shared session, run its callback (or its errback on
failure), send new requests back to the scheduler and items into the pipelines, then tell the
scheduler the request is done. A callback's exception is logged and counted; it never stops
the crawl. Reads CONCURRENCY, HTTPERROR_ALLOWED_CODES and CLOSESPIDER_{ITEM,PAGE,ERROR}COUNT.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import structlog

from scrapekit._types import Output
from scrapekit.callbacks import callback_name, run_callback
from scrapekit.exceptions import CallbackError, CloseSpider, FetchError, HttpStatusError
from scrapekit.items import is_item
from scrapekit.request import Request

if TYPE_CHECKING:
    from scrapekit.pipelines import PipelineManager
    from scrapekit.response import Response
    from scrapekit.scheduler import Scheduler
    from scrapekit.session import Session
    from scrapekit.settings import Settings
    from scrapekit.spider import Spider
    from scrapekit.stats import CrawlStats


class WorkerPool:
    """CONCURRENCY workers sharing one scheduler, one session and one pipeline chain."""

    def __init__(
        self,
        *,
        spider: Spider,
        scheduler: Scheduler,
        session: Session,
        pipelines: PipelineManager,
        stats: CrawlStats,
        settings: Settings,
    ) -> None:
        self.spider = spider
        self.scheduler = scheduler
        self.session = session
        self.pipelines = pipelines
        self.stats = stats
        self.concurrency = int(settings["CONCURRENCY"])
        self._allowed_codes = frozenset(settings["HTTPERROR_ALLOWED_CODES"])
        self._max_items = int(settings["CLOSESPIDER_ITEMCOUNT"])
        self._max_pages = int(settings["CLOSESPIDER_PAGECOUNT"])
        self._max_errors = int(settings["CLOSESPIDER_ERRORCOUNT"])
        # Bound once, after logging is configured: the hot path then skips the lazy proxy.
        self._log = structlog.get_logger("scrapekit.workers").bind(spider=spider.name)

    async def run(self) -> None:
        """Run every worker until the scheduler has nothing left (or was closed)."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(self._work())

    async def _work(self) -> None:
        scheduler = self.scheduler
        while (request := await scheduler.next_request()) is not None:
            try:
                await self.process(request)
            finally:
                await scheduler.done(request)

    # -- one request -------------------------------------------------------------------------

    async def process(self, request: Request) -> None:
        """Fetch one request and route everything its callback (or errback) produces."""
        try:
            response = await self.session.fetch(request)
        except FetchError as exc:
            await self._failed(request, exc)
            return
        stats = self.stats
        stats.pages += 1
        stats.responses_by_status[response.status] += 1
        self._log.debug(
            "response",
            method=request.method,
            url=response.url,
            status=response.status,
            elapsed=round(response.elapsed, 4),
        )
        if not (200 <= response.status < 300) and not self._status_allowed(response):
            error = HttpStatusError(
                f"{response.url}: HTTP {response.status} is not handled "
                "(set HTTPERROR_ALLOWED_CODES or meta['handle_httpstatus_list'] to receive it)",
                request=request,
                response=response,
            )
            await self._failed(request, error)
        else:
            callback = self.spider.resolve_callback(request.callback)
            await self.route(
                run_callback(callback, response, **request.cb_kwargs),
                url=request.url,
                depth=request.depth + 1,
                callback=callback,
            )
        if response.dropped_links:
            self.scheduler.count_drops(response.dropped_links)
        if self._max_pages and stats.pages >= self._max_pages:
            self.scheduler.close("closespider_pagecount")

    def _status_allowed(self, response: Response) -> bool:
        meta = response.request.meta
        if meta.get("handle_httpstatus_all"):
            return True
        status = response.status
        return status in self._allowed_codes or status in meta.get("handle_httpstatus_list", ())

    async def _failed(self, request: Request, error: FetchError) -> None:
        """A request failed for good: run its errback, or log the failure once."""
        reason = error.reason
        self._count_error(reason)
        if request.errback is not None:
            errback = self.spider.resolve_callback(request.errback, default=False)
            await self.route(
                run_callback(errback, error),
                url=request.url,
                depth=request.depth + 1,
                callback=errback,
            )
        elif isinstance(error, HttpStatusError) and error.response is not None:
            self._log.info(
                "response ignored", url=request.url, status=error.response.status, reason=reason
            )
        else:
            self._log.warning("request failed", url=request.url, reason=reason, error=str(error))

    # -- outputs -----------------------------------------------------------------------------

    async def route(
        self, outputs: AsyncIterator[Output], *, url: str, depth: int, callback: Any
    ) -> None:
        """Send each output where it belongs; a callback exception keeps what came before it.

        `url` names the page (or "start()") for logs; new requests get `depth`.
        """
        try:
            async for output in outputs:
                if isinstance(output, Request):
                    output.depth = depth
                    await self.scheduler.enqueue(output)
                elif output is None:
                    continue
                elif is_item(output):
                    await self._item(output)
                else:
                    self._count_error("bad output")
                    self._log.error(
                        "bad callback output",
                        callback=callback_name(callback),
                        url=url,
                        output_type=type(output).__name__,
                        hint="yield a Request, a dict, a dataclass or a Mapping",
                    )
        except CloseSpider as stop:
            self._log.info("close spider", reason=stop.reason, url=url)
            self.scheduler.close(stop.reason)
        except Exception as exc:
            self._count_error("callback")
            error = CallbackError(callback_name(callback), url, exc)
            self._log.error("callback error", url=url, error=str(error), exc_info=exc)

    async def _item(self, item: Any) -> None:
        if await self.pipelines.process_item(item) is None:
            return
        self.stats.items += 1
        if self._max_items and self.stats.items >= self._max_items:
            self.scheduler.close("closespider_itemcount")

    def _count_error(self, reason: str) -> None:
        self.stats.errors[reason] += 1
        if self._max_errors and self.stats.error_count >= self._max_errors:
            self.scheduler.close("closespider_errorcount")
