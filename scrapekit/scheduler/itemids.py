"""Item ids: the id each item is committed to the frontier's outbox under.

The outbox hands an item on to the pipelines once per id, so an item produced again must get
the same id, or a crash and resume would deliver it twice. A page's items are
`<page fingerprint hex>:<index>`, the same for a refetch of the page; start()'s items are
`start:<n>`, n its index among start()'s outputs (requests count too), the same in a resumed
run that skips what is stored. An item the frontier cannot store is dropped alone and counted
("unstorable item").
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import structlog

from scrapekit.scheduler.frontier.base import Frontier, PageItem

log = structlog.get_logger(__name__)


class ItemIds:
    """Gives items their ids and the frontier's record of them; drops what it cannot store."""

    def __init__(self, frontier: Frontier, dropped: Counter[str]) -> None:
        self.frontier = frontier
        self._dropped = dropped  # the scheduler's drop counts
        self._start_items = itertools.count()

    def of_page(self, page: bytes | None, items: Sequence[Any]) -> list[PageItem]:
        """The items of the page whose fingerprint is `page` (None only without items)."""
        prefix = page.hex() if page is not None else ""
        return self._stored([(f"{prefix}:{n}", item) for n, item in enumerate(items)])

    def of_start(self, items: Sequence[Any], start: int | None) -> list[PageItem]:
        """Items start() yielded, its last outputs once `start` of them were read; without
        `start` the ids number the items in the order given."""
        if start is None:
            ids = [f"start:{next(self._start_items)}" for _ in items]
        else:
            ids = [f"start:{start - len(items) + n}" for n in range(len(items))]
        return self._stored(list(zip(ids, items, strict=True)))

    def _stored(self, items: list[tuple[str, Any]]) -> list[PageItem]:
        """The items as the frontier takes them; one it cannot store is dropped alone."""
        stored = []
        for item_id, item in items:
            try:
                record = self.frontier.encode_item(item)
            except (TypeError, ValueError) as exc:
                self._dropped["unstorable item"] += 1
                log.error("item dropped", item_id=item_id, reason="unstorable item", error=str(exc))
                continue
            stored.append(PageItem(item_id, item, record))
        return stored
