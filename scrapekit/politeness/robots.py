"""robots.txt: fetched once per origin through the session, parsed with protego, cached.

A politeness gate between the scheduler and the workers. Parsing is protego's job: this module
adds the transport rules of Google's robots.txt spec and RFC 9309 around it:

- 2xx: the body is the rules (UTF-8 with replacement, a byte-order mark stripped, only the
  first 500 KiB read, as Google does);
- redirects are followed by the session; more than it follows means "unavailable";
- 4xx (401 and 403 too, as Google does): unavailable, so everything is allowed;
- 429, 5xx and unreachable hosts (any other `FetchError`): everything is disallowed, and the
  host's requests are held while the file is fetched again.

While robots.txt is unavailable the host's requests are held, not dropped, but only for
ROBOTSTXT_TIMEOUT in all, fetch attempts and holds included (unbounded, a silent server held a
host for three fetches of up to DOWNLOAD_TIMEOUT each plus two holds of
ROBOTSTXT_RETRY_SECONDS: 10 minutes for a 500, far more for a server that never answers).
Within that budget the file is fetched ATTEMPTS times, evenly spaced (or every
ROBOTSTXT_RETRY_SECONDS if that is shorter). Then the cache gives up on the host with a WARNING
naming it and the fix, and its requests are dropped as "robots.txt unavailable" until
ROBOTSTXT_RETRY_SECONDS have passed, when a new budget starts.

Reads ROBOTSTXT_USER_AGENT (empty: the product token of USER_AGENT), ROBOTSTXT_RETRY_SECONDS
and ROBOTSTXT_TIMEOUT; the engine reads ROBOTSTXT_OBEY to decide whether to build one.
"""

from __future__ import annotations

import asyncio
import codecs
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx2
import structlog
from protego import Protego

from scrapekit._utils import origin_of
from scrapekit.exceptions import (
    BadRedirect,
    FetchError,
    InvalidURL,
    RedirectBlocked,
    SessionError,
    TooManyRedirects,
)
from scrapekit.request import Request
from scrapekit.response import Response

if TYPE_CHECKING:
    from scrapekit.settings import Settings

log = structlog.get_logger(__name__)

#: Fetches of an unavailable robots.txt within one ROBOTSTXT_TIMEOUT, spread evenly over it.
ATTEMPTS = 3
#: Google reads the first 500 KiB of a robots.txt and ignores the rest.
MAX_ROBOTS_BYTES = 500 * 1024
#: RFC 9309 2.4: a cached robots.txt should not be used for more than 24 hours.
MAX_AGE_SECONDS = 86_400.0
#: Longest Crawl-delay obeyed (as RETRY_AFTER_MAX's default): "Crawl-delay: 1e300" parses as
#: a number, and would otherwise park the host's requests for ever.
MAX_CRAWL_DELAY = 600.0
_BOM = codecs.BOM_UTF8
#: Redirect failures mean "no robots.txt where the redirects lead": unavailable, like a 404
#: (RFC 9309 2.3.1.2; Google treats more than 5 hops as a 404), not an unreachable server.
_UNAVAILABLE_ERRORS = (TooManyRedirects, RedirectBlocked, InvalidURL, BadRedirect)

