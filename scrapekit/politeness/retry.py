"""RetryPolicy: the road back from the workers to the scheduler for requests that failed.

Politeness stage, between the workers and the scheduler. A worker asks the policy about each
response and each `FetchError`; the policy answers `Retry` (with a delay, and the server's
Retry-After so the host can be paused) or `GiveUp`. It only decides: the worker sets
`meta["retry_times"]` and hands the request back with a not-before time, so no worker sleeps.
Reads RETRY_ENABLED, RETRY_TIMES, RETRY_HTTP_CODES, RETRY_BACKOFF_BASE, RETRY_BACKOFF_MAX and
RETRY_AFTER_MAX. Per request, `meta` may hold `retry_times` (retries so far), `max_retry_times`
(an int, or None for no retries), `dont_retry` and `retry_non_idempotent`.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from random import random as _system_random
from typing import TYPE_CHECKING, Any

from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_random_exponential

from scrapekit.exceptions import FetchError, FetchTimeout, HttpStatusError, TransportError

if TYPE_CHECKING:
    from scrapekit.request import Request
    from scrapekit.response import Response

__all__ = ["GiveUp", "Retry", "RetryPolicy", "RetryStatistics", "parse_retry_after"]

#: Methods that are safe to send twice (RFC 9110 section 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: Statuses that say the server did not process the request, so even a POST may be resent.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
DEFAULT_HTTP_CODES = (408, 429, 500, 502, 503, 504, 522, 524)

#: The longest delay parse_retry_after returns (a year): any header asking for more gets this.
#: Callers cut it further, to RETRY_AFTER_MAX.
RETRY_AFTER_CEILING = 365 * 86_400.0
# Delay-seconds is digits only (RFC 9110 10.2.3), a sign tolerated; "1.5" is not a delay.
_DELAY_SECONDS = re.compile(r"([+-]?)([0-9]+)")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """A Retry-After header as seconds from `now` (default: time.time()), or None if unusable.

    The value is a number of seconds or an HTTP-date. The answer is clamped to
    [0, RETRY_AFTER_CEILING]: a negative delay or a date in the past gives 0, and a hostile
    value (400 digits, the year 9999) never raises.
    """
    if value is None:
        return None
    value = value.strip()
    if (match := _DELAY_SECONDS.fullmatch(value)) is not None:
        sign, digits = match.groups()
        if sign == "-":
            return 0.0
        # float(int()) overflows past 308 digits and int() refuses 4,300: count digits first.
        digits = digits.lstrip("0")
        if len(digits) > 9:
            return RETRY_AFTER_CEILING
        return min(float(int(digits or "0")), RETRY_AFTER_CEILING)
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000" means UTC with no claim about local time (RFC 5322)
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), RETRY_AFTER_CEILING)


@dataclass(frozen=True, slots=True)
class Retry:
    """Fetch the request again after `delay` seconds."""

    delay: float
    """Seconds from now before the next attempt: the backoff, or Retry-After if larger."""
    attempt: int
    """The attempt number the retry will be (2 for the first retry)."""
    reason: str
    """Why the last attempt failed: "http 503", "timeout", "transport error"..."""
    retry_after: float | None
    """The server's Retry-After (cut to RETRY_AFTER_MAX) when it gave one: pause the host."""


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The request failed for good."""

    reason: str
    """Why the last attempt failed."""
    attempts: int
    """How many attempts were made, the first included."""
    retryable: bool
    """True when retries ran out; False when this failure is never retried for this request
    (a 404, an invalid URL, a POST the server may have processed, retries switched off)."""


@dataclass(frozen=True, slots=True)
class RetryStatistics:
    """What the retry policy decided during a crawl."""

    retries: int
    """Retries scheduled in all."""
    retries_by_reason: Mapping[str, int]
    """Retries scheduled, by the failure that caused them."""
    gave_up_by_reason: Mapping[str, int]
    """Requests whose retries ran out, by their last failure (never-retried ones not counted)."""


class _FullJitter(wait_random_exponential):
    """tenacity's full-jitter backoff, drawing from an injectable random() in [0, 1)."""

    def __init__(self, *, multiplier: float, maximum: float, random: Callable[[], float]) -> None:
        super().__init__(multiplier=multiplier, max=maximum)
        self._random = random

    def __call__(self, retry_state: RetryCallState) -> float:
        high = super(wait_random_exponential, self).__call__(retry_state)  # the capped window
        # tenacity draws random.uniform(min, high), which is min + (high - min) * random().
        return self.min + (high - self.min) * self._random()


