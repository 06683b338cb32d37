"""The outbox side of the Frontier contract: a page's items commit with its acknowledgement.

Run on every backend (the memory one keeps nothing, but numbers and hands on alike); what only
the SQLite file does (rows that outlive the process, marks, the version-1 upgrade) follows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from scrapekit import Request
from scrapekit.exceptions import FrontierError
from scrapekit.scheduler.frontier import Entry, Frontier, Lease, MemoryFrontier
from scrapekit.scheduler.frontier.base import FeedMark, OutboxItem, PageItem
from scrapekit.scheduler.frontier.sqlite import SqliteFrontier
from tests.scheduler.schema_v1 import create_v1

BACKENDS = ["memory", "sqlite"]


@dataclass
class Product:
    name: str
    price: float


class Sink:
    """What the outbox reader would get: every delivered item, in delivery order."""

    def __init__(self) -> None:
        self.got: list[OutboxItem] = []

    def __call__(self, items: Sequence[OutboxItem]) -> None:
        self.got.extend(items)


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "frontier.db"


@pytest.fixture(params=BACKENDS)
async def frontier(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Frontier]:
    backend: Frontier
    if request.param == "memory":
        backend = MemoryFrontier()
    else:
        backend = SqliteFrontier(db_path(tmp_path), busy_timeout=0.2)
    async with backend:
        yield backend


def entry(name: str) -> Entry:
    url = f"http://a.test/{name}"
    return Entry(Request(url), url.encode(), "a.test")


def items(frontier: Frontier, page: str, *objects: object) -> list[PageItem]:
    return [
        PageItem(f"{page}:{n}", obj, frontier.encode_item(obj)) for n, obj in enumerate(objects)
    ]


async def take(frontier: Frontier) -> Lease:
    got = await frontier.lease(0.0)
    assert isinstance(got, Lease)
    return got


def outbox_rows(path: Path) -> list[tuple[int, str, object]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT seq, item_id, record FROM outbox ORDER BY seq").fetchall()
    conn.close()
    return [(seq, item_id, json.loads(record)) for seq, item_id, record in rows]


async def test_items_are_delivered_in_commit_order_with_their_ids(frontier: Frontier) -> None:
    """Each commit's items reach the sink after it, numbered 1, 2, ... in commit order."""
    sink = Sink()
    frontier.deliver_to(sink)
    await frontier.push([entry("a"), entry("b")])
    first, second = await take(frontier), await take(frontier)
    assert await frontier.commit(second, [entry("c")], items(frontier, "p2", {"n": 1}, {"n": 2}))
    await frontier.commit(first, (), items(frontier, "p1", Product("x", 1.5)))
    await frontier.commit(None, (), items(frontier, "start", {"n": 0}))
    delivered = [(i.seq, i.id) for i in sink.got]
    assert delivered == [(1, "p2:0"), (2, "p2:1"), (3, "p1:0"), (4, "start:0")]
    assert sink.got[2].item == Product("x", 1.5)  # the object itself, not its record
    assert frontier.last_seq == 4
    assert len(frontier) == 1  # "c" was queued with the items


async def test_a_commit_that_fails_delivers_nothing(frontier: Frontier) -> None:
    """Committing an ended lease raises before anything is queued or delivered."""
    sink = Sink()
    frontier.deliver_to(sink)
    await frontier.push([entry("a")])
    lease = await take(frontier)
    await frontier.commit(lease, ())
    with pytest.raises(LookupError):
        await frontier.commit(lease, [entry("b")], items(frontier, "p", {"n": 1}))
    assert sink.got == []
    assert (len(frontier), frontier.last_seq) == (0, 0)


async def test_items_are_stored_as_json_objects(tmp_path: Path) -> None:
    """The outbox holds each item as a JSON object (dataclass fields, dates as text), in order."""
    import datetime

    path = db_path(tmp_path)
    async with SqliteFrontier(path) as frontier:
        await frontier.push([entry("a")])
        lease = await take(frontier)
        when = datetime.date(2026, 1, 2)
        await frontier.commit(lease, (), items(frontier, "ab", Product("é", 2.0), {"d": when}))
    assert outbox_rows(path) == [
        (1, "ab:0", {"name": "é", "price": 2.0}),
        (2, "ab:1", {"d": "2026-01-02"}),
    ]


