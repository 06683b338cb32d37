"""Runs a callback of any kind and streams what it produces.

Stage 6 of the flow. A callback may be a plain function, a generator, a coroutine function or
an async generator, and may return one output, an iterable of outputs or nothing. Outputs are
streamed one by one, so everything yielded before an exception is kept.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from scrapekit._types import Output
from scrapekit.items import is_item
from scrapekit.request import Request


async def iterate_output(result: Any) -> AsyncIterator[Output]:
    """Yield each output of a callback's return value, awaiting and iterating as needed."""
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return
    # A pydantic model is iterable (its field pairs): a returned item is one output. A
    # generator (most callbacks) is never an item: it skips the item check, and a crawl of
    # dict items never loads itemadapter.
    if inspect.isgenerator(result):
        for output in result:
            yield output
    elif inspect.isasyncgen(result):
        async for output in result:
            yield output
    elif isinstance(result, Request | Mapping | str | bytes) or is_item(result):
        yield result
    elif hasattr(result, "__aiter__"):
        async for output in result:
            yield output
    elif isinstance(result, Iterable):
        for output in result:
            yield output
    else:
        yield result


async def run_callback(
    callback: Callable[..., Any], *args: Any, **kwargs: Any
) -> AsyncIterator[Output]:
    """Call `callback` and iterate what it produced; any exception surfaces while iterating."""
    async for output in iterate_output(callback(*args, **kwargs)):
        yield output


def callback_name(callback: Callable[..., Any]) -> str:
    """A readable name for logs: "Books.parse_book" for a spider method."""
    owner = getattr(callback, "__self__", None)
    name = getattr(callback, "__name__", repr(callback))
    return f"{type(owner).__name__}.{name}" if owner is not None else str(name)
