"""What only the SQLite frontier does: JSON records, a real file that outlives the process,
owner-only permissions, one-line errors for a bad file, and a backlog kept out of RAM.

The interface's behaviour is in test_frontier.py, run on every backend.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import stat
import time
import tracemalloc
from collections.abc import Awaitable
from pathlib import Path

import pytest

from scrapekit import Request, Spider
from scrapekit.exceptions import (
    FrontierCorrupt,
    FrontierError,
    PathNotWritable,
    UnstorableRequest,
)
from scrapekit.scheduler import Scheduler
from scrapekit.scheduler.fingerprint import fingerprint
from scrapekit.scheduler.frontier import BACKENDS, Entry, Lease, open_frontier
from scrapekit.scheduler.frontier.base import Fetched
from scrapekit.scheduler.frontier.sqlite import SqliteFrontier
from scrapekit.settings import Settings
from tests.scheduler.schema_v1 import create_v1


class Shop(Spider):
    name = "shop"

    def parse_item(self, response: object) -> None:
        """A callback, stored by its name."""

    def on_error(self, failure: object) -> None:
        """An errback, stored by its name."""


class Helper:
    def handle(self, response: object) -> None:
        """A method, but not the spider's: no name finds it again."""


def entry(url: str, key: str = "a.test", *, priority: int = 0) -> Entry:
    request = Request(url, priority=priority)
    return Entry(request, url.encode(), key)


async def take(frontier: SqliteFrontier, now: float = 0.0) -> Lease:
    got = await frontier.lease(now)
    assert isinstance(got, Lease), f"nothing to lease: next at {got}"
    return got


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "shop" / "frontier.db"


async def test_every_request_field_survives_the_file(db: Path) -> None:
    """A request comes back from the file with every field, its callbacks as method names."""
    spider = Shop()
    original = Request(
        "http://a.test/p?q=1",
        "PUT",
        headers={"X-Token": "t", "Accept": "text/html"},
        body=b"\x00\xff binary",
        callback=spider.parse_item,
        errback=spider.on_error,
        priority=7,
        meta={"retry_times": 2, "nested": {"list": [1, "two", None, 3.5, True]}},
        cb_kwargs={"page": 3, "label": "é"},
        dont_filter=True,
        depth=4,
    )
    async with SqliteFrontier(db) as frontier:
        await frontier.push([Entry(original, None, "a.test", frontier.encode(original))])
    async with SqliteFrontier(db) as frontier:  # a new process would see the same
        back = (await take(frontier)).request
    assert (back.url, back.method, back.headers, back.body) == (
        original.url,
        "PUT",
        original.headers,
        b"\x00\xff binary",
    )
    assert (back.priority, back.depth, back.dont_filter) == (7, 4, True)
    assert (back.meta, back.cb_kwargs) == (original.meta, original.cb_kwargs)
    assert (back.callback, back.errback) == ("parse_item", "on_error")
    assert spider.resolve_callback(back.callback) == spider.parse_item
    assert spider.resolve_callback(back.errback, default=False) == spider.on_error


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        pytest.param(Request("http://a.test/", callback=lambda r: None), "callback", id="lambda"),
        pytest.param(Request("http://a.test/", errback=print), "errback", id="builtin"),
        pytest.param(
            Request("http://a.test/", callback=Helper().handle), "callback", id="other-object"
        ),
        pytest.param(Request("http://a.test/", meta={"when": object()}), "meta['when']", id="meta"),
        pytest.param(
            Request("http://a.test/", cb_kwargs={"at": {1, 2}}), "cb_kwargs['at']", id="cb_kwargs"
        ),
        pytest.param(Request("http://a.test/", meta={"x": math.nan}), "meta['x']", id="nan"),
        pytest.param(
            Request("http://a.test/", meta={"s": "\ud800"}), "meta['s']", id="surrogate-meta"
        ),
        pytest.param(
            Request("http://a.test/", cb_kwargs={"q": ["ok", {"deep": "x\udfff"}]}),
            "cb_kwargs['q']",
            id="surrogate-cb_kwargs",
        ),
    ],
)
async def test_an_unstorable_request_names_its_field(
    db: Path, request_: Request, field: str
) -> None:
    """encode() refuses what a later run could not rebuild, naming the field and the URL."""
    async with SqliteFrontier(db) as frontier:
        with pytest.raises(UnstorableRequest) as info:
            frontier.encode(request_)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert message.startswith(f"request http://a.test/ cannot be stored: {field} ")
    assert "\n" not in message


