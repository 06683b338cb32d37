"""Shapes of callables and values that several stages share, named once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from scrapekit.request import Request

#: An item: a dict, any other Mapping, or a dataclass instance (see `scrapekit.items`).
ItemLike: TypeAlias = Any
#: One thing a callback produces: a Request to follow, an item, or None (ignored).
Output: TypeAlias = "Request | ItemLike | None"
#: Anything a callback may return: one output, an iterable or async iterable of outputs,
#: or an awaitable of those.
CallbackOutput: TypeAlias = (
    "Output | Iterable[Output] | AsyncIterator[Output] | Awaitable[Output | Iterable[Output]]"
)
#: How a Request names its callback: the callable, a spider method's name, or None (-> parse).
CallbackRef: TypeAlias = "Callable[..., CallbackOutput] | str | None"

HeadersLike: TypeAlias = "Mapping[str, str] | Iterable[tuple[str, str]]"
ParamsLike: TypeAlias = (
    "Mapping[str, str | int | float | Iterable[str | int | float]] | Iterable[tuple[str, str]]"
)
