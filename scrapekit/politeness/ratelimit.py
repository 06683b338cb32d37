"""Rate limiting: the per-host gates the scheduler asks before a request may go.

Politeness stage, between the scheduler and the workers. Each request belongs to a slot (its
host, its registered domain with RATE_LIMIT_KEY = "domain", or `meta["download_slot"]`). A slot
opens for a request when its token bucket has a token (RATE per second, BURST deep), its
DOWNLOAD_DELAY has passed since its previous request *started* (as in Scrapy, whose delay runs
start to start), no Retry-After pause holds it, and fewer than CONCURRENCY_PER_HOST of its
requests are in flight. Nothing here sleeps: `acquire()` answers "granted" or "ask again in
so many seconds", and the scheduler parks the request meanwhile. AutoThrottle (AUTOTHROTTLE)
moves each slot's rate within [RATE_MIN, RATE_MAX] from the `feedback()` of finished requests.

Reads RATE, BURST, DOWNLOAD_DELAY, RANDOMIZE_DELAY, CONCURRENCY_PER_HOST, RATE_LIMIT_KEY,
AUTOTHROTTLE, AUTOTHROTTLE_STEP, RATE_MIN and RATE_MAX. A request's `meta` may set its slot's
`rate`, `burst`, `download_delay` and `concurrency_per_host` (None turns that limit off).
"""

from __future__ import annotations

import ipaddress
import math
import random as _random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from heapq import nsmallest
from typing import Any
from urllib.parse import urlsplit

from scrapekit._cache import byte_lru_cache
from scrapekit._resource import AsyncResource
from scrapekit.politeness.autothrottle import SLOWER, AutoThrottle, ThrottleState
from scrapekit.request import Request

__all__ = ["LocalRateLimiter", "RateLimiter", "RateLimiterStatistics", "SlotStatistics"]

KEY_MODES = ("host", "domain")
MAX_SLOTS = 10_000
"""Slots kept before idle ones are evicted, least recently used first."""

# Float rounding must not turn "come back in 0.2 s" into an endless run of 1e-17 s waits: a
# gate this close to open counts as open (a microsecond early, far below any host's notice).
_EPSILON = 1e-6
_MISSING: Any = object()
_OVERRIDES = frozenset({"rate", "burst", "download_delay", "concurrency_per_host"})


@dataclass(frozen=True, slots=True)
class SlotStatistics:
    """One slot's limits as they stand now, and what it has done so far."""

    key: str
    rate: float | None
    """Requests per second allowed now (after AutoThrottle); None for no limit."""
    delay: float
    """Seconds between request starts (before jitter), Crawl-delay included."""
    concurrency: int | None
    """Most requests in flight at once; None for no limit."""
    requests: int
    """Requests granted."""
    throttled: int
    """AutoThrottle slow-downs (429s, 503s and timeouts, one per burst)."""
    paused: int
    """Retry-After pauses that moved the slot's pause end later."""
    waited: float
    """Seconds a request was held back at this slot's gate, from first refusal to grant."""


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    """Every live slot's statistics, by key, and how many idle slots were evicted."""

    backend: str
    slots: Mapping[str, SlotStatistics]
    evicted: int = 0


