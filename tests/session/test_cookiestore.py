"""Cookie stores and the write-behind: real SQLite files, permissions, corruption, two writers."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from subprocess import PIPE
from typing import Any

import aiosqlite
import pytest
from structlog.testing import capture_logs

from scrapekit.exceptions import CookieJarCorrupt, SessionError
from scrapekit.session.cookiejar import Cookie, CookieJar
from scrapekit.session.cookiestore import (
    CookieJarLike,
    CookieStore,
    CookieStoreStatistics,
    CookieSync,
    CookieSyncStatistics,
    MemoryCookieStore,
    SqliteCookieStore,
    remove_jar,
)

WRITER = Path(__file__).with_name("_cookie_writer.py")
REPO = Path(__file__).resolve().parents[2]
Key = tuple[str, str, str]


def cookie(name: str = "sid", value: str = "abc", **fields: Any) -> Cookie:
    """A cookie on example.com with the given fields."""
    return dataclasses.replace(Cookie(name, value, "example.com", "/"), **fields)


def mode(path: Path) -> int:
    """The permission bits of a file or folder."""
    return stat.S_IMODE(path.stat().st_mode)


GARBAGE = b"this is not a cookie jar\n" * 200


@pytest.fixture
def jar_path(tmp_path: Path) -> Path:
    """Where the shop session's jar lives, folder not yet created."""
    return tmp_path / ".scrapekit" / "shop" / "session.db"


@pytest.fixture
def garbage_jar(jar_path: Path) -> Path:
    """A jar path whose file holds bytes that are not SQLite."""
    jar_path.parent.mkdir(parents=True)
    jar_path.write_bytes(GARBAGE)
    return jar_path


async def stored(path: Path) -> dict[Key, Cookie]:
    """What a fresh store on `path` loads, by key."""
    async with SqliteCookieStore(path, name="shop") as store:
        return {c.key: c for c in await store.load()}


# -- SqliteCookieStore ---------------------------------------------------------------------------


async def test_round_trip_keeps_every_field(jar_path: Path) -> None:
    """Every field of a cookie comes back from the file exactly as it was saved."""
    rich = Cookie(
        "sid", "a=b c", "shop.example.com", "/account", host_only=False, secure=True,
        http_only=True, same_site="Lax", expires=time.time() + 3600.125,
        creation=1_700_000_000.5, last_access=1_700_000_100.25,
    )  # fmt: skip
    plain = Cookie("theme", "", "example.com", "/")
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([rich, plain], [])
    assert await stored(jar_path) == {rich.key: rich, plain.key: plain}


async def test_load_purges_expired_rows(jar_path: Path) -> None:
    """Expired cookies are not loaded and their rows are deleted from the file."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([cookie("old", expires=time.time() - 1), cookie("new")], [])
        assert [c.name for c in await store.load()] == ["new"]
    async with aiosqlite.connect(jar_path) as db:
        assert list(await db.execute_fetchall("SELECT name FROM cookies")) == [("new",)]


async def test_upsert_last_write_wins(jar_path: Path) -> None:
    """A later save of the same key replaces the earlier one, also within one save."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([cookie(value="1")], [])
        await store.save([cookie(value="2"), cookie(value="3", secure=True)], [])
    assert list(await stored(jar_path)) == [cookie().key]
    assert (await stored(jar_path))[cookie().key] == cookie(value="3", secure=True)


async def test_deletes_remove_only_their_keys(jar_path: Path) -> None:
    """Deleting removes the named cookies; deleting an unknown key is not an error."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([cookie("a"), cookie("b")], [])
        await store.save([], [cookie("a").key, ("nowhere.test", "/", "x")])
    assert list(await stored(jar_path)) == [cookie("b").key]


async def test_clear_deletes_every_cookie(jar_path: Path) -> None:
    """clear() empties a healthy jar and says how many cookies it held."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([cookie("a"), cookie("b")], [])
        assert await store.clear() == 2
        assert await store.load() == []


