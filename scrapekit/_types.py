"""Shapes of callables and values that several stages share, named once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from scrapekit.exceptions import FetchError
    from scrapekit.request import Request
    from scrapekit.response import Response

#: What a callback may produce per output: a Request to follow, an item, or None (ignored).
ItemLike: TypeAlias = Any
Output: TypeAlias = "Request | ItemLike | None"

#: Anything a callback may return: one output, an iterable or async iterable of outputs,
#: or an awaitable of those.
CallbackOutput: TypeAlias = (
    "Output | Iterable[Output] | AsyncIterator[Output] | Awaitable[Output | Iterable[Output]]"
)

Callback: TypeAlias = "Callable[..., CallbackOutput]"
Errback: TypeAlias = "Callable[[FetchError], CallbackOutput]"
CallbackRef: TypeAlias = "Callback | str | None"

HeadersLike: TypeAlias = "Mapping[str, str] | Iterable[tuple[str, str]]"
ParamsLike: TypeAlias = "Mapping[str, str | int | float | Iterable[str | int | float]]"
ResponseHandler: TypeAlias = "Callable[[Response], CallbackOutput]"