Fetch = Callable[[Request], Awaitable[Response]]
CrawlDelayHook = Callable[[str, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RobotsStatistics:
    """robots.txt fetches by outcome, and how many requests the rules turned away."""

    fetched: int
    disallowed: int
    by_status: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class _Rules:
    """One origin's verdict: a parsed file, or a blanket allow/deny until `expires`.

    A blanket deny is robots.txt being unavailable: `given_up` once ROBOTSTXT_TIMEOUT is spent.
    """

    parser: Protego | None
    allow_all: bool
    expires: float
    crawl_delay: float | None = None
    given_up: bool = False

    def can_fetch(self, url: str, user_agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return self.parser.can_fetch(url, user_agent)


def decode_robots(body: bytes) -> str:
    """The text of a robots.txt body: its first 500 KiB as UTF-8, a leading BOM skipped.

    A partial BOM (its first one or two bytes) is skipped too, as Google's parser does. A body
    cut at the limit loses its last, partial line: cut mid-rule, "Disallow: /private" would
    read as "Disallow: /" and shut the whole host.
    """
    if len(body) >= MAX_ROBOTS_BYTES:
        body = body[:MAX_ROBOTS_BYTES]
        body = body[: body.rfind(b"\n") + 1]
    for size in (3, 2, 1):
        if body.startswith(_BOM[:size]):
            body = body[size:]
            break
    return body.decode("utf-8", errors="replace")


def product_token(user_agent: str) -> str:
    """The product token of a User-Agent header ("scrapekit/0.1.0 (+url)" -> "scrapekit")."""
    words = user_agent.split()
    return words[0].split("/", 1)[0] if words else ""


class RobotsCache:
    """Answers whether robots.txt lets a request through, fetching each origin's file once.

    Many concurrent callers for one origin share a single fetch. At most `max_hosts` origins
    are kept (least recently used go first); a blanket deny after a 5xx or a network error
    lasts `retry_seconds` (within `timeout` for all attempts, then the origin is given up for
    `retry_seconds`), parsed rules `MAX_AGE_SECONDS`.
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        user_agent: str,
        retry_seconds: float = 300.0,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_crawl_delay: CrawlDelayHook | None = None,
        max_hosts: int = 10_000,
    ) -> None:
        self._fetch = fetch
        self.user_agent = user_agent
        self._retry_seconds = retry_seconds
        self._timeout = timeout
        self._clock = clock
        self._on_crawl_delay = on_crawl_delay
        self._max_hosts = max(1, max_hosts)
        self._rules: OrderedDict[str, _Rules] = OrderedDict()
        self._pending: dict[str, asyncio.Future[_Rules]] = {}
        # Origins whose robots.txt is unavailable: when the first failed attempt began, and
        # its last failure, so every attempt and hold shares one ROBOTSTXT_TIMEOUT budget.
        self._outages: dict[str, tuple[float, str]] = {}
        self._fetched = 0
        self._disallowed = 0
        self._by_status: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls, settings: Settings, fetch: Fetch, *, on_crawl_delay: CrawlDelayHook | None = None
    ) -> RobotsCache:
        """A cache for ROBOTSTXT_USER_AGENT (or USER_AGENT's product token)."""
        user_agent = str(settings["ROBOTSTXT_USER_AGENT"]).strip()
        if not user_agent:
            user_agent = product_token(str(settings["USER_AGENT"])) or "scrapekit"
        return cls(
            fetch,
            user_agent=user_agent,
            retry_seconds=float(settings["ROBOTSTXT_RETRY_SECONDS"]),
            timeout=float(settings["ROBOTSTXT_TIMEOUT"]),
            on_crawl_delay=on_crawl_delay,
        )

    async def allowed(self, request: Request) -> bool:
        """Whether robots.txt lets `request` through; never raises for a bad robots.txt
        (only a SessionError, such as a PROXY that refuses, which stops the crawl anyway).

        True for robots.txt itself and for requests with `meta["dont_obey_robotstxt"]`.
        """
        if request.meta.get("dont_obey_robotstxt"):
            return True
        origin = ""
        try:
            if urlsplit(request.url).path == "/robots.txt":
                return True
            origin = origin_of(request.url)
            rules = await self._rules_for(origin)
            verdict = rules.can_fetch(request.url, self.user_agent)
        except SessionError:  # e.g. a PROXY that refuses: the crawl's problem, not this host's
            raise
        except Exception as exc:  # a bug here must not stop the crawl: fail open, loudly
            log.error("robots.txt error", origin=origin or request.url, error=repr(exc))
            return True
        if not verdict:
            self._disallowed += 1
        return verdict

    def hold_for(self, request: Request) -> float | None:
        """Seconds to hold a refused request until its robots.txt is fetched again.

        None when it should be dropped instead: the origin's rules are known (it is really
        disallowed), or robots.txt stayed unavailable for ROBOTSTXT_TIMEOUT (see
        `unavailable`). While robots.txt is unavailable (5xx, unreachable) everything is
        disallowed, and the caller holds the host's requests rather than lose them.
        """
        rules = self._blanket_deny(request)
        if rules is None or rules.given_up:
            return None
        return max(rules.expires - self._clock(), 0.0)

    def unavailable(self, request: Request) -> bool:
        """Whether the request's robots.txt could not be read (5xx, 429, unreachable)."""
        return self._blanket_deny(request) is not None

    def _blanket_deny(self, request: Request) -> _Rules | None:
        try:
            rules = self._rules.get(origin_of(request.url))
        except (httpx2.InvalidURL, ValueError):
            return None
        if rules is None or rules.parser is not None or rules.allow_all:
            return None
        return rules

    def crawl_delay(self, origin: str) -> float | None:
        """The Crawl-delay robots.txt sets for our user agent on `origin`, if known and set."""
        try:
            key = origin_of(origin)
        except (httpx2.InvalidURL, ValueError):
            return None
        rules = self._rules.get(key)
        return rules.crawl_delay if rules is not None else None

    def statistics(self) -> RobotsStatistics:
        """A snapshot of the counters ("5xx" and "error" group server and network failures)."""
        return RobotsStatistics(
            fetched=self._fetched, disallowed=self._disallowed, by_status=dict(self._by_status)
        )

    # -- the cache ---------------------------------------------------------------------------

    async def _rules_for(self, origin: str) -> _Rules:
        """The origin's rules: cached, or fetched by the first caller while the rest wait."""
        while True:
            rules = self._rules.get(origin)
            if rules is not None:
                if self._clock() < rules.expires:
                    self._rules.move_to_end(origin)
                    return rules
                del self._rules[origin]
            pending = self._pending.get(origin)
            if pending is None:
                break
            # asyncio.wait, unlike awaiting the future, does not cancel it when this waiter
            # is cancelled: the other waiters keep their shared fetch.
            await asyncio.wait((pending,))
            if not pending.cancelled():
                return pending.result()
            # The fetching caller was cancelled: loop, and one waiter fetches instead.
        future: asyncio.Future[_Rules] = asyncio.get_running_loop().create_future()
        self._pending[origin] = future
        try:
            rules = await self._load(origin)
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._pending[origin]
        self._store(origin, rules)
        future.set_result(rules)
        return rules

    def _store(self, origin: str, rules: _Rules) -> None:
        self._rules[origin] = rules
        self._rules.move_to_end(origin)
        while len(self._rules) > self._max_hosts:
            self._rules.popitem(last=False)

    async def _load(self, origin: str) -> _Rules:
        """Fetch and judge one origin's robots.txt; only cancellation and a SessionError
        escape."""
        rules = await self._attempt(origin)
        if rules.parser is not None or rules.allow_all:
            self._outages.pop(origin, None)  # readable again: a later outage starts afresh
        return rules

    async def _attempt(self, origin: str) -> _Rules:
        began, error = self._outages.get(origin, (self._clock(), ""))
        left = began + self._timeout - self._clock()
        if left <= 0:
            return self._give_up(origin, began, error)
        # Read at most MAX_ROBOTS_BYTES, however large (or however compressed) the file:
        # the rest is ignored, as Google and RFC 9309 2.5 do, rather than losing the host.
        meta = {
            "dont_obey_robotstxt": True,
            "max_response_bytes": MAX_ROBOTS_BYTES,
            "truncate_body": True,
        }
        request = Request(origin + "/robots.txt", dont_filter=True, meta=meta)
        self._fetched += 1
        try:
            # The attempt gets what is left of the budget, however long DOWNLOAD_TIMEOUT is.
            async with asyncio.timeout(left):
                response = await self._fetch(request)
        except TimeoutError:
            self._by_status["error"] += 1
            error = f"no answer within {self._timeout:g} s (ROBOTSTXT_TIMEOUT)"
            return self._unreachable(origin, began, error)
        except _UNAVAILABLE_ERRORS as exc:
            self._by_status["3xx"] += 1
            log.info("robots.txt unavailable", origin=origin, error=str(exc))
            return self._allow_all()
        except FetchError as exc:
            self._by_status["error"] += 1
            return self._unreachable(origin, began, str(exc))
        except SessionError:
            raise
        except Exception as exc:  # a fetch function that breaks its contract: fail open
            self._by_status["error"] += 1
            log.error("robots.txt error", origin=origin, error=repr(exc))
            return self._allow_all()
        status = response.status
        self._by_status["5xx" if 500 <= status < 600 else str(status)] += 1
        if status >= 500 or status == 429:  # Google: 429 is a server error, not a missing file
            return self._unreachable(origin, began, f"HTTP {status}")
        if not 200 <= status < 300:  # 3xx not followed, 4xx: no robots.txt, no rules
            return self._allow_all()
        return await self._parse(origin, response.body)

    def _unreachable(self, origin: str, began: float, error: str) -> _Rules:
        """Deny everything until the next attempt, or give up once the budget is spent."""
        now = self._clock()
        deadline = began + self._timeout
        if now >= deadline:
            return self._give_up(origin, began, error)
        self._outages[origin] = (began, error)
        # Within the budget the file is tried about ATTEMPTS times, whatever
        # ROBOTSTXT_RETRY_SECONDS says (it may be far longer than ROBOTSTXT_TIMEOUT); the
        # last hold ends at the deadline, when the host is given up if robots.txt is still down.
        retry_at = min(now + min(self._retry_seconds, self._timeout / ATTEMPTS), deadline)
        log.info(
            "robots.txt unreachable", origin=origin, error=error, retry=round(retry_at - now, 3)
        )
        return _Rules(None, False, retry_at)

    def _give_up(self, origin: str, began: float, error: str) -> _Rules:
        """robots.txt stayed unavailable for ROBOTSTXT_TIMEOUT: drop the host's requests."""
        self._outages.pop(origin, None)
        now = self._clock()
        log.warning(
            "robots.txt unavailable, dropping the host's requests",
            origin=origin,
            error=error,
            waited=round(now - began, 3),
            retry=self._retry_seconds,
            fix="check the server, or set ROBOTSTXT_OBEY=false to crawl without robots.txt",
        )
        return _Rules(None, False, now + self._retry_seconds, given_up=True)

    async def _parse(self, origin: str, body: bytes) -> _Rules:
        try:
            parser = Protego.parse(decode_robots(body))
            delay = parser.crawl_delay(self.user_agent)
        except Exception as exc:  # protego is tolerant; a crash is still no reason to stop
            log.error("robots.txt error", origin=origin, error=repr(exc))
            return self._allow_all()
        if delay is not None and not (math.isfinite(delay) and delay >= 0):
            delay = None
        elif delay is not None and delay > MAX_CRAWL_DELAY:
            log.info("crawl-delay capped", origin=origin, asked=delay, capped=MAX_CRAWL_DELAY)
            delay = MAX_CRAWL_DELAY
        rules = _Rules(parser, True, self._clock() + MAX_AGE_SECONDS, delay)
        if delay is not None and self._on_crawl_delay is not None:
            try:
                await self._on_crawl_delay(origin, delay)
            except Exception as exc:
                log.error("robots.txt error", origin=origin, error=repr(exc))
        return rules

    def _allow_all(self) -> _Rules:
        """No usable robots.txt (missing, redirected away): allow everything, kept like a file."""
        return _Rules(None, True, self._clock() + MAX_AGE_SECONDS)
