"""LocalRateLimiter: token bucket, delay, per-host concurrency, pauses, slot keys, statistics."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from scrapekit.politeness.autothrottle import AutoThrottle
from scrapekit.politeness.ratelimit import LocalRateLimiter, RateLimiterStatistics, SlotStatistics
from scrapekit.request import Request
from scrapekit.settings import Settings

HOST = "example.com"


def request(url: str = "http://example.com/", **meta: Any) -> Request:
    return Request(url, meta=meta)


def fixed(*values: float) -> Callable[[], float]:
    """A stand-in for random.random() that returns `values` in turn, then repeats the last."""
    queue = list(values)
    return lambda: queue.pop(0) if len(queue) > 1 else queue[0]


# -- token bucket ----------------------------------------------------------------------------


@pytest.mark.parametrize("burst", [pytest.param(1, id="burst-1"), pytest.param(3, id="burst-3")])
async def test_bucket_never_exceeds_rate_over_any_window(burst: int) -> None:
    """1000 attempts over 20 s at RATE=5: every 1 s window holds at most 5 + burst - 1 grants."""
    limiter = LocalRateLimiter(rate=5.0, burst=burst, randomize_delay=False)
    rng = random.Random(1234)
    start = now = 1000.0
    grants = []
    for _ in range(1000):
        wait = await limiter.acquire(HOST, request(), now)
        if wait == 0.0:
            grants.append(now)
            await limiter.release(HOST, now)
            now += rng.uniform(0.0, 0.02)
        else:
            # Often exactly the wait returned (float rounding must not stall), else sooner.
            now += wait if rng.random() < 0.1 else min(wait, rng.uniform(0.0, 0.02))
    assert 18.0 < now - start < 22.0
    per_window = 5 + burst - 1
    # A window starting at each grant: the grant `per_window` later must be a second away.
    for first, later in zip(grants, grants[per_window:], strict=False):
        assert later - first >= 1.0 - 1e-6
    steady = [b - a for a, b in itertools.pairwise(grants[burst:])]
    assert min(steady) >= 0.2 - 1e-6
    assert sum(steady) / len(steady) == pytest.approx(0.2, abs=0.02)


async def test_wait_returned_is_exactly_when_the_next_token_arrives() -> None:
    """After a grant at RATE=5 the next acquire is told 0.2 s, and granted when it comes back."""
    limiter = LocalRateLimiter(rate=5.0)
    assert await limiter.acquire(HOST, request(), 10.0) == 0.0
    wait = await limiter.acquire(HOST, request(), 10.05)
    assert wait == pytest.approx(0.15)
    assert await limiter.acquire(HOST, request(), 10.05 + wait) == 0.0


async def test_burst_allows_that_many_at_once_after_idle() -> None:
    """BURST=3 grants three requests at the same instant after idling, then refuses the fourth."""
    limiter = LocalRateLimiter(rate=5.0, burst=3)
    assert [await limiter.acquire(HOST, request(), 50.0) for _ in range(3)] == [0.0] * 3
    assert await limiter.acquire(HOST, request(), 50.0) == pytest.approx(0.2)
    # Idle long enough for the bucket to fill: another burst of three.
    assert [await limiter.acquire(HOST, request(), 60.0) for _ in range(3)] == [0.0] * 3


async def test_rate_zero_means_no_limit() -> None:
    """With RATE=0 (the default) many requests at one instant are only bounded by concurrency."""
    limiter = LocalRateLimiter(concurrency_per_host=0)
    assert all([await limiter.acquire(HOST, request(), 1.0) == 0.0 for _ in range(100)])


# -- download delay --------------------------------------------------------------------------


async def test_delay_without_jitter_spaces_request_starts() -> None:
    """DOWNLOAD_DELAY=2 without jitter: the next request starts exactly 2 s after the last."""
    limiter = LocalRateLimiter(delay=2.0, randomize_delay=False)
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    assert await limiter.acquire(HOST, request(), 0.5) == pytest.approx(1.5)
    assert await limiter.acquire(HOST, request(), 2.0) == 0.0
    assert await limiter.acquire(HOST, request(), 2.0) == pytest.approx(2.0)


async def test_delay_counts_from_the_previous_start() -> None:
    """The delay runs from the previous request's start (as in Scrapy), not from its end."""
    limiter = LocalRateLimiter(delay=2.0, randomize_delay=False)
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    await limiter.release(HOST, 5.0)
    assert await limiter.acquire(HOST, request(), 5.0) == 0.0


