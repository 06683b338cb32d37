"""Items: what callbacks yield besides requests, and their plain-dict form for exporters.

An item is whatever `itemadapter` (Scrapy's item layer) adapts: a dict or any other Mapping, a
dataclass, an attrs class or a pydantic model instance. Pipelines receive it as the
callback yielded it (or, replayed after a crash, as its stored dict); exporters and storage
call `to_dict()`. While a pipeline processes an item, `current_item_id()` names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING, Any

from scrapekit._types import ItemLike

if TYPE_CHECKING:
    from itemadapter import ItemAdapter

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


@cache
def adapter() -> type[ItemAdapter]:
    """itemadapter's ItemAdapter, imported on first use: it imports attrs and pydantic when
    installed (some 60 ms of start-up), which a crawl of dict items never needs."""
    from itemadapter import ItemAdapter

    return ItemAdapter


def is_item(obj: object) -> bool:
    """Whether a callback output is an item (a Mapping, dataclass, attrs or pydantic instance)."""
    # itemadapter takes only dicts among Mappings; scrapekit has always taken any Mapping.
    return isinstance(obj, Mapping) or adapter().is_item(obj)


def to_dict(item: ItemLike) -> dict[str, Any]:
    """A shallow dict of the item's fields, in their declared order (nested items stay as
    they are: the exporters' json_default turns them into objects)."""
    if type(item) is dict:
        return item
    if isinstance(item, Mapping):
        return dict(item)
    if not adapter().is_item(item):
        raise TypeError(
            f"{type(item).__name__} is not an item: yield a dict, a Mapping, a dataclass, "
            "an attrs or a pydantic instance"
        )
    return dict(adapter()(item).items())
