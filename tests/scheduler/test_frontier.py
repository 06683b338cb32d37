"""The Frontier contract, written against the interface so every backend runs the same tests.

A backend joins by adding its name to BACKENDS; the SQLite one runs on a real file under
tmp_path, once as configured by default and once reading ahead only 3 rows per host and 6 in
all, so that the tests below also cross the read-ahead's edges (refills, evictions).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scrapekit import Request
from scrapekit.scheduler.frontier import Entry, Frontier, Lease, MemoryFrontier
from scrapekit.scheduler.frontier.sqlite import SqliteFrontier

BACKENDS = ["memory", "sqlite", "sqlite-short-read-ahead"]


@pytest.fixture(params=BACKENDS)
async def frontier(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Frontier]:
    """An empty frontier of each backend."""
    backend: Frontier
    if request.param == "memory":
        backend = MemoryFrontier()
    elif request.param == "sqlite":
        backend = SqliteFrontier(tmp_path / "state" / "frontier.db")
    else:
        backend = SqliteFrontier(tmp_path / "state" / "frontier.db", read_ahead=3, read_ahead_cap=6)
    async with backend:
        yield backend


def entry(
    name: str, *, host: str = "a.test", priority: int = 0, fingerprint: bytes | None = b""
) -> Entry:
    """An entry for http://<host>/<name>, fingerprinted by its URL unless told otherwise."""
    url = f"http://{host}/{name}"
    key = url.encode() if fingerprint == b"" else fingerprint
    return Entry(Request(url, priority=priority), key, host)


async def take(frontier: Frontier, now: float = 0.0) -> Lease:
    """Lease a request at `now`, failing if there is none."""
    got = await frontier.lease(now)
    assert isinstance(got, Lease), f"nothing to lease: next at {got}"
    return got


def path(lease: Lease) -> str:
    return lease.request.url.rsplit("/", 1)[1]


async def drain(frontier: Frontier, now: float = 0.0) -> list[str]:
    """Lease and commit everything leasable at `now`; the paths in hand-out order."""
    order = []
    while isinstance(got := await frontier.lease(now), Lease):
        order.append(path(got))
        await frontier.commit(got, ())
    return order


async def test_priority_first_then_fifo_across_hosts(frontier: Frontier) -> None:
    """Higher priority first; among equals, the order of arrival, whatever the host."""
    await frontier.push(
        [
            entry("a0"),
            entry("b5", host="b.test", priority=5),
            entry("c0", host="c.test"),
            entry("a5", priority=5),
            entry("b0", host="b.test"),
        ]
    )
    assert await drain(frontier) == ["b5", "a5", "a0", "c0", "b0"]


async def test_duplicates_are_not_queued_unless_unfingerprinted(frontier: Frontier) -> None:
    """A seen fingerprint is not queued again (also through commit); None always queues."""
    assert await frontier.push([entry("x"), entry("x"), entry("y")]) == 2
    lease = await take(frontier)
    assert await frontier.commit(lease, [entry("x"), entry("z")]) == 1
    assert await frontier.push([entry("x", fingerprint=None), entry("x", fingerprint=None)]) == 2
    assert len(frontier) == 4
    assert frontier.statistics().seen == 3


async def test_an_empty_frontier_has_nothing_to_wait_for(frontier: Frontier) -> None:
    """lease() on an empty frontier answers inf: only new requests can change that."""
    assert await frontier.lease(0.0) == math.inf
    assert (len(frontier), frontier.leased, frontier.waiting) == (0, 0, 0)


async def test_a_lease_is_in_flight_until_committed(frontier: Frontier) -> None:
    """A leased request is neither pending nor handed out again; commit queues its new ones."""
    await frontier.push([entry("page")])
    lease = await take(frontier)
    assert (len(frontier), frontier.leased) == (0, 1)
    assert await frontier.lease(0.0) == math.inf
    assert await frontier.commit(lease, [entry("next")]) == 1
    assert (len(frontier), frontier.leased) == (1, 0)
    assert path(await take(frontier)) == "next"


async def test_a_released_lease_goes_back_to_its_place(frontier: Frontier) -> None:
    """release() hands the request back ahead of what was queued after it."""
    await frontier.push([entry("1"), entry("2"), entry("3")])
    first = await take(frontier)
    await frontier.push([entry("4")])
    await frontier.release(first)
    assert await drain(frontier) == ["1", "2", "3", "4"]