async def test_a_failed_transaction_leaves_neither_ack_nor_items(tmp_path: Path) -> None:
    """With the file locked by another writer the commit fails: the request is still pending
    in the file, no item is in the outbox or delivered, and the lease can commit later."""
    path = db_path(tmp_path)
    sink = Sink()
    async with SqliteFrontier(path, busy_timeout=0.1) as frontier:
        frontier.deliver_to(sink)
        await frontier.push([entry("a")])
        lease = await take(frontier)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(FrontierError):
                await frontier.commit(lease, [entry("b")], items(frontier, "pa", {"n": 1}))
        finally:
            other.execute("ROLLBACK")
            other.close()
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 1
        conn.close()
        assert outbox_rows(path) == []
        assert sink.got == []
        assert frontier.leased == 1
        await frontier.commit(lease, [entry("b")], items(frontier, "pa", {"n": 1}))
        # The failed commit's seq is not reused (seqs only grow; gaps are harmless).
        assert [i.id for i in sink.got] == ["pa:0"]
        seq = sink.got[0].seq
    assert outbox_rows(path) == [(seq, "pa:0", {"n": 1})]


async def test_undelivered_items_make_the_next_run_a_resume(tmp_path: Path) -> None:
    """Nothing pending but rows in the outbox: the next run keeps them, the seen fingerprints
    and the marks, and numbers new items after them; rows come back as dicts."""
    path = db_path(tmp_path)
    async with SqliteFrontier(path) as frontier:
        await frontier.push([entry("a")])
        await frontier.record_start(1, done=True)  # start() read: only the outbox is left
        lease = await take(frontier)
        objs = [{"n": n} for n in range(5)]
        await frontier.commit(lease, (), items(frontier, "pa", *objs))
        mark = FeedMark("/out/items.jsonl", 2, 40, '{"x": 1}')
        await frontier.record_marks([mark], delivered=2)
    async with SqliteFrontier(path) as again:
        assert await again.outbox_pending() == 3
        assert await again.feed_marks() == {"/out/items.jsonl": mark}
        rows = await again.outbox_rows(0, again.last_seq, 2)
        assert [(r.seq, r.id, r.item) for r in rows] == [
            (3, "pa:2", {"n": 2}),
            (4, "pa:3", {"n": 3}),
        ]
        assert [r.seq for r in await again.outbox_rows(4, again.last_seq, 10)] == [5]
        assert not await again.push([entry("a")])  # still seen: a resume
        sink = Sink()
        again.deliver_to(sink)
        await again.commit(None, (), items(again, "start", {"n": 9}))
        assert [i.seq for i in sink.got] == [6]
        await again.record_marks([], delivered=6)
    async with SqliteFrontier(path) as fresh:  # everything delivered, nothing pending: new
        assert await fresh.outbox_pending() == 0
        assert await fresh.feed_marks() == {}
        assert await fresh.push([entry("a")]) == 1


async def test_a_version_1_file_is_upgraded_in_place(tmp_path: Path) -> None:
    """A frontier file of schema version 1 gains the outbox tables and keeps its requests."""
    path = db_path(tmp_path)
    create_v1(path).close()
    async with SqliteFrontier(path) as frontier:
        await frontier.push([entry("a")])
        lease = await take(frontier)
        await frontier.commit(lease, (), items(frontier, "pa", {"n": 1}))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
    assert outbox_rows(path) == [(1, "pa:0", {"n": 1})]


async def test_an_item_the_file_cannot_store_is_dropped_alone(tmp_path: Path) -> None:
    """A key JSON cannot hold drops that item (counted), never its neighbours."""
    from scrapekit.scheduler import Scheduler

    sink = Sink()
    async with SqliteFrontier(db_path(tmp_path)) as frontier:
        frontier.deliver_to(sink)
        scheduler = Scheduler(frontier)
        await scheduler.add_items([{"n": 1}, {(1, 2): "tuple key"}, {"n": 3}])
        assert scheduler.statistics().dropped == {"unstorable item": 1}
    assert [(i.seq, i.id, i.item) for i in sink.got] == [
        (1, "start:0", {"n": 1}),
        (2, "start:2", {"n": 3}),
    ]
