"""How the SQLite frontier keeps SQLite off the hot path: group commit and the read-ahead.

Writes made together share a transaction and fail together; leases come from rows read ahead,
which stay rows in the file until their commit, so a crash loses none of them. The ordering
these must not change is in test_frontier.py (run on every backend, and with a short
read-ahead); here is what only the SQLite frontier does.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from scrapekit import Request
from scrapekit.exceptions import FrontierError
from scrapekit.scheduler import Scheduler
from scrapekit.scheduler.frontier import Entry, Lease
from scrapekit.scheduler.frontier.sqlite import SqliteFrontier
from scrapekit.scheduler.frontier.sqlite_batch import GroupCommit, Outcome, Work


def entry(url: str, key: str = "a.test", *, meta: dict[str, object] | None = None) -> Entry:
    return Entry(Request(url, meta=meta), url.encode(), key)


async def take(frontier: SqliteFrontier, now: float = 0.0) -> Lease:
    got = await frontier.lease(now)
    assert isinstance(got, Lease), f"nothing to lease: next at {got}"
    return got


async def drain(frontier: SqliteFrontier, now: float = 0.0) -> list[str]:
    urls = []
    while isinstance(got := await frontier.lease(now), Lease):
        urls.append(got.request.url)
        await frontier.commit(got, ())
    return urls


def rows(db: Path, where: str = "1") -> list[str]:
    """The URLs of the file's request rows, read by another connection (in id order)."""
    with sqlite3.connect(db) as conn:
        found = conn.execute(f"SELECT record FROM requests WHERE {where} ORDER BY id").fetchall()
    conn.close()
    return [Request.from_record(json.loads(record)).url for (record,) in found]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "shop" / "frontier.db"


async def test_commits_made_together_share_a_transaction(db: Path) -> None:
    """Sixteen pages committed at once cost one or two transactions, not sixteen."""
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry(f"http://a.test/{i}") for i in range(16)])
        leases = [await take(frontier) for _ in range(16)]
        before = frontier.transactions
        done = await asyncio.gather(
            *(frontier.commit(lease, [entry(f"{lease.request.url}/n")]) for lease in leases)
        )
        assert done == [1] * 16
        assert 1 <= frontier.transactions - before <= 2
        assert (len(frontier), frontier.leased) == (16, 0)
    assert len(rows(db)) == 16


async def test_a_failing_batch_fails_each_of_its_writes_and_applies_none(db: Path) -> None:
    """One write that cannot be stored fails its whole batch: every caller gets the error, no
    row of the batch is in the file, each lease is still held and nothing is marked seen; the
    next batch goes through."""
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1"), entry("http://a.test/2")])
        first, second = await take(frontier), await take(frontier)
        before = frontier.statistics()
        other = sqlite3.connect(db, isolation_level=None)
        other.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON requests WHEN NEW.record LIKE '%poison%' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        )
        results = await asyncio.gather(
            frontier.push([entry("http://c.test/alone", "c.test")]),  # goes first, alone
            # made while that one is in the thread: these three go together
            frontier.commit(first, [entry("http://a.test/ok")]),
            frontier.commit(second, [entry("http://a.test/poison")]),
            frontier.push([entry("http://b.test/other", "b.test")]),
            return_exceptions=True,
        )
        assert results[0] == 1
        assert all(isinstance(r, FrontierError) for r in results[1:]), results
        assert "could not be written (poisoned row)" in str(results[1])
        assert frontier.statistics().pushed == before.pushed + 1
        assert (frontier.leased, len(frontier)) == (2, 1)
        assert rows(db) == ["http://a.test/1", "http://a.test/2", "http://c.test/alone"]
        assert not frontier.seen_before(b"http://a.test/ok")
        other.execute("DROP TRIGGER poison")
        other.close()
        assert await frontier.commit(first, [entry("http://a.test/ok")]) == 1
        assert await frontier.retry(second, 5.0) is None
        assert await frontier.push([entry("http://b.test/other", "b.test")]) == 1
        assert await drain(frontier) == [
            "http://c.test/alone",
            "http://a.test/ok",
            "http://b.test/other",
        ]