@pytest.mark.parametrize(
    ("drawn", "gap"),
    [
        pytest.param(0.0, 1.0, id="half"),
        pytest.param(0.5, 2.0, id="same"),
        pytest.param(0.999, 2.998, id="almost-one-and-a-half"),
    ],
)
async def test_jittered_delay_is_half_to_one_and_a_half_times(drawn: float, gap: float) -> None:
    """RANDOMIZE_DELAY scales each gap by 0.5 + random(), drawn once when the gap begins."""
    limiter = LocalRateLimiter(delay=2.0, random=fixed(drawn, 0.25))
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    assert await limiter.acquire(HOST, request(), 0.1) == pytest.approx(gap - 0.1)
    assert await limiter.acquire(HOST, request(), 0.2) == pytest.approx(gap - 0.2)  # same draw
    assert await limiter.acquire(HOST, request(), gap) == 0.0
    assert await limiter.acquire(HOST, request(), gap) == pytest.approx(1.5)  # next draw: 0.75x


async def test_jitter_stays_within_bounds_over_many_gaps() -> None:
    """Over many gaps with a seeded random source, every gap is within 0.5x-1.5x the delay."""
    limiter = LocalRateLimiter(delay=1.0, random=random.Random(7).random)
    now, starts = 0.0, []
    while len(starts) < 200:
        wait = await limiter.acquire(HOST, request(), now)
        if wait == 0.0:
            starts.append(now)
            await limiter.release(HOST, now)
        else:
            now += wait
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.5 - 1e-6
    assert max(gaps) <= 1.5 + 1e-6
    assert max(gaps) - min(gaps) > 0.5  # really jittered


async def test_set_delay_takes_the_larger_delay() -> None:
    """A Crawl-delay raises the slot's delay but never lowers DOWNLOAD_DELAY."""
    limiter = LocalRateLimiter(delay=2.0, randomize_delay=False)
    await limiter.acquire(HOST, request(), 0.0)
    await limiter.set_delay(HOST, 1.0)
    assert await limiter.acquire(HOST, request(), 1.0) == pytest.approx(1.0)
    await limiter.set_delay(HOST, 5.0)
    assert await limiter.acquire(HOST, request(), 1.0) == pytest.approx(4.0)
    assert limiter.statistics().slots[HOST].delay == 5.0


async def test_set_delay_before_the_first_request_applies_to_it() -> None:
    """A Crawl-delay learned before the slot exists is applied when the slot is created."""
    limiter = LocalRateLimiter(randomize_delay=False)
    await limiter.set_delay(HOST, 3.0)
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    assert await limiter.acquire(HOST, request(), 1.0) == pytest.approx(2.0)


# -- concurrency -----------------------------------------------------------------------------


async def test_full_concurrency_returns_inf_until_a_release() -> None:
    """With CONCURRENCY_PER_HOST=2 the third acquire gets inf, and is granted after a release."""
    limiter = LocalRateLimiter(concurrency_per_host=2)
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    assert await limiter.acquire(HOST, request(), 0.0) == math.inf
    await limiter.release(HOST, 1.0)
    assert await limiter.acquire(HOST, request(), 1.0) == 0.0
    assert await limiter.acquire(HOST, request(), 1.0) == math.inf


async def test_a_time_gate_is_reported_before_the_concurrency_limit() -> None:
    """A paused slot that is also full answers the pause's wait, not inf."""
    limiter = LocalRateLimiter(concurrency_per_host=1)
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    await limiter.pause(HOST, 10.0)
    assert await limiter.acquire(HOST, request(), 4.0) == pytest.approx(6.0)


# -- pauses and independence -----------------------------------------------------------------


async def test_pause_holds_until_then_only_extends() -> None:
    """Nothing is granted before `until`; a later pause extends it and an earlier one is ignored."""
    limiter = LocalRateLimiter()
    await limiter.pause(HOST, 30.0)
    assert await limiter.acquire(HOST, request(), 10.0) == pytest.approx(20.0)
    await limiter.pause(HOST, 20.0)
    assert await limiter.acquire(HOST, request(), 10.0) == pytest.approx(20.0)
    await limiter.pause(HOST, 40.0)
    assert await limiter.acquire(HOST, request(), 30.0) == pytest.approx(10.0)
    assert await limiter.acquire(HOST, request(), 40.0) == 0.0
    assert limiter.statistics().slots[HOST].paused == 2