async def test_the_scheduler_drops_an_unstorable_request_alone(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A page's unstorable links are dropped and counted; its other links and the crawl go on."""
    spider = Shop()
    async with SqliteFrontier(db) as frontier:
        scheduler = Scheduler(frontier)
        assert not await scheduler.enqueue(Request("http://a.test/s", callback=lambda r: None))
        assert await scheduler.enqueue(Request("http://a.test/start"))
        page = await scheduler.next_request()
        assert page is not None
        await scheduler.done(
            page,
            [
                Request("http://a.test/ok", callback=spider.parse_item),
                Request("http://a.test/bad-meta", meta={"s": {1}}),
                Request("http://a.test/bad-cb", callback=lambda r: None),
            ],
        )
        assert scheduler.statistics().dropped == {"unstorable request": 3}
        assert len(frontier) == 1
        got = await scheduler.next_request()
        assert got is not None
        assert (got.url, got.callback) == ("http://a.test/ok", "parse_item")
    assert "meta['s'] holds set" in capsys.readouterr().out


async def test_a_lone_surrogate_drops_its_request_not_the_page(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text a hostile JSON API gave ("\\ud800" decodes to a lone surrogate) is valid JSON but
    not UTF-8: its request is dropped at admission, not the whole commit at the SQLite bind."""
    hostile = json.loads('{"name": "\\ud800"}')["name"]
    async with SqliteFrontier(db) as frontier:
        scheduler = Scheduler(frontier)
        assert await scheduler.enqueue(Request("http://a.test/start"))
        page = await scheduler.next_request()
        assert page is not None
        await scheduler.done(
            page,
            [
                Request("http://a.test/ok"),
                Request("http://a.test/bad", meta={"name": hostile}),
            ],
        )
        assert scheduler.statistics().dropped == {"unstorable request": 1}
        assert (len(frontier), frontier.leased) == (1, 0)  # the page was acknowledged
        got = await scheduler.next_request()
        assert got is not None
        assert got.url == "http://a.test/ok"
    assert "meta['name'] holds text that is not UTF-8" in capsys.readouterr().out


async def test_pending_requests_pauses_and_seen_outlive_the_process(db: Path) -> None:
    """Reopened, the file gives back the queue in order, the pause and the seen fingerprints;
    a request leased and never committed is pending again."""
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1"), entry("http://a.test/2")])
        await frontier.push([entry("http://b.test/x", "b.test", priority=1)])
        assert (await take(frontier)).request.url == "http://b.test/x"  # leased, never committed
        await frontier.pause("a.test", time.monotonic() + 3600)
    async with SqliteFrontier(db) as frontier:
        now = time.monotonic()
        assert (len(frontier), frontier.waiting) == (3, 2)
        assert await frontier.push([entry("http://a.test/1"), entry("http://a.test/3")]) == 1
        got = await take(frontier, now)
        assert got.request.url == "http://b.test/x"
        await frontier.commit(got, ())
        wakes = await frontier.lease(now)
        assert isinstance(wakes, float)
        assert 3590 < wakes - now <= 3600  # the pause, kept as a wall-clock time
        urls = []
        while isinstance(got := await frontier.lease(wakes), Lease):
            urls.append(got.request.url)
            await frontier.commit(got, ())
        assert urls == ["http://a.test/1", "http://a.test/2", "http://a.test/3"]


async def test_a_retry_keeps_its_time_and_record_across_runs(db: Path) -> None:
    """A retried request is stored as it is now (its meta) with its not-before time."""
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/r")])
        lease = await take(frontier)
        lease.request.meta["retry_times"] = 1
        await frontier.retry(lease, time.monotonic() + 60)
    async with SqliteFrontier(db) as frontier:
        now = time.monotonic()
        wakes = await frontier.lease(now)
        assert isinstance(wakes, float)
        assert 50 < wakes - now <= 60
        assert frontier.waiting == 1
        assert (await take(frontier, wakes)).request.meta == {"retry_times": 1}


async def test_a_frontier_with_nothing_pending_starts_afresh(db: Path) -> None:
    """A finished crawl's seen fingerprints do not stop the next run from fetching again."""
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1")], start=1)
        await frontier.record_start(1, done=True)
        await frontier.commit(await take(frontier), ())
    async with SqliteFrontier(db) as frontier:
        assert not frontier.run_start().resumed
        assert frontier.statistics().seen == 0
        assert await frontier.push([entry("http://a.test/1")]) == 1


async def test_the_file_is_owner_only(tmp_path: Path) -> None:
    """frontier.db is created 0600 in a 0700 folder; a looser existing file is tightened."""
    db = tmp_path / "state" / "shop" / "frontier.db"
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1")])
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    db.chmod(0o644)
    async with SqliteFrontier(db) as frontier:
        assert len(frontier) == 1
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


async def test_an_unwritable_state_folder_names_the_setting(tmp_path: Path) -> None:
    """A state folder that cannot be created is PathNotWritable naming STATE_DIR, one line."""
    blocker = tmp_path / "state"
    await asyncio.to_thread(blocker.write_text, "a file where the folder should be")
    with pytest.raises(PathNotWritable) as info:
        async with SqliteFrontier(blocker / "shop" / "frontier.db"):
            pass
    assert str(info.value) == (
        f"cannot write the frontier {blocker / 'shop' / 'frontier.db'}: {blocker} is not a "
        "folder; make it writable or point STATE_DIR elsewhere"
    )


def test_open_frontier_puts_it_in_the_spiders_state_folder(tmp_path: Path) -> None:
    """FRONTIER = "sqlite" builds the frontier at STATE_DIR/<spider>/frontier.db."""
    settings = Settings.load(
        project_file=None,
        spider_cls=Shop,
        env={},
        overrides={"FRONTIER": "sqlite", "STATE_DIR": str(tmp_path)},
    )
    frontier = open_frontier(settings, "shop")
    assert isinstance(frontier, SqliteFrontier)
    assert frontier.path == tmp_path / "shop" / "frontier.db"
    assert set(BACKENDS) == {"memory", "sqlite"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"this is not a database" * 100, "corrupt or unreadable", id="garbage"),
        pytest.param(None, "not a scrapekit frontier (wrong schema)", id="foreign"),
    ],
)
async def test_a_bad_file_is_one_line_naming_it_and_the_fix(
    db: Path, content: bytes | None, problem: str
) -> None:
    """A corrupt or foreign frontier.db raises FrontierCorrupt naming the file; it is untouched."""
    await asyncio.to_thread(_write_bad_file, db, content)
    before = await asyncio.to_thread(db.read_bytes)
    with pytest.raises(FrontierCorrupt) as info:
        async with SqliteFrontier(db):
            pass
    message = str(info.value)
    assert message.startswith(f"frontier {db} is {problem}")
    assert message.endswith(
        "delete it (and its -wal/-shm files) to start this crawl's state afresh"
    )
    assert "\n" not in message
    assert await asyncio.to_thread(db.read_bytes) == before