async def test_statistics_count_loads_saves_and_deletes(jar_path: Path) -> None:
    """statistics() reports what the store loaded, saved and deleted, and how often it saved."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([cookie("a"), cookie("b")], [])
        await store.save([], [])
        await store.save([cookie("c")], [cookie("a").key])
        await store.load()
        assert store.statistics() == CookieStoreStatistics("sqlite", 2, 3, 1, 2)


@pytest.fixture(params=[0o022, 0o000], ids=["usual-umask", "permissive-umask"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under a given process umask."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.mark.usefixtures("umask")
async def test_new_jar_is_owner_only(jar_path: Path) -> None:
    """A new jar is 0600 in a 0700 folder (as are the parents it creates), whatever the umask."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([cookie()], [])
        side_files = [Path(f"{jar_path}{s}") for s in ("-wal", "-shm")]
        assert [mode(p) for p in side_files if p.exists()] == [0o600] * len(side_files)
    assert mode(jar_path) == 0o600
    assert mode(jar_path.parent) == 0o700
    assert mode(jar_path.parent.parent) == 0o700


async def test_loose_permissions_are_tightened(jar_path: Path) -> None:
    """An existing world-readable jar and folder are made owner-only, with a warning."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([cookie()], [])
    await asyncio.to_thread(jar_path.chmod, 0o644)
    await asyncio.to_thread(jar_path.parent.chmod, 0o755)
    with capture_logs() as logs:
        assert list(await stored(jar_path)) == [cookie().key]
    assert mode(jar_path) == 0o600
    assert mode(jar_path.parent) == 0o700
    warnings = [e for e in logs if e["event"] == "cookie jar permissions tightened"]
    assert {e["path"] for e in warnings} == {str(jar_path), str(jar_path.parent)}
    assert {e["log_level"] for e in warnings} == {"warning"}


async def test_garbage_file_is_corrupt_and_kept(garbage_jar: Path) -> None:
    """A file that is not SQLite raises a one-line CookieJarCorrupt naming the fix, untouched."""
    with pytest.raises(CookieJarCorrupt) as info:
        await stored(garbage_jar)
    assert str(info.value) == (
        f"cookie jar {garbage_jar} is corrupt (file is not a database); "
        "delete it with: scrapekit session clear shop"
    )
    assert await asyncio.to_thread(garbage_jar.read_bytes) == GARBAGE


async def test_newer_schema_version_is_refused(jar_path: Path) -> None:
    """A jar written by a newer scrapekit raises CookieJarCorrupt rather than being misread."""
    async with SqliteCookieStore(jar_path, name="shop"):
        pass
    async with aiosqlite.connect(jar_path) as db:
        await db.execute("PRAGMA user_version = 99")
        await db.commit()
    with pytest.raises(CookieJarCorrupt, match=r"schema version 99.*scrapekit session clear shop"):
        await stored(jar_path)


async def test_foreign_database_is_refused(jar_path: Path) -> None:
    """An SQLite file with some other schema raises CookieJarCorrupt instead of being reset."""
    jar_path.parent.mkdir(parents=True)
    async with aiosqlite.connect(jar_path) as db:
        await db.execute("CREATE TABLE notes (body TEXT)")
        await db.commit()
    with pytest.raises(CookieJarCorrupt, match=r"wrong schema\); delete it with: scrapekit"):
        await stored(jar_path)
    async with aiosqlite.connect(jar_path) as db:
        assert list(await db.execute_fetchall("SELECT name FROM sqlite_master")) == [("notes",)]


async def test_locked_jar_is_busy_not_corrupt(jar_path: Path) -> None:
    """A write lock held past the busy timeout is a SessionError, and nothing is half-written."""
    async with SqliteCookieStore(jar_path, name="shop", busy_timeout=0.05) as store:
        async with aiosqlite.connect(jar_path, isolation_level=None) as other:
            await other.execute("BEGIN IMMEDIATE")
            with pytest.raises(SessionError, match="database is locked") as info:
                await store.save([cookie()], [])
            assert not isinstance(info.value, CookieJarCorrupt)
            await other.execute("ROLLBACK")
        await store.save([cookie()], [])
    assert list(await stored(jar_path)) == [cookie().key]


async def test_cancelled_save_still_commits(jar_path: Path) -> None:
    """A save whose caller is cancelled finishes its transaction; the store stays usable."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        task = asyncio.create_task(store.save([cookie("a")], []))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.save([cookie("b")], [])
    assert set(await stored(jar_path)) == {cookie("a").key, cookie("b").key}


