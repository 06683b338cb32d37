"""The Pipeline protocol: what a user's item pipeline looks like.

Every method is optional and may be a plain or an ``async`` function. `process_item` returns
the item (possibly changed) to pass it on, or raises `DropItem` to discard it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from scrapekit._types import ItemLike

if TYPE_CHECKING:
    from scrapekit.spider import Spider


@runtime_checkable
class Pipeline(Protocol):
    """An item pipeline stage, listed in the PIPELINES setting by dotted path and order."""

    def process_item(self, item: ItemLike, spider: Spider) -> Any:
        """Return the item (or an awaitable of it) to keep it; raise DropItem to discard it."""
        ...