def _write_bad_file(db: Path, content: bytes | None) -> None:
    """`content` at `db`, or (None) an SQLite database of some other program."""
    db.parent.mkdir(parents=True)
    if content is not None:
        db.write_bytes(content)
        return
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE things (x)")
    conn.close()


@pytest.mark.parametrize("path", ["ready row", "retry come due"])
async def test_a_failing_read_under_lease_is_one_line_not_sqlite3_error(
    db: Path, path: str
) -> None:
    """lease() reads the file (the host's best rows, a retry's recount): an SQLite error there
    is a FrontierError naming the file, like every write's; the frontier stays usable."""
    async with SqliteFrontier(db) as frontier:
        await frontier.push([entry("http://a.test/1"), entry("http://a.test/2")])
        now = 0.0
        if path == "retry come due":
            await frontier.retry(await take(frontier), 5.0)
            await frontier.commit(await take(frontier), ())
            now = 6.0
        other = sqlite3.connect(db)
        other.execute("ALTER TABLE requests RENAME TO gone")
        other.commit()
        with pytest.raises(FrontierError) as info:
            await frontier.lease(now)
        assert not isinstance(info.value, sqlite3.Error)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        message = str(info.value)
        assert message.startswith(f"frontier {db} could not be read (")
        assert "\n" not in message
        other.execute("ALTER TABLE gone RENAME TO requests")  # the trouble passes
        other.commit()
        other.close()
        assert (await take(frontier, now)).request.url == "http://a.test/1"