def test_remove_jar_deletes_file_and_side_files(jar_path: Path) -> None:
    """remove_jar deletes the jar with its -wal and -shm files and says whether any existed."""
    jar_path.parent.mkdir(parents=True)
    files = [jar_path, Path(f"{jar_path}-wal"), Path(f"{jar_path}-shm")]
    for file in files:
        file.write_bytes(b"x")
    assert remove_jar(jar_path) is True
    assert not any(file.exists() for file in files)
    assert remove_jar(jar_path) is False


async def test_memory_store_keeps_cookies_in_process() -> None:
    """The memory store round-trips copies, purges expired cookies and clears."""
    store = MemoryCookieStore()
    live = cookie("a")
    await store.save([live, cookie("b"), cookie("old", expires=time.time() - 1)], [])
    live.value = "changed after saving"
    await store.save([], [cookie("b").key])
    assert await store.load() == [cookie("a")]
    assert await store.clear() == 1
    assert store.statistics() == CookieStoreStatistics("memory", 1, 3, 1, 2)


# -- two processes -------------------------------------------------------------------------------


@pytest.mark.subprocess
async def test_two_processes_share_one_jar(tmp_path: Path) -> None:
    """Two processes writing one jar at once leave it intact, complete and last-write-wins."""
    jar_path = tmp_path / "shared" / "session.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WRITER), str(jar_path), writer, stdin=PIPE, env=env
        )
        for writer in ("0", "1")
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        child.stdin.close()
    codes = await asyncio.wait_for(asyncio.gather(*(c.wait() for c in children)), timeout=30)
    assert codes == [0, 0]
    async with aiosqlite.connect(jar_path) as db:
        assert list(await db.execute_fetchall("PRAGMA integrity_check")) == [("ok",)]
    cookies = {c.name: c.value for c in (await stored(jar_path)).values()}
    assert len(cookies) == 401
    assert all(f"{w}-{i}" in cookies for w in "01" for i in range(200))
    assert cookies["shared"] in {"0-49", "1-49"}


# -- CookieSync ----------------------------------------------------------------------------------


class CountingStore(SqliteCookieStore):
    """A SQLite store that counts save() calls and can fail or stall some of them."""

    def __init__(self, path: Path, *, failures: int = 0, delay: float = 0.0) -> None:
        super().__init__(path, name="shop")
        self.calls = 0
        self.failures = failures
        self.delay = delay

    async def save(self, upserts: Sequence[Cookie], deletes: Sequence[Key]) -> None:
        """Count the call; fail while failures remain; otherwise save after the delay."""
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise SessionError(f"cookie jar {self.path} could not be written (disk is full)")
        await asyncio.sleep(self.delay)
        await super().save(upserts, deletes)


def test_real_jar_fits_the_protocol() -> None:
    """The session's CookieJar is what CookieSync expects (checked by mypy on this line)."""
    jar: CookieJarLike = CookieJar()
    assert not jar.dirty