async def test_hosts_are_independent() -> None:
    """A paused, throttled, delayed and full host never delays another host."""
    limiter = LocalRateLimiter(
        rate=1.0,
        delay=5.0,
        concurrency_per_host=1,
        autothrottle=AutoThrottle(0.5, 1.0, 0.5),
    )
    other = "other.example"
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    await limiter.pause(HOST, 100.0)
    await limiter.feedback(HOST, status=429, latency=0.1, now=0.5)
    assert await limiter.acquire(HOST, request(), 1.0) > 0
    assert await limiter.acquire(other, request("http://other.example/"), 1.0) == 0.0
    stats = limiter.statistics().slots
    assert stats[HOST].rate == 0.5
    assert stats[other].rate == 1.0


# -- slot keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "url", "key"),
    [
        pytest.param("host", "http://WWW.Example.CO.UK/", "www.example.co.uk", id="host-lower"),
        pytest.param("host", "http://example.com:8080/", "example.com", id="host-port-ignored"),
        pytest.param("host", "http://example.com./", "example.com", id="host-trailing-dot"),
        pytest.param("host", "http://127.0.0.1:5000/", "127.0.0.1", id="host-ip"),
        pytest.param("domain", "https://www.example.co.uk/", "example.co.uk", id="domain-www"),
        pytest.param("domain", "https://api.example.co.uk/", "example.co.uk", id="domain-api"),
        pytest.param("domain", "https://a.b.example.com:444/", "example.com", id="domain-port"),
        pytest.param("domain", "http://127.0.0.1:8000/", "127.0.0.1", id="domain-ipv4"),
        pytest.param("domain", "http://[::1]:8000/", "::1", id="domain-ipv6"),
        pytest.param("domain", "http://localhost:8000/", "localhost", id="domain-localhost"),
        pytest.param("domain", "https://github.io/", "github.io", id="domain-public-suffix"),
        pytest.param("domain", "https://me.github.io/", "me.github.io", id="domain-private-suffix"),
    ],
)
def test_key_for_host_or_domain(mode: str, url: str, key: str) -> None:
    """Slots key by hostname (ports ignored) or by registered domain; IPs and localhost stay."""
    assert LocalRateLimiter(key=mode).key_for(request(url)) == key


def test_download_slot_meta_picks_the_slot() -> None:
    """meta["download_slot"] overrides the host; None means the host, as when it is missing."""
    limiter = LocalRateLimiter(key="domain")
    assert limiter.key_for(request(download_slot="api-pool")) == "api-pool"
    assert limiter.key_for(request(download_slot=None)) == "example.com"


def test_unknown_key_mode_is_refused() -> None:
    """RATE_LIMIT_KEY other than host or domain raises ValueError."""
    with pytest.raises(ValueError, match="host' or 'domain"):
        LocalRateLimiter(key="ip")


# -- per-request overrides -------------------------------------------------------------------


async def test_meta_rate_sets_the_slot_rate_and_none_turns_it_off() -> None:
    """meta["rate"] limits the slot; a later None lifts the limit; a missing key inherits."""
    limiter = LocalRateLimiter(rate=100.0)
    assert await limiter.acquire(HOST, request(rate=1.0), 0.0) == 0.0
    assert await limiter.acquire(HOST, request(), 0.5) == pytest.approx(0.5)
    assert limiter.statistics().slots[HOST].rate == 1.0
    assert await limiter.acquire(HOST, request(rate=None), 0.5) == 0.0
    assert await limiter.acquire(HOST, request(), 0.5) == 0.0
    assert limiter.statistics().slots[HOST].rate is None


