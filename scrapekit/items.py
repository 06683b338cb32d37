"""Items: what callbacks yield besides requests, and their plain-dict form for exporters.

An item is a dict, any other Mapping, or a dataclass instance. Pipelines receive it as the
callback yielded it (or, replayed after a crash, as its stored dict); exporters and storage
call `to_dict()`. While a pipeline processes an item, `current_item_id()` names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from scrapekit._types import ItemLike

#: (seq, item id) of the item the pipelines are processing: set by the outbox reader.
_CURRENT: ContextVar[tuple[int, str] | None] = ContextVar("scrapekit_item", default=None)


def current_item_id() -> str | None:
    """The stable id of the item a pipeline is processing, or None outside `process_item`.

    `"<page fingerprint hex>:<index of the item in the page>"` (`"start:<n>"` for start()
    items, n the item's index among start()'s outputs, requests included): the same when a
    page is fetched again after a crash or a resumed run reads start() on, so a pipeline
    that writes elsewhere can dedupe on it. Pipelines get each item at least once; the
    feeds exactly once.
    """
    current = _CURRENT.get()
    return None if current is None else current[1]


def current_seq() -> int | None:
    """The outbox seq of the item being processed (what a feed compares with its mark)."""
    current = _CURRENT.get()
    return None if current is None else current[0]


def is_item(obj: object) -> bool:
    """Whether a callback output is an item (a Mapping or a dataclass instance)."""
    return isinstance(obj, Mapping) or (dataclasses.is_dataclass(obj) and not isinstance(obj, type))


def to_dict(item: ItemLike) -> dict[str, Any]:
    """A shallow dict of the item's fields, in their declared order."""
    if isinstance(item, dict):
        return item
    if isinstance(item, Mapping):
        return dict(item)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    raise TypeError(
        f"{type(item).__name__} is not an item: yield a dict, a Mapping or a dataclass instance"
    )