async def test_sync_loads_store_into_jar(jar_path: Path) -> None:
    """Entering loads every stored cookie into the jar without marking it dirty."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([Cookie("sid", "abc", "example.com", "/", host_only=False)], [])
    jar = CookieJar()
    async with CookieSync(jar, SqliteCookieStore(jar_path, name="shop"), interval=60) as sync:
        assert jar.get("sid", "example.com") == "abc"
        assert not jar.dirty
        assert sync.loaded == 1


async def test_flusher_saves_after_interval_only_when_dirty(jar_path: Path) -> None:
    """The background flusher saves a change after the interval, and never while clean."""
    jar = CookieJar()
    store = CountingStore(jar_path)
    async with CookieSync(jar, store, interval=0.05):
        jar.set("sid", "abc", domain="example.com")
        assert store.calls == 0
        for _ in range(100):
            if store.calls:
                break
            await asyncio.sleep(0.01)
        assert await stored(jar_path) != {}
        await asyncio.sleep(0.2)
        assert store.calls == 1


async def test_disabled_sync_loads_and_saves_nothing(jar_path: Path) -> None:
    """With cookies disabled the jar is not synced: nothing loaded or saved, and the
    statistics say so instead of counting a cookie set in the unused jar as saved."""
    async with SqliteCookieStore(jar_path, name="shop") as store:
        await store.save([cookie("old")], [])
    jar = CookieJar()
    sync = CookieSync(jar, SqliteCookieStore(jar_path, name="shop"), interval=0.01, enabled=False)
    async with sync:
        assert jar.get("old", "example.com") is None
        jar.set("manual", "3", domain="example.com")
        await asyncio.sleep(0.05)
        assert await sync.flush() == 0
    assert set(await stored(jar_path)) == {cookie("old").key}
    assert sync.statistics() == CookieSyncStatistics(0, 0, 0, 0, 0, enabled=False)


async def test_flush_saves_now(jar_path: Path) -> None:
    """flush() writes the pending changes at once and returns how many; then there are none."""
    jar = CookieJar()
    async with CookieSync(jar, SqliteCookieStore(jar_path, name="shop"), interval=60) as sync:
        jar.set("a", "1", domain="example.com")
        jar.set("b", "2", domain="example.com")
        assert await sync.flush() == 2
        assert {k[2] for k in await stored(jar_path)} == {"a", "b"}
        assert await sync.flush() == 0
        jar.delete("example.com", "/", "a")
        assert await sync.flush() == 1
        assert sync.statistics() == CookieSyncStatistics(0, 2, 1, 2, 0)
    assert {k[2] for k in await stored(jar_path)} == {"b"}


async def test_aclose_flushes_a_last_time(jar_path: Path) -> None:
    """Closing writes what the flusher has not written yet, and closing twice is harmless."""
    jar = CookieJar()
    sync = CookieSync(jar, SqliteCookieStore(jar_path, name="shop"), interval=60)
    await sync.__aenter__()
    jar.set("sid", "abc", domain="example.com")
    await sync.aclose()
    await sync.aclose()
    assert {k[2] for k in await stored(jar_path)} == {"sid"}


async def test_cancelled_crawl_still_flushes(jar_path: Path) -> None:
    """When the task inside the sync is cancelled, leaving the block still saves the jar."""
    jar = CookieJar()
    ready = asyncio.Event()

    async def crawl() -> None:
        async with CookieSync(jar, SqliteCookieStore(jar_path, name="shop"), interval=60):
            jar.set("sid", "abc", domain="example.com")
            ready.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(crawl())
    await ready.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert {k[2] for k in await stored(jar_path)} == {"sid"}


async def test_cancelled_aclose_still_flushes(jar_path: Path) -> None:
    """Cancelling the task while it closes the sync does not lose the final flush."""
    jar = CookieJar()
    sync = CookieSync(jar, CountingStore(jar_path, delay=0.1), interval=60)
    await sync.__aenter__()
    jar.set("sid", "abc", domain="example.com")
    task = asyncio.create_task(sync.aclose())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert {k[2] for k in await stored(jar_path)} == {"sid"}


async def test_failed_flush_is_logged_and_retried(jar_path: Path) -> None:
    """A failing save is logged, keeps its changes, and the flusher retries them by itself."""
    jar = CookieJar()
    store = CountingStore(jar_path, failures=1)
    with capture_logs() as logs:
        async with CookieSync(jar, store, interval=0.05) as sync:
            jar.set("a", "1", domain="example.com")
            assert await sync.flush() == 0
            assert not jar.dirty
            jar.set("b", "2", domain="example.com")
            for _ in range(100):
                if sync.statistics().flushes:
                    break
                await asyncio.sleep(0.01)
            assert sync.statistics() == CookieSyncStatistics(0, 2, 0, 1, 1)
    assert {k[2] for k in await stored(jar_path)} == {"a", "b"}
    failed = [e for e in logs if e["event"] == "cookie flush failed"]
    assert len(failed) == 1
    assert failed[0]["path"] == str(jar_path)
    assert "disk is full" in failed[0]["error"]


async def test_sync_closes_store_when_loading_fails(garbage_jar: Path) -> None:
    """A corrupt jar fails entering the sync, and the store is closed, not left open."""
    store: CookieStore = SqliteCookieStore(garbage_jar, name="shop")
    with pytest.raises(CookieJarCorrupt):
        await CookieSync(CookieJar(), store, interval=60).__aenter__()
    with pytest.raises(RuntimeError, match="closed"):
        await store.load()
