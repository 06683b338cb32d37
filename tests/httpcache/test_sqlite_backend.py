"""The SQLite HTTP cache backend: entries round-trip, the file is private, foreign files refused."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from scrapekit.exceptions import ConfigError, HttpCacheCorrupt
from scrapekit.httpcache import CachedEntry, SqliteHttpCache


def entry(fingerprint: bytes = b"f" * 16, status: int = 200) -> CachedEntry:
    return CachedEntry(
        fingerprint=fingerprint,
        method="POST",
        request_url="http://example.com/search",
        url="http://example.com/results?q=caf%C3%A9",
        status=status,
        headers=[("Content-Type", "text/html; charset=utf-8"), ("Link", "<a>"), ("Link", "<b>")],
        body=b"\x00\xffbody\xe9",
        http_version="HTTP/1.1",
        redirect_urls=["http://example.com/search"],
        stored_at=1234.5,
    )


async def test_an_entry_round_trips_exactly(tmp_path: Path) -> None:
    """What is put comes back from a new connection as it was: binary body, repeated headers
    in order, redirects; a second put under the same fingerprint replaces the first."""
    path = tmp_path / "spider" / "httpcache.db"
    async with SqliteHttpCache(path) as cache:
        await cache.put(entry(status=404))
        await cache.put(entry())
        assert await cache.get(b"x" * 16) is None
    async with SqliteHttpCache(path) as cache:
        assert await cache.get(b"f" * 16) == entry()


async def test_the_file_is_owner_only(tmp_path: Path) -> None:
    """The cache file is 0600 in a 0700 folder, like the other state files."""
    path = tmp_path / "state" / "spider" / "httpcache.db"
    async with SqliteHttpCache(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: p.write_bytes(b"garbage " * 1000), id="not-sqlite"),
        pytest.param(
            lambda p: sqlite3.connect(p).execute("CREATE TABLE other (x)").connection.commit(),
            id="foreign-sqlite",
        ),
    ],
)
async def test_a_foreign_file_is_refused_and_left_alone(tmp_path: Path, make: object) -> None:
    """A file that is not a scrapekit cache raises HttpCacheCorrupt (a ConfigError: exit
    code 2) naming the file and the fix, and is not changed."""
    path = tmp_path / "httpcache.db"
    make(path)  # type: ignore[operator]
    before = path.read_bytes()
    with pytest.raises(HttpCacheCorrupt) as caught:
        async with SqliteHttpCache(path):
            pass
    assert isinstance(caught.value, ConfigError)
    assert str(path) in str(caught.value)
    assert "delete it" in str(caught.value)
    assert path.read_bytes() == before