class RateLimiter(AsyncResource, ABC):
    """Per-host politeness gates: token bucket, delay, per-host concurrency, pauses.

    Async so that a shared (e.g. Redis) backend fits behind the same interface. Times are
    `time.monotonic()` values passed in by the caller (`now`, `until`), so nothing here reads
    a clock. A backend is an async context manager; `aclose()` releases what it holds.
    """

    backend: str = "abstract"
    """Short backend name, reported in the statistics."""

    def __init__(self, *, key: str = "host") -> None:
        if key not in KEY_MODES:
            raise ValueError(f"rate limit key must be 'host' or 'domain', not {key!r}")
        self.key_mode = key
        self._key_of_url = _host_of if key == "host" else _domain_of

    def key_for(self, request: Request) -> str:
        """The slot `request` belongs to: `meta["download_slot"]` if set, else its host.

        The host is the URL's hostname, lower-case, without port or trailing dot: every port
        of a machine shares one slot, as in Scrapy. With `key="domain"` it is the registered
        domain instead (www.example.co.uk and api.example.co.uk share "example.co.uk"); IP
        addresses, single-label hosts (localhost) and public suffixes stay as they are.
        """
        slot = request.meta.get("download_slot")
        if slot is not None:
            return str(slot)
        return self._key_of_url(request.url)

    @abstractmethod
    async def acquire(self, key: str, request: Request, now: float) -> float:
        """Take a place for `request` on slot `key` at time `now`, or say when to ask again.

        Return 0.0 if and only if the request may start now: a token was consumed and a
        concurrency place taken, and the caller must call `release(key, ...)` once the request
        is over. Otherwise nothing was taken and the result is the number of seconds until
        the time-based gates (token bucket, delay, pause) open, or `math.inf` when only the
        concurrency limit blocks (ask again after a `release()`). A granted request never
        makes the slot exceed its rate over any window (a token bucket of `burst` tokens
        refilled at `rate` per second), never starts sooner than the slot's delay (jittered
        0.5x-1.5x, drawn once per gap) after the previous grant, and never while paused.
        `request.meta` may change the slot's limits (see `LocalRateLimiter`).
        """

    @abstractmethod
    async def release(self, key: str, now: float) -> None:
        """A request granted on slot `key` is over (done or failed): free its place."""

    @abstractmethod
    async def pause(self, key: str, until: float) -> None:
        """Grant nothing on slot `key` before `until` (Retry-After); never shortens a pause."""

    @abstractmethod
    async def set_delay(self, key: str, seconds: float) -> None:
        """Apply a robots.txt Crawl-delay: the slot's delay becomes max(its delay, `seconds`)."""

    @abstractmethod
    async def feedback(
        self,
        key: str,
        *,
        status: int | None,
        latency: float | None,
        timed_out: bool = False,
        now: float,
    ) -> None:
        """Report a finished request: its status (None if no response) and latency."""

    @abstractmethod
    def statistics(self) -> RateLimiterStatistics:
        """A snapshot of every slot's limits and counters."""

    async def aclose(self) -> None:
        """Release the backend's resources (nothing, by default)."""


class _Slot:
    """One slot's state; plain attributes, since acquire() reads them on every request."""

    __slots__ = (
        "active",
        "base_delay",
        "burst",
        "concurrency",
        "crawl_delay",
        "delay",
        "factor",
        "interval",
        "meta_burst",
        "meta_concurrency",
        "meta_delay",
        "meta_rate",
        "paused",
        "paused_until",
        "refused_at",
        "requests",
        "started",
        "tat",
        "tau",
        "throttle",
        "throttled",
        "used",
        "waited",
    )

    def __init__(self, limiter: LocalRateLimiter, crawl_delay: float, now: float) -> None:
        self.active = 0
        self.concurrency = limiter.concurrency_per_host  # 0: no limit
        self.base_delay = limiter.delay
        self.crawl_delay = crawl_delay
        self.delay = max(limiter.delay, crawl_delay)
        self.factor = 1.0  # this gap's jitter, drawn at each grant
        self.started = -math.inf
        self.paused_until = -math.inf
        # Token bucket as GCRA: `tat` is when the bucket would be full again; a request fits
        # while tat - now <= tau, i.e. while at least one of `burst` tokens is left.
        self.burst = limiter.burst
        self.interval = 0.0  # seconds per token; 0: no rate limit
        self.tau = 0.0
        self.tat = -math.inf
        self.throttle: ThrottleState | None = None
        self.meta_rate = self.meta_burst = self.meta_delay = self.meta_concurrency = _MISSING
        self.requests = self.throttled = self.paused = 0
        self.waited = 0.0
        self.refused_at: float | None = None
        self.used = now

    def set_rate(self, rate: float, now: float) -> None:
        """Change the rate (0: none), keeping the tokens owed, not the seconds owed."""
        interval = 1.0 / rate if rate > 0 else 0.0
        if interval and self.interval and self.tat > now:
            self.tat = now + (self.tat - now) * (interval / self.interval)
        elif not interval:
            self.tat = -math.inf
        self.interval = interval
        self.tau = (self.burst - 1) * interval

    def idle(self, now: float) -> bool:
        """Whether dropping the slot loses nothing but counters: no debt, pause or request."""
        return (
            self.active == 0
            and self.paused_until <= now
            and self.tat <= now
            and self.started + self.delay * self.factor <= now
        )


