"""byte_lru_cache and the URL caches built on it: bounded in bytes, least recent out first."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from scrapekit._cache import byte_lru_cache
from scrapekit.politeness.ratelimit import _domain_of, _host_of
from scrapekit.politeness.robots import origin_of
from scrapekit.request import check_url
from scrapekit.scheduler.fingerprint import canonicalize_url


def test_budget_is_bytes_and_the_least_recent_goes_first() -> None:
    """Entries are dropped oldest-used first once keys and values pass the byte budget."""
    calls: list[str] = []

    @byte_lru_cache(4096, max_entry=4096)
    def upper(key: str) -> str:
        calls.append(key)
        return key.upper()

    keys = [f"{i}" * 400 for i in range(1, 4)]  # ~450 bytes each, ~1 KB with the value
    for key in keys:
        upper(key)
    upper(keys[0])  # used again: now the most recent
    for i in range(4, 6):  # the fifth entry passes the budget
        upper(f"{i}" * 400)
    info = upper.cache_info()
    assert info.bytes <= 4096
    assert info.entries == 4
    calls.clear()
    upper(keys[0])
    assert calls == []  # kept: recently used
    upper(keys[1])
    assert calls == [keys[1]]  # evicted: least recently used


def test_entries_over_max_entry_are_computed_but_never_kept() -> None:
    """A huge key is answered every time and held by nothing, so it cannot push others out."""
    cached = byte_lru_cache(1 << 20, max_entry=1024)(str.lower)
    cached("short")
    assert cached("X" * 2000) == "x" * 2000
    info = cached.cache_info()
    assert (info.entries, info.misses) == (1, 2)


def test_exceptions_are_not_cached() -> None:
    """A failing call raises again next time (and is not stored)."""
    calls = 0

    @byte_lru_cache(1024)
    def fail(key: str) -> str:
        nonlocal calls
        calls += 1
        raise ValueError(key)

    for _ in range(2):
        with pytest.raises(ValueError, match="bad"):
            fail("bad")
    assert calls == 2
    assert fail.cache_info().entries == 0


def test_bad_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        byte_lru_cache(0)


def _huge_url(i: int) -> str:
    return f"http://elsewhere.example/{i}/" + "x" * 63_000


@pytest.mark.parametrize(
    "func",
    [check_url, canonicalize_url, _host_of, _domain_of, origin_of],
    ids=["check_url", "canonicalize_url", "host_of", "domain_of", "origin_of"],
)
def test_url_caches_do_not_keep_huge_urls(func: Callable[[str], object]) -> None:
    """200 distinct 63 KB URLs (12 MB) leave well under 1 MB behind in the URL caches."""
    func("http://warm.example/")  # loads what a first call loads (the Public Suffix List)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(200):
            func(_huge_url(i))  # each URL is garbage at once, unless a cache keeps it
        # urllib's own urlsplit cache holds its last 128 URLs: bounded by Python, not ours.
        urlsplit.cache_clear()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1 << 20, f"{kept} bytes kept"