async def test_meta_burst_and_delay_and_concurrency() -> None:
    """meta burst, download_delay and concurrency_per_host set the slot's limits; last one wins."""
    limiter = LocalRateLimiter(rate=1.0, randomize_delay=False)
    assert [await limiter.acquire(HOST, request(burst=2), 0.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    other = LocalRateLimiter(randomize_delay=False)
    assert await other.acquire(HOST, request(download_delay=3.0), 0.0) == 0.0
    assert await other.acquire(HOST, request(download_delay=1.0), 0.5) == pytest.approx(0.5)
    assert await other.acquire(HOST, request(download_delay=None), 0.6) == 0.0
    assert await other.acquire(HOST, request(concurrency_per_host=2), 0.6) == math.inf
    assert await other.acquire(HOST, request(concurrency_per_host=None), 0.6) == 0.0


async def test_meta_overrides_apply_to_their_slot_only() -> None:
    """A request's meta limits change only the slot that request belongs to."""
    limiter = LocalRateLimiter()
    assert await limiter.acquire("a", request(concurrency_per_host=1), 0.0) == 0.0
    assert await limiter.acquire("a", request(), 0.0) == math.inf
    assert await limiter.acquire("b", request(), 0.0) == 0.0
    assert await limiter.acquire("b", request(), 0.0) == 0.0


async def test_repeated_meta_rate_does_not_undo_autothrottle() -> None:
    """A repeated meta["rate"] keeps AutoThrottle's slow-down; a different value resets it."""
    limiter = LocalRateLimiter(autothrottle=AutoThrottle(0.5, 50.0, 0.5))
    await limiter.acquire(HOST, request(rate=4.0), 0.0)
    await limiter.feedback(HOST, status=429, latency=0.1, now=0.1)
    await limiter.acquire(HOST, request(rate=4.0), 5.0)
    assert limiter.statistics().slots[HOST].rate == 2.0
    await limiter.acquire(HOST, request(rate=3.0), 10.0)
    assert limiter.statistics().slots[HOST].rate == 3.0


@pytest.mark.parametrize(
    "meta",
    [
        pytest.param({"rate": -1}, id="negative-rate"),
        pytest.param({"rate": "fast"}, id="text-rate"),
        pytest.param({"burst": 0}, id="zero-burst"),
        pytest.param({"burst": 1.5}, id="fractional-burst"),
        pytest.param({"download_delay": float("nan")}, id="nan-delay"),
        pytest.param({"concurrency_per_host": True}, id="bool-concurrency"),
    ],
)
async def test_bad_meta_values_raise(meta: dict[str, Any]) -> None:
    """A meta limit that is not a usable number raises ValueError naming the key."""
    limiter = LocalRateLimiter()
    with pytest.raises(ValueError, match=r"meta\["):
        await limiter.acquire(HOST, request(**meta), 0.0)


# -- AutoThrottle through the limiter --------------------------------------------------------


async def test_autothrottle_slows_the_bucket_and_counts() -> None:
    """A 429 halves the slot's bucket rate once per burst, and statistics count it as throttled."""
    limiter = LocalRateLimiter(autothrottle=AutoThrottle(0.5, 4.0, 0.5))
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    for i in range(5):
        await limiter.feedback(HOST, status=429, latency=0.2, now=0.1 + i * 0.01)
    await limiter.release(HOST, 0.2)
    # The 0.6 token still owed at the halving now refills at 2/s: due at 0.4, not 0.25.
    assert await limiter.acquire(HOST, request(), 0.2) == pytest.approx(0.2)
    assert await limiter.acquire(HOST, request(), 0.4) == 0.0
    assert await limiter.acquire(HOST, request(), 0.4) == pytest.approx(0.5)
    stats = limiter.statistics().slots[HOST]
    assert (stats.rate, stats.throttled) == (2.0, 1)


async def test_autothrottle_grows_while_healthy() -> None:
    """Healthy feedback raises the slot's rate by the step each second, up to the maximum."""
    limiter = LocalRateLimiter(autothrottle=AutoThrottle(0.5, 2.0, 0.5, start=1.0))
    await limiter.acquire(HOST, request(), 0.0)
    for i in range(50):
        await limiter.feedback(HOST, status=200, latency=0.1, now=i * 0.1)
    assert limiter.statistics().slots[HOST].rate == 2.0


async def test_feedback_without_autothrottle_is_ignored() -> None:
    """Without AutoThrottle, feedback changes nothing and needs no slot."""
    limiter = LocalRateLimiter(rate=5.0)
    await limiter.feedback("never.seen", status=429, latency=None, timed_out=True, now=0.0)
    assert limiter.statistics().slots == {}


# -- statistics, eviction, construction ------------------------------------------------------


async def test_statistics_content() -> None:
    """statistics() reports each slot's limits, grants, pauses and total waiting time."""
    limiter = LocalRateLimiter(rate=2.0, delay=1.0, randomize_delay=False, concurrency_per_host=4)
    assert await limiter.acquire(HOST, request(), 0.0) == 0.0
    assert await limiter.acquire(HOST, request(), 0.25) == pytest.approx(0.75)
    assert await limiter.acquire(HOST, request(), 0.5) == pytest.approx(0.5)
    assert await limiter.acquire(HOST, request(), 1.0) == 0.0  # held back since 0.25
    await limiter.pause(HOST, 9.0)
    assert limiter.statistics() == RateLimiterStatistics(
        backend="local",
        slots={
            HOST: SlotStatistics(
                key=HOST,
                rate=2.0,
                delay=1.0,
                concurrency=4,
                requests=2,
                throttled=0,
                paused=1,
                waited=0.75,
            )
        },
        evicted=0,
    )


async def test_default_limits_report_none() -> None:
    """No rate and no concurrency limit are reported as None, not 0."""
    limiter = LocalRateLimiter(concurrency_per_host=0)
    await limiter.acquire(HOST, request(), 0.0)
    stats = limiter.statistics().slots[HOST]
    assert (stats.rate, stats.delay, stats.concurrency) == (None, 0.0, None)


async def test_idle_slots_are_evicted_to_bound_memory() -> None:
    """Past max_slots, idle slots go least recently used first; busy and paused ones stay."""
    limiter = LocalRateLimiter(max_slots=100)
    await limiter.acquire("busy", request(), 0.0)  # in flight for the whole test
    await limiter.pause("paused", 1e9)
    await limiter.set_delay("slow", 7.0)
    await limiter.acquire("slow", request(), 0.0)
    await limiter.release("slow", 0.0)
    for i in range(1000):
        key = f"host{i}.example"
        assert await limiter.acquire(key, request(), 1.0 + i) == 0.0
        await limiter.release(key, 1.0 + i)
    stats = limiter.statistics()
    assert len(stats.slots) <= 100
    assert {"busy", "paused", "host999.example"} <= set(stats.slots)
    assert stats.evicted == 1003 - len(stats.slots)
    # The Crawl-delay outlives the slot's eviction.
    assert "slow" not in stats.slots
    assert await limiter.acquire("slow", request(), 2000.0) == 0.0
    assert await limiter.acquire("slow", request(), 2001.0) > 0


async def test_a_slot_owing_tokens_is_not_evicted() -> None:
    """A slot whose bucket is not yet full again is kept even when it is the oldest."""
    limiter = LocalRateLimiter(rate=0.001, max_slots=10)
    await limiter.acquire("owing", request(), 0.0)
    await limiter.release("owing", 0.0)
    for i in range(50):
        await limiter.acquire(f"h{i}", request(), 1.0 + i)
        await limiter.release(f"h{i}", 1.0 + i)
    assert "owing" in limiter.statistics().slots


async def test_from_settings_reads_the_politeness_group() -> None:
    """from_settings reads every politeness setting the limiter uses, AUTOTHROTTLE included."""
    settings = Settings()
    for key, value in {
        "RATE": 3.0,
        "BURST": 2,
        "DOWNLOAD_DELAY": 0.5,
        "RANDOMIZE_DELAY": False,
        "CONCURRENCY_PER_HOST": 2,
        "RATE_LIMIT_KEY": "domain",
        "AUTOTHROTTLE": True,
    }.items():
        settings.set(key, value, priority="cmdline")
    async with LocalRateLimiter.from_settings(settings) as limiter:
        assert limiter.key_for(request("http://www.example.co.uk/")) == "example.co.uk"
        assert await limiter.acquire(HOST, request(), 0.0) == 0.0
        stats = limiter.statistics().slots[HOST]
        assert (stats.rate, stats.delay, stats.concurrency) == (3.0, 0.5, 2)
        assert limiter.autothrottle is not None
        assert limiter.autothrottle.max_rate == 50.0


async def test_default_settings_give_an_open_gate() -> None:
    """With every politeness setting at its default, only CONCURRENCY_PER_HOST=8 applies."""
    limiter = LocalRateLimiter.from_settings(Settings())
    assert limiter.autothrottle is None
    assert [await limiter.acquire(HOST, request(), 0.0) for _ in range(9)] == [0.0] * 8 + [math.inf]


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"rate": -1.0}, id="negative-rate"),
        pytest.param({"burst": 0}, id="zero-burst"),
        pytest.param({"delay": -0.5}, id="negative-delay"),
        pytest.param({"concurrency_per_host": -1}, id="negative-concurrency"),
    ],
)
def test_bad_constructor_values_raise(kwargs: dict[str, Any]) -> None:
    """Negative limits and a burst below 1 raise ValueError."""
    with pytest.raises(ValueError, match="expected"):
        LocalRateLimiter(**kwargs)
