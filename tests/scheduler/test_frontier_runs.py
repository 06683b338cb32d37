"""Runs in the SQLite frontier: new or resumed at open, start()'s position, --fresh, the rows."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from scrapekit.exceptions import FrontierCorrupt, FrontierError
from scrapekit.request import Request
from scrapekit.scheduler.fingerprint import fingerprint
from scrapekit.scheduler.frontier import Entry, Lease
from scrapekit.scheduler.frontier.runs import DIED, RunProgress, all_runs, crawl_status
from scrapekit.scheduler.frontier.sqlite import SqliteFrontier
from tests.scheduler.schema_v1 import create_v1


def entry(url: str) -> Entry:
    request = Request(url)
    return Entry(request, fingerprint(request), "a.test")


async def take(frontier: SqliteFrontier) -> Lease:
    got = await frontier.lease(time.monotonic())
    assert isinstance(got, Lease)
    return got


def read(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "spider" / "frontier.db"


async def test_first_open_is_a_new_run_of_a_new_crawl(db: Path) -> None:
    async with SqliteFrontier(db) as frontier:
        run = frontier.run_start()
    assert (run.run, run.crawl, run.resumed, run.pending) == (1, 1, False, 0)
    assert run.state == str(db)
    [row] = all_runs(read(db))
    assert (row.pid, row.ended, row.finish_reason) == (os.getpid(), None, None)


async def test_pending_requests_make_the_next_run_resume(db: Path) -> None:
    """Pending requests and seen fingerprints are kept; the crawl number stays."""
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1"), entry("http://a.test/2")], start=2)
        await frontier.record_start(2, done=True)
        await take(frontier)  # in flight when the process ends: pending again
    async with SqliteFrontier(db) as frontier:
        run = frontier.run_start()
        assert (run.run, run.crawl, run.resumed, run.pending) == (2, 1, True, 2)
        assert run.start_done
        assert await frontier.push([entry("http://a.test/1")]) == 0  # still seen


async def test_start_position_is_stored_with_each_push(db: Path) -> None:
    """A resumed run skips exactly the start() outputs whose push was committed."""
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1")], start=1)
        await frontier.push([entry("http://a.test/3")], start=3)  # output 2 was an item
        for _ in range(2):
            await frontier.commit(await take(frontier), ())
    async with SqliteFrontier(db) as frontier:
        run = frontier.run_start()
    # Nothing pending, but start() was not read to the end: unfinished.
    assert (run.resumed, run.pending, run.start_stored, run.start_done) == (True, 0, 3, False)


async def test_a_finished_crawl_makes_a_new_one(db: Path) -> None:
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1")], start=1)
        await frontier.record_start(1, done=True)
        await frontier.commit(await take(frontier), ())
    async with SqliteFrontier(db) as frontier:
        run = frontier.run_start()
        assert (run.run, run.crawl, run.resumed, run.start_stored) == (2, 2, False, 0)
        assert await frontier.push([entry("http://a.test/1")]) == 1


async def test_fresh_discards_the_unfinished_crawl(db: Path) -> None:
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1"), entry("http://a.test/2")], start=5)
        await frontier.pause("a.test", time.monotonic() + 600)
    async with SqliteFrontier(db, fresh=True) as frontier:
        run = frontier.run_start()
        assert (run.crawl, run.resumed, run.pending, run.start_stored) == (2, False, 0, 0)
        assert len(frontier) == 0
        assert frontier.statistics().paused_hosts == 0
        assert await frontier.push([entry("http://a.test/1")]) == 1


async def test_rows_record_progress_end_and_a_death(db: Path) -> None:
    """The running row is updated; an end is recorded; a row left open is closed as died."""
    async with SqliteFrontier(db) as frontier:
        await frontier.record_run(RunProgress(pages=3, items=2, errors=1, in_flight=4, pending=5))
        status = crawl_status(read(db), time.time())
        assert status.last is not None
        assert (status.last.pages, status.last.in_flight, status.last.ended) == (3, 4, None)
        await frontier.end_run(RunProgress(7, 6, 1, 0, 0), "closespider_pagecount", 0)
    async with SqliteFrontier(db):
        pass  # ends without recording its end, as a killed process would
    async with SqliteFrontier(db):
        first, second, third = all_runs(read(db))
    assert (first.pages, first.items, first.finish_reason, first.exit_code) == (
        7, 6, "closespider_pagecount", 0,
    )  # fmt: skip
    assert first.ended is not None
    assert (second.finish_reason, second.exit_code) == (DIED, None)
    assert third.ended is None


async def test_a_version_1_file_is_upgraded_in_place_and_resumed(db: Path) -> None:
    conn = create_v1(db)
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1")])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("DROP TABLE runs")
    conn.execute("DROP TABLE crawl_state")
    conn.commit()
    async with SqliteFrontier(db) as frontier:
        run = frontier.run_start()
        assert (run.crawl, run.resumed, run.pending, run.start_stored) == (1, True, 1, 0)
    assert conn.execute("PRAGMA user_version").fetchone() == (2,)
    conn.close()


async def test_a_file_without_its_runs_table_is_refused(db: Path) -> None:
    async with SqliteFrontier(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE runs")
    with pytest.raises(FrontierCorrupt, match="wrong schema"):
        async with SqliteFrontier(db):
            pass


async def test_a_run_whose_opening_fails_is_ended_as_a_configuration_error(db: Path) -> None:
    """The run row is written first; if reading the rest of the file then fails, the row
    says so (config_error, exit 2) instead of looking like a run that died."""
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("https://a.test/1")])
    conn = read(db)
    conn.execute("DROP INDEX requests_ready")  # the ready query names it: reading fails
    conn.commit()
    conn.close()
    with pytest.raises(FrontierError, match="requests_ready"):
        async with SqliteFrontier(db):
            pass
    conn = read(db)
    try:
        last = all_runs(conn)[-1]
    finally:
        conn.close()
    assert (last.finish_reason, last.exit_code) == ("config_error", 2)
    assert last.ended is not None