async def test_a_lease_ends_once(frontier: Frontier) -> None:
    """Committing, retrying or releasing a lease that already ended raises LookupError."""
    await frontier.push([entry("x")])
    lease = await take(frontier)
    await frontier.commit(lease, ())
    with pytest.raises(LookupError, match="already ended"):
        await frontier.release(lease)
    with pytest.raises(LookupError, match="already ended"):
        await frontier.retry(lease, 1.0)


async def test_a_retry_waits_for_its_not_before_time(frontier: Frontier) -> None:
    """A retried request is not leased before its time; lease() says when that is."""
    await frontier.push([entry("x")])
    await frontier.retry(await take(frontier), 5.0)
    assert (len(frontier), frontier.leased, frontier.waiting) == (1, 0, 1)
    assert await frontier.lease(4.9) == 5.0
    assert path(await take(frontier, 5.0)) == "x"
    assert frontier.waiting == 0


async def test_a_due_retry_keeps_its_place_and_others_go_meanwhile(frontier: Frontier) -> None:
    """While a retry waits, its host's other requests go; once due, it is back in its place."""
    await frontier.push([entry("1"), entry("2"), entry("3")])
    await frontier.retry(await take(frontier), 5.0)
    assert path(await take(frontier, 1.0)) == "2"
    await frontier.push([entry("4")])
    assert await drain(frontier, 6.0) == ["1", "3", "4"]


async def test_a_paused_host_waits_and_other_hosts_go(frontier: Frontier) -> None:
    """A paused host hands out nothing until its pause ends; other hosts are unaffected."""
    await frontier.push([entry(f"a{i}") for i in range(50)] + [entry("b", host="b.test")])
    await frontier.pause("a.test", 30.0)
    assert frontier.waiting == 50
    assert await drain(frontier, 1.0) == ["b"]
    assert await frontier.lease(1.0) == 30.0
    assert path(await take(frontier, 30.0)) == "a0"
    assert frontier.waiting == 0


async def test_a_pause_is_never_shortened(frontier: Frontier) -> None:
    """A shorter pause leaves a longer one in place; a longer one extends it."""
    await frontier.push([entry("x")])
    await frontier.pause("a.test", 20.0)
    await frontier.pause("a.test", 10.0)
    assert await frontier.lease(0.0) == 20.0
    await frontier.pause("a.test", 40.0)
    assert await frontier.lease(25.0) == 40.0
    assert frontier.statistics().paused_hosts == 1


async def test_a_pause_applies_to_requests_queued_later(frontier: Frontier) -> None:
    """A host paused while empty still holds the requests pushed to it afterwards."""
    await frontier.pause("a.test", 10.0)
    await frontier.push([entry("x")])
    assert frontier.waiting == 1
    assert await frontier.lease(5.0) == 10.0


async def test_a_gate_closed_for_a_time_opens_then(frontier: Frontier) -> None:
    """close_gate(until) holds the host until then; open_gate does not open it earlier."""
    await frontier.push([entry("x"), entry("y", host="b.test")])
    await frontier.close_gate("a.test", 2.0)
    await frontier.open_gate("a.test")
    assert await drain(frontier, 1.0) == ["y"]
    assert await frontier.lease(1.0) == 2.0
    assert await drain(frontier, 2.0) == ["x"]


async def test_a_gate_closed_until_further_notice_waits_for_open_gate(frontier: Frontier) -> None:
    """close_gate(inf) (full slots) holds the host with no time to wait for, until open_gate."""
    await frontier.push([entry("x"), entry("y")])
    first = await take(frontier)
    await frontier.close_gate("a.test", math.inf)
    assert await frontier.lease(100.0) == math.inf
    assert frontier.waiting == 0  # busy, not throttled: its requests go as slots free
    await frontier.commit(first, ())
    await frontier.open_gate("a.test")
    assert path(await take(frontier, 100.0)) == "y"


async def test_open_gate_does_not_lift_a_pause(frontier: Frontier) -> None:
    """A Retry-After pause holds even when the host's slots free up."""
    await frontier.push([entry("x")])
    await frontier.pause("a.test", 10.0)
    await frontier.close_gate("a.test", math.inf)
    await frontier.open_gate("a.test")
    assert await frontier.lease(5.0) == 10.0
    assert path(await take(frontier, 10.0)) == "x"