class RetryPolicy:
    """Decides whether a failed request is fetched again, and when.

    Retried: TransportError, FetchTimeout and responses with a status in `http_codes`.
    A method that is not idempotent (POST, PATCH...) is resent only when the server surely
    did not process it (a connect error, a 429 or a 503), unless `meta["retry_non_idempotent"]`.
    The delay is tenacity's full-jitter exponential backoff for the attempt that failed,
    capped at `backoff_max`, or the server's Retry-After (capped at `retry_after_max`) if longer.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        times: int = 3,
        http_codes: Iterable[int] = DEFAULT_HTTP_CODES,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        retry_after_max: float = 600.0,
        random: Callable[[], float] | None = None,
    ) -> None:
        if times < 0 or backoff_base < 0 or backoff_max < 0 or retry_after_max < 0:
            raise ValueError("retry times, backoff and Retry-After limits must not be negative")
        self.enabled = enabled
        self.times = times
        self.http_codes = frozenset(http_codes)
        self.retry_after_max = retry_after_max
        self._wait = _FullJitter(
            multiplier=backoff_base, maximum=backoff_max, random=random or _system_random
        )
        # RetryCallState needs a controller; only its attempt number is read by the strategies.
        self._controller = Retrying(wait=self._wait, reraise=True)
        self._retries: Counter[str] = Counter()
        self._gave_up: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RetryPolicy:
        """A policy from the RETRY_* settings."""
        return cls(
            enabled=bool(settings["RETRY_ENABLED"]),
            times=int(settings["RETRY_TIMES"]),
            http_codes=[int(code) for code in settings["RETRY_HTTP_CODES"]],
            backoff_base=float(settings["RETRY_BACKOFF_BASE"]),
            backoff_max=float(settings["RETRY_BACKOFF_MAX"]),
            retry_after_max=float(settings["RETRY_AFTER_MAX"]),
        )

    def on_response(self, request: Request, response: Response) -> Retry | GiveUp | None:
        """Judge a response: None if its status is not in `http_codes` (hand it on as usual)."""
        if response.status not in self.http_codes:
            return None
        return self._decide(
            request,
            f"http {response.status}",
            may_resend=response.status in NOT_PROCESSED_STATUSES,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    def on_error(self, request: Request, error: FetchError) -> Retry | GiveUp:
        """Judge a fetch error: Retry for network errors and timeouts, else GiveUp."""
        if isinstance(error, HttpStatusError) and error.response is not None:
            decision = self.on_response(request, error.response)
            if decision is not None:
                return decision
            return GiveUp(f"http {error.response.status}", self._attempt(request), retryable=False)
        if not isinstance(error, TransportError | FetchTimeout):
            # Invalid URLs, redirect loops, oversized or corrupt bodies fail the same way again.
            return GiveUp(error.reason, self._attempt(request), retryable=False)
        # A connect error never reached the server: even a POST is safe to send again.
        sent = bool(getattr(error, "request_sent", True))
        return self._decide(request, error.reason, may_resend=not sent, retry_after=None)

    def statistics(self) -> RetryStatistics:
        """A snapshot of the retries scheduled and given up, by reason."""
        return RetryStatistics(
            retries=self._retries.total(),
            retries_by_reason=dict(self._retries),
            gave_up_by_reason=dict(self._gave_up),
        )

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _attempt(request: Request) -> int:
        """The number of the attempt that just ended (1 for the first fetch)."""
        return int(request.meta.get("retry_times", 0)) + 1

    def _max_retries(self, request: Request) -> int | None:
        """Retries allowed for this request, or None when it must never be retried."""
        meta = request.meta
        if not self.enabled or meta.get("dont_retry"):
            return None
        if "max_retry_times" not in meta:  # missing inherits; an explicit None turns retries off
            return self.times
        value = meta["max_retry_times"]
        return None if value is None else int(value)

    def _decide(
        self, request: Request, reason: str, *, may_resend: bool, retry_after: float | None
    ) -> Retry | GiveUp:
        """Retry or give up on a failure of a retryable kind."""
        attempt = self._attempt(request)
        max_retries = self._max_retries(request)
        if max_retries is None:
            return GiveUp(reason, attempt, retryable=False)
        if not (
            may_resend
            or request.method in IDEMPOTENT_METHODS
            or request.meta.get("retry_non_idempotent")
        ):
            return GiveUp(reason, attempt, retryable=False)
        state = RetryCallState(self._controller, None, (), {})
        state.attempt_number = attempt
        if stop_after_attempt(max_retries + 1)(state):
            self._gave_up[reason] += 1
            return GiveUp(reason, attempt, retryable=True)
        delay = self._wait(state)
        if retry_after is not None:
            retry_after = min(retry_after, self.retry_after_max)
            delay = max(delay, retry_after)
        self._retries[reason] += 1
        return Retry(delay=delay, attempt=attempt + 1, reason=reason, retry_after=retry_after)
