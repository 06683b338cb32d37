"""The read-only cookie store: it loads a jar and changes nothing on disk, whatever happens."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from scrapekit.exceptions import CookieJarCorrupt, SessionError
from scrapekit.session.cookiejar import Cookie, CookieJar
from scrapekit.session.cookiestore import CookieSync, SqliteCookieStore


def cookie(name: str = "sid", value: str = "abc", **fields: Any) -> Cookie:
    """A cookie on example.com with the given fields."""
    return dataclasses.replace(Cookie(name, value, "example.com", "/"), **fields)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in the folder: its bytes and mtime."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture
async def jar(tmp_path: Path) -> Path:
    """A jar written by the ordinary store: one live cookie, one expired."""
    path = tmp_path / "shop" / "session.db"
    async with SqliteCookieStore(path, name="shop") as store:
        await store.save([cookie("live"), cookie("old", expires=time.time() - 10)], [])
    return path


async def test_loads_live_cookies_and_changes_no_file(jar: Path) -> None:
    """The live cookie loads, the expired one is skipped, and no file changes or appears."""
    before = snapshot(jar.parent)
    async with SqliteCookieStore(jar, name="shop", read_only=True) as store:
        assert [c.name for c in await store.load()] == ["live"]
    assert snapshot(jar.parent) == before
    rows = sqlite3.connect(jar).execute("SELECT name FROM cookies ORDER BY name").fetchall()
    assert rows == [("live",), ("old",)]  # the expired row is left for a writer to purge


async def test_missing_jar_is_empty_and_stays_missing(tmp_path: Path) -> None:
    """A jar that does not exist loads as no cookies; neither it nor its folder is created."""
    path = tmp_path / "none" / "session.db"
    async with SqliteCookieStore(path, name="none", read_only=True) as store:
        assert await store.load() == []
    assert not snapshot(tmp_path)


async def test_save_and_clear_are_refused(jar: Path) -> None:
    """Writing through a read-only store raises SessionError naming the jar."""
    async with SqliteCookieStore(jar, name="shop", read_only=True) as store:
        with pytest.raises(SessionError, match="read-only"):
            await store.save([cookie("new")], [])
        with pytest.raises(SessionError, match="read-only"):
            await store.clear()


async def test_sync_forgets_changes_instead_of_saving(jar: Path) -> None:
    """A CookieSync on a read-only store loads the jar, and what the session then sets is
    never written, neither by flush() nor when it closes."""
    before = snapshot(jar.parent)
    jar_in_memory = CookieJar()
    store = SqliteCookieStore(jar, name="shop", read_only=True)
    async with CookieSync(jar_in_memory, store, interval=0.01) as sync:
        assert sync.loaded == 1
        jar_in_memory.set("new", "1", domain="example.com")
        assert jar_in_memory.dirty
        assert await sync.flush() == 0
    assert snapshot(jar.parent) == before


async def test_reads_a_jar_another_connection_is_writing(jar: Path) -> None:
    """With a writer's WAL present, committed cookies are read through it (not the stale
    main file), and the writer's files are left as they were."""
    writer = sqlite3.connect(jar, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode = WAL")
        writer.execute("UPDATE cookies SET value = 'fresh', expires = NULL WHERE name = 'live'")
        assert f"{jar.name}-wal" in snapshot(jar.parent)
        main_file = snapshot(jar.parent)[jar.name][0]
        async with SqliteCookieStore(jar, name="shop", read_only=True) as store:
            assert [(c.name, c.value) for c in await store.load()] == [("live", "fresh")]
        assert snapshot(jar.parent)[jar.name][0] == main_file
    finally:
        writer.close()


async def test_corrupt_jar_is_reported_not_reset(tmp_path: Path) -> None:
    """A file that is not a jar raises CookieJarCorrupt and keeps its bytes."""
    path = tmp_path / "session.db"
    path.write_bytes(b"not a database at all\n" * 100)
    async with SqliteCookieStore(path, name="shop", read_only=True) as store:
        with pytest.raises(CookieJarCorrupt, match="corrupt"):
            await store.load()
    assert snapshot(tmp_path)[path.name][0] == b"not a database at all\n" * 100