class LocalRateLimiter(RateLimiter):
    """Rate limits kept in this process: one slot per host, created on first use.

    Per-request overrides: `meta["rate"]`, `meta["burst"]`, `meta["download_delay"]` and
    `meta["concurrency_per_host"]` set that limit for the request's whole slot, and stay
    until a request carrying a different value changes it again (the last one wins); a
    request without the key leaves the slot as it is, and None turns the limit off (None
    burst means 1). With AutoThrottle, a `meta["rate"]` is the slot's start and ceiling.
    Rate 0 and concurrency 0 mean no limit. Once more than `max_slots` slots exist, idle ones
    (nothing in flight, no tokens owed, no pause or delay pending) are evicted, least
    recently used first, with their counters; a robots.txt Crawl-delay is kept regardless.
    """

    backend = "local"

    def __init__(
        self,
        *,
        rate: float = 0.0,
        burst: int = 1,
        delay: float = 0.0,
        randomize_delay: bool = True,
        concurrency_per_host: int = 8,
        key: str = "host",
        autothrottle: AutoThrottle | None = None,
        random: Callable[[], float] = _random.random,
        max_slots: int = MAX_SLOTS,
    ) -> None:
        super().__init__(key=key)
        self.rate = _number("rate", rate)
        self.burst = _integer("burst", burst, minimum=1)
        self.delay = _number("download_delay", delay)
        self.randomize_delay = randomize_delay
        self.concurrency_per_host = _integer("concurrency_per_host", concurrency_per_host)
        self.autothrottle = autothrottle
        self._random = random
        self._max_slots = max(1, max_slots)
        self._batch = max(1, self._max_slots // 10)
        self._sweep_at = self._max_slots
        self._slots: dict[str, _Slot] = {}
        # Crawl-delays outlive eviction: robots.txt is fetched once a day, not once per slot.
        self._crawl_delays: dict[str, float] = {}
        self._evicted = 0
        self._last_now = -math.inf

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LocalRateLimiter:
        """A limiter for the politeness settings (AUTOTHROTTLE adds an `AutoThrottle`)."""
        return cls(
            rate=float(settings["RATE"]),
            burst=int(settings["BURST"]),
            delay=float(settings["DOWNLOAD_DELAY"]),
            randomize_delay=bool(settings["RANDOMIZE_DELAY"]),
            concurrency_per_host=int(settings["CONCURRENCY_PER_HOST"]),
            key=str(settings["RATE_LIMIT_KEY"]),
            autothrottle=AutoThrottle.from_settings(settings) if settings["AUTOTHROTTLE"] else None,
        )

    # -- the hot path ------------------------------------------------------------------------

    async def acquire(self, key: str, request: Request, now: float) -> float:
        """See `RateLimiter.acquire`."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._create(key, now)
        meta = request.meta
        if meta and not _OVERRIDES.isdisjoint(meta):
            self._override(slot, meta, now)
        slot.used = now
        wait = slot.paused_until - now
        if slot.delay:
            wait = max(wait, slot.started + slot.delay * slot.factor - now)
        if slot.interval:
            wait = max(wait, slot.tat - slot.tau - now)
        if wait > _EPSILON:
            if slot.refused_at is None:
                slot.refused_at = now
            return wait
        if slot.concurrency and slot.active >= slot.concurrency:
            if slot.refused_at is None:
                slot.refused_at = now
            return math.inf
        slot.active += 1
        slot.requests += 1
        slot.started = now
        if slot.interval:
            slot.tat = (slot.tat if slot.tat > now else now) + slot.interval
        if slot.delay and self.randomize_delay:
            slot.factor = 0.5 + self._random()
        if slot.refused_at is not None:
            slot.waited += now - slot.refused_at
            slot.refused_at = None
        return 0.0

    async def release(self, key: str, now: float) -> None:
        """See `RateLimiter.release`."""
        slot = self._slots.get(key)
        if slot is not None and slot.active > 0:
            slot.active -= 1

    # -- signals from the rest of the crawl --------------------------------------------------

    async def pause(self, key: str, until: float) -> None:
        """See `RateLimiter.pause`."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._create(key, self._last_now)
        if until > slot.paused_until:
            slot.paused_until = until
            slot.paused += 1

    async def set_delay(self, key: str, seconds: float) -> None:
        """See `RateLimiter.set_delay`."""
        seconds = _number("Crawl-delay", seconds)
        self._crawl_delays[key] = seconds
        slot = self._slots.get(key)
        if slot is not None:
            slot.crawl_delay = seconds
            slot.delay = max(slot.base_delay, seconds)

    async def feedback(
        self,
        key: str,
        *,
        status: int | None,
        latency: float | None,
        timed_out: bool = False,
        now: float,
    ) -> None:
        """See `RateLimiter.feedback`; only AutoThrottle uses it."""
        if self.autothrottle is None:
            return
        slot = self._slots.get(key)
        if slot is None or slot.throttle is None:
            return
        change = self.autothrottle.observe(
            slot.throttle, status=status, latency=latency, timed_out=timed_out, now=now
        )
        if change:
            if change == SLOWER:
                slot.throttled += 1
            slot.set_rate(slot.throttle.rate, now)

    def statistics(self) -> RateLimiterStatistics:
        """See `RateLimiter.statistics`."""
        slots = {
            key: SlotStatistics(
                key=key,
                rate=1.0 / slot.interval if slot.interval else None,
                delay=slot.delay,
                concurrency=slot.concurrency or None,
                requests=slot.requests,
                throttled=slot.throttled,
                paused=slot.paused,
                waited=slot.waited,
            )
            for key, slot in self._slots.items()
        }
        return RateLimiterStatistics(backend=self.backend, slots=slots, evicted=self._evicted)

    # -- slots -------------------------------------------------------------------------------

    def _create(self, key: str, now: float) -> _Slot:
        self._last_now = now
        if len(self._slots) >= self._sweep_at:
            self._evict(now)
        slot = self._slots[key] = _Slot(self, self._crawl_delays.get(key, 0.0), now)
        if self.autothrottle is not None:
            slot.throttle = self.autothrottle.new_state()
            slot.set_rate(slot.throttle.rate, now)
        elif self.rate:
            slot.set_rate(self.rate, now)
        return slot

    def _evict(self, now: float) -> None:
        """Drop the least recently used idle slots, leaving room for a batch of new ones.

        Done in batches so that the sort is paid once per `_batch` new slots; when too few
        slots are idle, the next sweep waits for another batch rather than rescanning.
        """
        excess = len(self._slots) - (self._max_slots - self._batch)
        idle = [(slot.used, key) for key, slot in self._slots.items() if slot.idle(now)]
        for _, key in nsmallest(excess, idle):
            del self._slots[key]
        self._evicted += min(excess, len(idle))
        self._sweep_at = max(self._max_slots, len(self._slots) + self._batch)

    def _override(self, slot: _Slot, meta: Mapping[str, Any], now: float) -> None:
        """Apply a request's per-slot limits from `meta` (only those that changed)."""
        value = meta.get("rate", _MISSING)
        if value is not _MISSING and value != slot.meta_rate:
            slot.meta_rate = value
            rate = 0.0 if value is None else _number('meta["rate"]', value)
            if self.autothrottle is not None:
                slot.throttle = self.autothrottle.new_state(rate) if rate else None
            slot.set_rate(rate, now)
        value = meta.get("burst", _MISSING)
        if value is not _MISSING and value != slot.meta_burst:
            slot.meta_burst = value
            slot.burst = 1 if value is None else _integer('meta["burst"]', value, minimum=1)
            slot.tau = (slot.burst - 1) * slot.interval
        value = meta.get("download_delay", _MISSING)
        if value is not _MISSING and value != slot.meta_delay:
            slot.meta_delay = value
            slot.base_delay = 0.0 if value is None else _number('meta["download_delay"]', value)
            slot.delay = max(slot.base_delay, slot.crawl_delay)
        value = meta.get("concurrency_per_host", _MISSING)
        if value is not _MISSING and value != slot.meta_concurrency:
            slot.meta_concurrency = value
            slot.concurrency = (
                0 if value is None else _integer('meta["concurrency_per_host"]', value)
            )


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name} = {value!r}: expected a number >= 0")
    return float(value)


def _integer(name: str, value: Any, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} = {value!r}: expected an integer >= {minimum}")
    return value


# -- slot keys ---------------------------------------------------------------------------------


# Keyed by whole URLs, so bounded in bytes (4 MiB: ~15,000 typical URLs), as every URL cache is.
@byte_lru_cache(4 << 20)
def _host_of(url: str) -> str:
    """The URL's hostname, lower-case, without port or trailing dot (cached: called per hop)."""
    return (urlsplit(url).hostname or "").rstrip(".")


@byte_lru_cache(4 << 20)
def _domain_of(url: str) -> str:
    return _registered_domain(_host_of(url))


@byte_lru_cache(1 << 20)
def _registered_domain(host: str) -> str:
    """The host's registered domain; the host itself for IPs, single labels, public suffixes."""
    if "." not in host or ":" in host:  # localhost, intranet names, IPv6
        return host
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return _suffix_list().privatesuffix(host) or host
    return host


@lru_cache(maxsize=1)
def _suffix_list() -> Any:
    # Loading the list takes ~40 ms, paid only by crawls that key by domain.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()