@pytest.mark.parametrize("end", ["commit", "retry"])
async def test_a_failed_commit_or_retry_keeps_the_lease(db: Path, end: str) -> None:
    """A transaction that fails (here: another process holds the write lock) leaves the lease
    as it was: still held, still endable, and every count as before."""
    async with SqliteFrontier(db, busy_timeout=0.05) as frontier:
        await frontier.push([entry("http://a.test/1"), entry("http://a.test/2")])
        lease = await take(frontier)
        before = frontier.statistics()
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        ending: Awaitable[object] = (
            frontier.commit(lease, [entry("http://a.test/3")])
            if end == "commit"
            else frontier.retry(lease, 5.0)
        )
        with pytest.raises(FrontierError, match="could not be written"):
            await ending
        assert frontier.statistics() == before
        assert (frontier.leased, len(frontier)) == (1, 1)
        other.execute("ROLLBACK")
        other.close()
        await frontier.release(lease)  # the lease was not ended by the failure
        assert (frontier.leased, len(frontier)) == (0, 2)
        got = [(await take(frontier)).request.url, (await take(frontier)).request.url]
        assert got == ["http://a.test/1", "http://a.test/2"]  # row 1 is not skipped as leased


async def test_a_newer_file_is_not_misread(db: Path) -> None:
    """A frontier written by a newer scrapekit says so instead of being read wrongly."""
    async with SqliteFrontier(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(FrontierCorrupt, match=r"schema version 99.*upgrade scrapekit"):
        async with SqliteFrontier(db):
            pass


async def test_the_backlog_lives_in_the_file_not_in_ram(db: Path) -> None:
    """4,000 pending requests of 5 KiB each cost memory per host, not per request."""
    # The URL-check cache (request.py) keeps URLs whatever the frontier: not counted.
    not_the_cache = [tracemalloc.Filter(inclusive=False, filename_pattern="*/_cache.py")]
    async with SqliteFrontier(db) as frontier:
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot().filter_traces(not_the_cache)
            for start in range(0, 4_000, 500):
                batch = []
                for i in range(start, start + 500):
                    request = Request(f"http://a.test/{i}", meta={"blob": f"{i}" + "x" * 5120})
                    batch.append(Entry(request, request.url.encode(), "a.test"))
                await frontier.push(batch)
                del batch
            after = tracemalloc.take_snapshot().filter_traces(not_the_cache)
        finally:
            tracemalloc.stop()
        grown = sum(diff.size_diff for diff in after.compare_to(before, "filename"))
        assert len(frontier) == 4_000
        assert grown < 1_000_000, f"{grown} bytes held for a 20 MB backlog"
        assert (await take(frontier)).request.url == "http://a.test/0"


async def test_a_version_1_file_is_upgraded_in_place_and_keeps_its_requests(
    tmp_path: Path,
) -> None:
    path = tmp_path / "frontier.db"
    db = create_v1(path)
    record = json.dumps(Request("https://a.test/kept").to_record())
    db.execute("INSERT INTO requests VALUES (1, 'a.test', 0, 0, ?)", (record,))
    db.commit()
    db.close()
    async with SqliteFrontier(path) as frontier:
        lease = await frontier.lease(time.monotonic())
        assert isinstance(lease, Lease)
        assert lease.request.url == "https://a.test/kept"
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM fetched").fetchone()[0] == 0
    finally:
        db.close()


async def test_recrawl_after_spares_start_and_dont_filter_requests(tmp_path: Path) -> None:
    """Only links (depth > 0, filtered) are kept out when an earlier run fetched them."""
    path = tmp_path / "frontier.db"
    fresh = [Request("https://a.test/start"), Request("https://a.test/page", depth=1)]
    async with SqliteFrontier(path, recrawl_after=3600) as frontier:
        await frontier.push([entry_of(r) for r in fresh])
        for _ in fresh:
            lease = await frontier.lease(time.monotonic())
            assert isinstance(lease, Lease)
            print_ = fingerprint(lease.request)
            await frontier.commit(lease, (), fetched=Fetched(print_, '"t"', None))
        await frontier.record_start(len(fresh), done=True)  # the crawl finished
    async with SqliteFrontier(path, recrawl_after=3600) as frontier:  # a new crawl
        again = [
            Request("https://a.test/start"),
            Request("https://a.test/page", depth=1),
            Request("https://a.test/page", depth=1, dont_filter=True),
        ]
        assert await frontier.push([entry_of(r) for r in again]) == 2
        assert frontier.not_due == 1
        urls = []
        while isinstance(lease := await frontier.lease(time.monotonic()), Lease):
            urls.append((lease.request.url, lease.request.dont_filter))
            assert "If-None-Match" not in lease.request.headers
        assert sorted(urls) == [("https://a.test/page", True), ("https://a.test/start", False)]


def entry_of(request: Request) -> Entry:
    return Entry(request, None if request.dont_filter else fingerprint(request), "a.test")