async def test_a_small_batch_waits_for_more_writes_up_to_its_hold() -> None:
    """Every batch costs the loop GIL hand-offs with the thread: once writes come in company,
    a batch below FULL writes waits up to HOLD for more, and a full one goes at once; a lone
    writer awaiting each write is never held."""
    sent: list[int] = []

    def send(works: list[Work], landed: Callable[[Outcome], None]) -> None:
        sent.append(len(works))
        asyncio.get_running_loop().call_soon(landed, (True, [None] * len(works)))

    async def turns(count: int = 5) -> None:
        for _ in range(count):
            await asyncio.sleep(0)

    lone = GroupCommit(asyncio.Lock(), send, full=3, hold=60.0)
    for _ in range(3):
        await asyncio.wait_for(lone.submit(_nothing, _nothing), 5)
    assert sent == [1, 1, 1]
    batches = GroupCommit(asyncio.Lock(), send, full=3, hold=60.0)
    # Three at once: the first goes alone, the two made while it is out go together.
    await asyncio.gather(*(batches.submit(_nothing, _nothing) for _ in range(3)))
    assert sent[3:] == [1, 2]
    held = [asyncio.create_task(batches.submit(_nothing, _nothing)) for _ in range(2)]
    await turns()
    assert sent[3:] == [1, 2]  # two of three, after a batch with company: held
    await asyncio.gather(*held, batches.submit(_nothing, _nothing))
    assert sent[3:] == [1, 2, 3]
    short = GroupCommit(asyncio.Lock(), send, full=3, hold=0.01)
    await asyncio.gather(*(short.submit(_nothing, _nothing) for _ in range(3)))
    await asyncio.wait_for(short.submit(_nothing, _nothing), 5)  # sent when its hold ends
    assert sent[6:] == [1, 2, 1]


def _nothing(_: object) -> None:
    return None


async def test_a_cancelled_caller_leaves_its_write_to_land(db: Path) -> None:
    """A write belongs to the queue once made: cancelling its caller does not undo it, and
    memory and file agree on it."""
    async with SqliteFrontier(db) as frontier:
        pushing = asyncio.create_task(frontier.push([entry("http://a.test/x")]))
        await asyncio.sleep(0)  # the write is queued
        pushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pushing
        assert await frontier.push([entry("http://a.test/x")]) == 0  # after it, in order
        assert len(frontier) == 1
        assert await drain(frontier) == ["http://a.test/x"]


async def test_a_known_duplicate_is_dropped_before_it_is_encoded(db: Path) -> None:
    """A link to a page already seen is dropped as a duplicate, not encoded first: here its
    meta could not even be stored, and it still counts as a duplicate."""
    async with SqliteFrontier(db) as frontier:
        scheduler = Scheduler(frontier)
        assert await scheduler.enqueue(Request("http://a.test/start"))
        page = await scheduler.next_request()
        assert page is not None
        await scheduler.done(
            page,
            [Request("http://a.test/start", meta={"s": {1}}), Request("http://a.test/next")],
        )
        assert scheduler.statistics().dropped == {"duplicate": 1}
        assert len(frontier) == 1


async def test_the_read_ahead_is_bounded_across_hosts(db: Path) -> None:
    """Leasing from a hundred hosts with deep queues of large requests holds about the cap of
    rows read ahead, not a hundred hosts' worth; the order across hosts is unchanged."""
    not_the_cache = [tracemalloc.Filter(inclusive=False, filename_pattern="*/_cache.py")]
    blob = "x" * 5120
    async with SqliteFrontier(db, read_ahead=8, read_ahead_cap=16) as frontier:
        for i in range(8):  # first in, first out across hosts: one of each host in turn
            await frontier.push(
                [entry(f"http://h{h}.test/{i}", f"h{h}", meta={"b": blob}) for h in range(100)]
            )
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot().filter_traces(not_the_cache)
            first = [await take(frontier) for _ in range(100)]
            for lease in first:
                await frontier.commit(lease, ())
            del first, lease
            after = tracemalloc.take_snapshot().filter_traces(not_the_cache)
        finally:
            tracemalloc.stop()
        grown = sum(diff.size_diff for diff in after.compare_to(before, "filename"))
        assert grown < 400_000, f"{grown} bytes held after leasing from 100 hosts"
        assert await drain(frontier) == [
            f"http://h{h}.test/{i}" for i in range(1, 8) for h in range(100)
        ]


