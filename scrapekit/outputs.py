"""Where a callback's outputs go: new requests to the scheduler, items to the outbox.

Stage 7 of the flow. A callback (or errback, or start()) yields Requests, items (see
items.py) or None; anything else is counted and logged as a "bad output" naming the callback
and the type, and the crawl goes on. A page's outputs are collected in order, to be committed
with its acknowledgement; start()'s are enqueued and committed one by one as they come, and
reading it stops once the scheduler is closed. A CloseSpider closes the scheduler; any other
exception of the callback is counted and logged (a CallbackError), and what came before it is
kept; a lost login (SessionError) goes on up to the worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from scrapekit._types import Output
from scrapekit.callbacks import callback_name
from scrapekit.exceptions import CallbackError, CloseSpider, SessionError
from scrapekit.items import is_item
from scrapekit.request import Request

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from scrapekit.scheduler import Scheduler


class OutputRouter:
    """Sorts callback outputs for the scheduler; one per crawl, shared by its workers."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        count_error: Callable[[str], None],
        start_item: Callable[[Any], Awaitable[None]],
        log: FilteringBoundLogger,
    ) -> None:
        self.scheduler = scheduler
        self._count_error = count_error
        # Commits an item start() yielded (after waiting for the outbox's room).
        self._start_item = start_item
        self._log = log

    async def route(
        self,
        outputs: AsyncIterator[Output],
        *,
        url: str,
        depth: int,
        callback: Any,
        enqueue_now: bool = False,
    ) -> tuple[list[Request], list[Any], bool]:
        """Collect the new requests and the items, in order; return them and whether the
        callback completed without raising.

        A callback exception keeps what came before it. With `enqueue_now` (the start feeder)
        requests are enqueued and items committed one by one, and reading stops once the
        scheduler is closed. `url` names the page (or "start()") for logs; new requests get
        `depth`.
        """
        requests: list[Request] = []
        items: list[Any] = []
        try:
            async for output in outputs:
                if isinstance(output, Request):
                    output.depth = depth
                    if not enqueue_now:
                        requests.append(output)
                    elif self.scheduler.close_reason is not None:
                        break
                    else:
                        await self.scheduler.enqueue(output)
                elif output is None:
                    continue
                elif is_item(output):
                    if enqueue_now:
                        await self._start_item(output)
                    else:
                        items.append(output)
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
        except SessionError:
            raise
        except Exception as exc:
            self._count_error("callback")
            error = CallbackError(callback_name(callback), url, exc)
            self._log.error("callback error", url=url, error=str(error), exc_info=exc)
            return requests, items, False
        return requests, items, True