async def test_the_soonest_host_is_reported(frontier: Frontier) -> None:
    """With every host waiting, lease() answers the earliest time any of them opens."""
    await frontier.push([entry("a"), entry("b", host="b.test"), entry("c", host="c.test")])
    await frontier.pause("a.test", 9.0)
    await frontier.close_gate("b.test", 4.0)
    await frontier.retry(await take(frontier), 7.0)  # c, the only open one
    assert await frontier.lease(0.0) == 4.0
    assert await drain(frontier, 4.0) == ["b"]
    assert await frontier.lease(4.0) == 7.0


async def test_a_retry_at_a_paused_host_waits_for_both(frontier: Frontier) -> None:
    """A retry due before its host's pause ends waits for the pause; one due after, for itself."""
    await frontier.push([entry("x"), entry("y")])
    await frontier.retry(await take(frontier), 3.0)
    await frontier.pause("a.test", 5.0)
    assert await frontier.lease(0.0) == 5.0
    assert await drain(frontier, 5.0) == ["x", "y"]


async def test_many_waiting_hosts_do_not_slow_a_lease(frontier: Frontier) -> None:
    """Thousands of paused hosts with deep backlogs cost a lease nothing: it still answers."""
    for h in range(2_000):
        await frontier.push([entry(f"{i}", host=f"h{h}.test") for i in range(10)])
        await frontier.pause(f"h{h}.test", 100.0 + h)
    await frontier.push([entry("go", host="open.test")])
    assert await drain(frontier, 1.0) == ["go"]
    assert await frontier.lease(1.0) == 100.0
    stats = frontier.statistics()
    assert (stats.pending, stats.waiting, stats.hosts) == (20_000, 20_000, 2_000)


async def test_later_pushes_take_their_place_in_a_queue_being_read(frontier: Frontier) -> None:
    """Requests pushed after a lease began reading a host's queue still take their place:
    a higher priority first, an equal one after those queued before it."""
    await frontier.push([entry(f"a{i}") for i in range(10)])
    await frontier.commit(await take(frontier), ())  # a0: the host's next rows may be read
    await frontier.push(
        [entry("late"), entry("urgent", priority=5), entry("b", host="b.test", priority=1)]
    )
    assert await drain(frontier) == ["urgent", "b", *(f"a{i}" for i in range(1, 10)), "late"]


async def test_release_retry_and_commit_among_a_deep_queue(frontier: Frontier) -> None:
    """A released request goes back in its place, a retried one takes its place back once
    due, and a page's new request queues last, however deep the host's queue is."""
    await frontier.push([entry(f"a{i}") for i in range(10)])
    first, second, third = [await take(frontier) for _ in range(3)]
    await frontier.release(second)
    await frontier.retry(first, 5.0)
    await frontier.commit(third, [entry("new")])
    assert [path(await take(frontier, 1.0)) for _ in range(2)] == ["a1", "a3"]
    assert await drain(frontier, 5.0) == ["a0", *(f"a{i}" for i in range(4, 10)), "new"]


async def test_a_pause_holds_a_host_whose_queue_was_read(frontier: Frontier) -> None:
    """Pausing a host that leases were being taken from holds all of its requests."""
    await frontier.push([entry(f"a{i}") for i in range(10)] + [entry("b", host="b.test")])
    await frontier.commit(await take(frontier), ())
    await frontier.pause("a.test", 10.0)
    assert await drain(frontier, 1.0) == ["b"]
    assert await frontier.lease(1.0) == 10.0
    assert await drain(frontier, 10.0) == [f"a{i}" for i in range(1, 10)]


async def test_concurrent_calls_take_effect_in_call_order(frontier: Frontier) -> None:
    """Calls made together (a durable backend may write them in one transaction) take effect
    as if one after the other: the first to queue a URL queues it."""
    await frontier.push([entry("page")])
    lease = await take(frontier)
    results = await asyncio.gather(
        frontier.commit(lease, [entry("x"), entry("y")]),
        frontier.push([entry("x")]),
        frontier.push([entry("y"), entry("z")]),
        frontier.push([entry("z"), entry("w", priority=1)]),
    )
    assert results == [2, 0, 1, 1]
    assert (len(frontier), frontier.leased) == (4, 0)
    assert await drain(frontier) == ["w", "x", "y", "z"]