async def test_leases_waiting_for_a_read_all_go_on_when_it_lands(db: Path) -> None:
    """Workers that find a host's read-ahead empty wait for the one read under way, and all
    go on in the same turn of the loop once it lands, instead of taking the lock one turn
    each (a dozen workers made that a 50 ms stall under load)."""
    async with SqliteFrontier(db, read_ahead=16) as frontier:
        await frontier.push([entry(f"http://a.test/{i}") for i in range(40)])
        host = frontier._index.hosts["a.test"]
        taken = [await take(frontier)]  # the first read: sixteen rows
        async with frontier._lock:  # a batch in the thread: no read may start
            taken += [await take(frontier) for _ in range(14)]  # the read-ahead runs dry
            waiting = [asyncio.create_task(take(frontier)) for _ in range(10)]
            await asyncio.sleep(0.01)
            assert host.reading is not None
            assert not any(t.done() for t in waiting)
        deadline = time.monotonic() + 10
        while len(host.ahead) < 2 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0)  # turn by turn until the one read lands
        turns = 0
        while not all(t.done() for t in waiting) and turns < 50:
            await asyncio.sleep(0)
            turns += 1
        assert turns <= 3, f"{turns} turns of the loop for 10 leases after one read"
        urls = [lease.request.url for lease in taken] + [t.result().request.url for t in waiting]
        assert urls == [f"http://a.test/{i}" for i in range(25)]


async def test_a_hosts_next_rows_are_read_before_its_read_ahead_runs_dry(db: Path) -> None:
    """Once a quarter of the read-ahead is left, the next rows are read in the background,
    so the lease that takes the last row read ahead finds the next ones there already."""
    async with SqliteFrontier(db, read_ahead=8) as frontier:
        await frontier.push([entry(f"http://a.test/{i}") for i in range(40)])
        host = frontier._index.hosts["a.test"]
        taken = [await take(frontier) for _ in range(5)]
        assert not frontier._early
        assert len(host.ahead) == 3
        taken.append(await take(frontier))  # two left: read on
        assert len(frontier._early) == 1
        await asyncio.gather(*frontier._early)
        assert len(host.ahead) == 8
        assert host.reading is None
        taken.append(await take(frontier))
        taken.append(await take(frontier))  # closing with a read under way is quiet
        for lease in taken:
            await frontier.commit(lease, ())
        assert [lease.request.url for lease in taken] == [f"http://a.test/{i}" for i in range(8)]
    async with SqliteFrontier(db, read_ahead=8) as frontier:
        assert await drain(frontier) == [f"http://a.test/{i}" for i in range(8, 40)]


_CRASH = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from scrapekit import Request
    from scrapekit.scheduler.frontier import Entry, Lease
    from scrapekit.scheduler.frontier.sqlite import SqliteFrontier

    async def main(path):
        frontier = SqliteFrontier(path, read_ahead=8)
        await frontier.__aenter__()
        urls = [f"http://a.test/{i}" for i in range(20)]
        await frontier.push([Entry(Request(u), u.encode(), "a.test") for u in urls])
        done = await frontier.lease(0.0)
        await frontier.commit(done, ())
        held = [await frontier.lease(0.0) for _ in range(3)]
        assert all(isinstance(h, Lease) for h in held)
        await frontier.release(held[1])
        print("ready", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_a_crash_with_rows_read_ahead_loses_nothing(db: Path) -> None:
    """kill -9 while rows are read ahead and leased: the next run has every request not
    committed, in its place, and the committed one is not fetched again."""
    process = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _CRASH, str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.returncode == -9, process.stderr
    assert process.stdout == "ready\n"
    async with SqliteFrontier(db) as frontier:
        assert (len(frontier), frontier.leased, frontier.statistics().seen) == (19, 0, 20)
        assert await drain(frontier) == [f"http://a.test/{i}" for i in range(1, 20)]
