"""The outbox reader: committed items reach the pipelines in seq order, with their ids, and a
slow pipeline holds the workers back instead of growing the backlog."""

from __future__ import annotations

import asyncio
from typing import Any

from scrapekit import Spider, current_item_id
from scrapekit.pipelines import PipelineManager
from scrapekit.pipelines.outbox import OutboxReader
from scrapekit.scheduler.frontier import MemoryFrontier
from scrapekit.scheduler.frontier.base import PageItem
from scrapekit.stats import CrawlStats


class Gate:
    """A pipeline that records each item's id and waits for its gate before passing it."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.seen: list[tuple[str | None, Any]] = []

    async def process_item(self, item: Any, spider: Spider) -> Any:
        await self.gate.wait()
        self.seen.append((current_item_id(), item))
        return item


def page(name: str, count: int) -> list[PageItem]:
    return [PageItem(f"{name}:{i}", {"page": name, "i": i}) for i in range(count)]


async def test_a_slow_pipeline_holds_commits_back() -> None:
    """With the backlog full, room() waits; once the pipeline moves it returns, and every item
    arrives in commit order with its id."""
    frontier = MemoryFrontier()
    gate = Gate()
    stopped: list[str] = []
    async with PipelineManager([gate]) as pipelines:
        reader = OutboxReader(
            frontier, pipelines, CrawlStats(), stop=stopped.append,
            count_error=lambda _: None, backlog=4, max_items=7,
        )  # fmt: skip
        async with reader:
            await reader.room()  # empty: no wait
            await frontier.commit(None, (), page("a", 3))
            await frontier.commit(None, (), page("b", 2))
            waiting = asyncio.create_task(reader.room())
            for _ in range(20):
                await asyncio.sleep(0)
            assert not waiting.done()  # 5 committed, the first held by the pipeline
            gate.gate.set()
            async with asyncio.timeout(10):  # generous: proves it did not hang
                await waiting
                await frontier.commit(None, (), page("c", 2))
                await reader.drain()
    assert [item_id for item_id, _ in gate.seen] == [
        "a:0", "a:1", "a:2", "b:0", "b:1", "c:0", "c:1",
    ]  # fmt: skip
    assert stopped == ["closespider_itemcount"]  # CLOSESPIDER_ITEMCOUNT = 7, reached once
    assert current_item_id() is None  # only while a pipeline processes an item
