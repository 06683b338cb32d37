"""RetryPolicy: which failures are retried, how long each retry waits, and when it gives up."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from tenacity import RetryCallState, Retrying, wait_random_exponential
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit.exceptions import (
    DecodingError,
    FetchError,
    FetchTimeout,
    HttpStatusError,
    InvalidURL,
    RedirectBlocked,
    ResponseTooLarge,
    TooManyRedirects,
    TransportError,
)
from scrapekit.politeness.retry import (
    RETRY_AFTER_CEILING,
    GiveUp,
    Retry,
    RetryPolicy,
    parse_retry_after,
)
from scrapekit.request import Request
from scrapekit.response import Response
from scrapekit.session import Session
from scrapekit.settings import Settings

URL = "http://example.com/page"
NOW = 1_700_000_000.0


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


def request(method: str = "GET", **meta: Any) -> Request:
    """A request with the given method and meta."""
    return Request(URL, method, meta=meta)


def response(req: Request, status: int, **headers: str) -> Response:
    """A response with `status` to `req`."""
    return Response(req.url, status=status, headers=headers, request=req)


def fixed(value: float) -> RetryPolicy:
    """A policy whose jitter always draws `value`."""
    return RetryPolicy(random=lambda: value)


def error(kind: type[FetchError], req: Request, *, sent: bool = True) -> FetchError:
    """A fetch error of `kind` for `req`."""
    return kind("boom", request=req, request_sent=sent)


# -- parse_retry_after -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 7 ", 7.0, id="seconds-padded"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("-5", 0.0, id="negative-seconds"),
        pytest.param(formatdate(NOW + 30, usegmt=True), 30.0, id="date-ahead"),
        pytest.param(formatdate(NOW - 30, usegmt=True), 0.0, id="date-past"),
        pytest.param("Tue, 14 Nov 2023 22:14:20 -0000", 60.0, id="date-no-zone-is-utc"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("1.5", None, id="decimal"),
        pytest.param("9" * 400, RETRY_AFTER_CEILING, id="400-digits"),
        pytest.param("9" * 5000, RETRY_AFTER_CEILING, id="5000-digits"),
        pytest.param("-" + "9" * 5000, 0.0, id="negative-5000-digits"),
        pytest.param("+" + "0" * 500 + "42", 42.0, id="leading-zeros"),
        pytest.param("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_AFTER_CEILING, id="year-9999"),
        pytest.param("Mon, 01 Jan 0001 00:00:00 GMT", 0.0, id="year-1"),
        pytest.param("\u0661\u0662", None, id="non-ascii-digits"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="missing"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is read as seconds or an HTTP-date, clamped to [0, RETRY_AFTER_CEILING]
    (never raising, however many digits), None when unusable."""
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_defaults_to_the_clock() -> None:
    """Without `now`, an HTTP-date is measured from the current time."""
    seconds = parse_retry_after(formatdate(time.time() + 120, usegmt=True))
    assert seconds is not None
    assert 118 <= seconds <= 120


# -- what is retried ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 522, 524])
def test_retryable_status_is_retried(status: int) -> None:
    """Each default RETRY_HTTP_CODES status gives a first retry, attempt 2."""
    req = request()
    decision = fixed(0.5).on_response(req, response(req, status))
    assert decision == Retry(delay=0.25, attempt=2, reason=f"http {status}", retry_after=None)


@pytest.mark.parametrize("status", [200, 204, 301, 304, 400, 403, 404, 410, 501])
def test_other_status_is_handed_on(status: int) -> None:
    """A status outside RETRY_HTTP_CODES is no business of the retry policy."""
    req = request()
    assert RetryPolicy().on_response(req, response(req, status)) is None


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        pytest.param(TransportError, "transport error", id="transport"),
        pytest.param(FetchTimeout, "timeout", id="timeout"),
    ],
)
def test_retryable_error_is_retried(kind: type[FetchError], reason: str) -> None:
    """Network errors and timeouts are retried, named by the error's reason."""
    req = request()
    decision = fixed(1.0).on_error(req, error(kind, req))
    assert decision == Retry(delay=0.5, attempt=2, reason=reason, retry_after=None)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(
            lambda r: InvalidURL("ftp://x", "bad scheme"), "invalid url", id="invalid-url"
        ),
        pytest.param(lambda r: error(TooManyRedirects, r), "too many redirects", id="redirects"),
        pytest.param(lambda r: error(ResponseTooLarge, r), "response too large", id="too-large"),
        pytest.param(lambda r: error(DecodingError, r), "decoding error", id="corrupt-body"),
        pytest.param(
            lambda r: RedirectBlocked(r, "http://x.org/", "offsite"),
            "redirect offsite",
            id="redirect-blocked",
        ),
        pytest.param(lambda r: error(FetchError, r), "fetch error", id="plain-fetch-error"),
        pytest.param(
            lambda r: HttpStatusError("404", request=r, response=response(r, 404)),
            "http 404",
            id="http-404",
        ),
    ],
)
def test_non_retryable_error_gives_up_at_once(make: Any, reason: str) -> None:
    """Errors that would fail the same way again give up without a retry."""
    req = request()
    assert RetryPolicy().on_error(req, make(req)) == GiveUp(reason, 1, retryable=False)


def test_http_status_error_with_retryable_status_is_retried() -> None:
    """An HttpStatusError whose response has a retryable status is judged like that response."""
    req = request()
    exc = HttpStatusError("503", request=req, response=response(req, 503, **{"Retry-After": "9"}))
    assert fixed(0.0).on_error(req, exc) == Retry(
        delay=9.0, attempt=2, reason="http 503", retry_after=9.0
    )


def test_error_without_request_sent_attribute_counts_as_sent() -> None:
    """An error lacking `request_sent` is treated as possibly processed, so a POST gives up."""
    req = request("POST")
    exc = TransportError("reset", request=req)
    del exc.request_sent
    assert RetryPolicy().on_error(req, exc) == GiveUp("transport error", 1, retryable=False)


# -- how many times ----------------------------------------------------------------------------


def test_retries_run_out_after_retry_times() -> None:
    """With RETRY_TIMES = 3 the request is tried 4 times, then given up as retryable."""
    policy, req = fixed(0.0), request()
    attempts = []
    while isinstance(decision := policy.on_error(req, error(FetchTimeout, req)), Retry):
        attempts.append(decision.attempt)
        req.meta["retry_times"] = decision.attempt - 1  # what the worker does
    assert attempts == [2, 3, 4]
    assert decision == GiveUp("timeout", 4, retryable=True)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        pytest.param({}, GiveUp("http 503", 4, retryable=True), id="inherit"),
        pytest.param({"max_retry_times": 5}, "retry", id="raised"),
        pytest.param({"max_retry_times": 3}, GiveUp("http 503", 4, retryable=True), id="same"),
        pytest.param({"max_retry_times": 1}, GiveUp("http 503", 4, retryable=True), id="lowered"),
        pytest.param({"max_retry_times": None}, GiveUp("http 503", 4, retryable=False), id="none"),
        pytest.param({"dont_retry": True}, GiveUp("http 503", 4, retryable=False), id="dont"),
        pytest.param({"dont_retry": False}, GiveUp("http 503", 4, retryable=True), id="do"),
    ],
)
def test_per_request_overrides_after_three_retries(meta: dict[str, Any], expected: Any) -> None:
    """meta max_retry_times and dont_retry override RETRY_TIMES for one request."""
    req = request(retry_times=3, **meta)
    decision = fixed(0.0).on_response(req, response(req, 503))
    if expected == "retry":
        assert isinstance(decision, Retry)
        assert decision.attempt == 5
    else:
        assert decision == expected


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        pytest.param({"max_retry_times": 0}, GiveUp("timeout", 1, retryable=True), id="zero"),
        pytest.param({"max_retry_times": None}, GiveUp("timeout", 1, retryable=False), id="none"),
        pytest.param({"dont_retry": True}, GiveUp("timeout", 1, retryable=False), id="dont"),
    ],
)
def test_first_failure_not_retried_when_turned_off(meta: dict[str, Any], expected: GiveUp) -> None:
    """A request allowed no retries gives up on its first failure."""
    req = request(**meta)
    assert RetryPolicy().on_error(req, error(FetchTimeout, req)) == expected


def test_retry_disabled_never_retries() -> None:
    """RETRY_ENABLED false gives up on every failure, and other statuses stay None."""
    policy, req = RetryPolicy.from_settings(settings(RETRY_ENABLED=False)), request()
    assert policy.on_error(req, error(TransportError, req)) == GiveUp(
        "transport error", 1, retryable=False
    )
    assert policy.on_response(req, response(req, 503)) == GiveUp("http 503", 1, retryable=False)
    assert policy.on_response(req, response(req, 404)) is None


def test_from_settings_reads_codes_and_times() -> None:
    """RETRY_HTTP_CODES and RETRY_TIMES from settings replace the defaults."""
    policy = RetryPolicy.from_settings(settings(RETRY_HTTP_CODES=[418], RETRY_TIMES=1))
    req = request()
    assert isinstance(policy.on_response(req, response(req, 418)), Retry)
    assert policy.on_response(req, response(req, 503)) is None
    req.meta["retry_times"] = 1
    assert policy.on_response(req, response(req, 418)) == GiveUp("http 418", 2, retryable=True)


# -- methods that are not idempotent ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "retried"),
    [
        *(
            pytest.param(m, True, id=m)
            for m in ("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE")
        ),
        *(pytest.param(m, False, id=m) for m in ("POST", "PATCH", "PROPFIND")),
    ],
)
def test_timeout_retried_only_for_idempotent_methods(method: str, retried: bool) -> None:
    """After a read timeout only idempotent methods are resent."""
    req = request(method)
    decision = RetryPolicy().on_error(req, error(FetchTimeout, req, sent=True))
    assert isinstance(decision, Retry) is retried


@pytest.mark.parametrize(
    ("make", "retried"),
    [
        pytest.param(lambda r: error(FetchTimeout, r, sent=True), False, id="read-timeout"),
        pytest.param(lambda r: error(TransportError, r, sent=True), False, id="reset"),
        pytest.param(lambda r: error(TransportError, r, sent=False), True, id="connect-refused"),
        pytest.param(lambda r: error(FetchTimeout, r, sent=False), True, id="connect-timeout"),
    ],
)
def test_post_error_retried_only_when_never_sent(make: Any, retried: bool) -> None:
    """A POST is resent after an error only if the request surely never reached the server."""
    req = request("POST")
    assert isinstance(RetryPolicy().on_error(req, make(req)), Retry) is retried


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        pytest.param(429, True, id="429"),
        pytest.param(503, True, id="503"),
        pytest.param(500, False, id="500"),
        pytest.param(502, False, id="502"),
        pytest.param(504, False, id="504"),
    ],
)
def test_post_response_retried_only_when_not_processed(status: int, retried: bool) -> None:
    """A POST is resent on 429 and 503, which say the server did not process it."""
    req = request("POST")
    decision = RetryPolicy().on_response(req, response(req, status))
    if retried:
        assert isinstance(decision, Retry)
    else:
        assert decision == GiveUp(f"http {status}", 1, retryable=False)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda r: error(FetchTimeout, r, sent=True), id="read-timeout"),
        pytest.param(
            lambda r: HttpStatusError("500", request=r, response=response(r, 500)), id="http-500"
        ),
    ],
)
def test_post_opted_in_is_retried(make: Any) -> None:
    """meta retry_non_idempotent lets a POST be resent after any retryable failure."""
    req = request("POST", retry_non_idempotent=True)
    assert isinstance(RetryPolicy().on_error(req, make(req)), Retry)


# -- backoff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("draw", "attempt", "expected"),
    [
        pytest.param(1.0, 1, 0.5, id="top-1"),
        pytest.param(1.0, 2, 1.0, id="top-2"),
        pytest.param(1.0, 3, 2.0, id="top-3"),
        pytest.param(1.0, 8, 60.0, id="top-8-capped"),
        pytest.param(1.0, 50, 60.0, id="top-50-capped"),
        pytest.param(1.0, 5000, 60.0, id="top-huge-capped"),
        pytest.param(0.5, 4, 2.0, id="half-4"),
        pytest.param(0.25, 7, 8.0, id="quarter-7"),
        pytest.param(0.0, 6, 0.0, id="zero"),
    ],
)
def test_backoff_is_full_jitter_exponential(draw: float, attempt: int, expected: float) -> None:
    """The delay after attempt n is draw * min(backoff_max, backoff_base * 2 ** (n - 1))."""
    req = request(retry_times=attempt - 1, max_retry_times=10_000)
    decision = fixed(draw).on_error(req, error(TransportError, req))
    assert isinstance(decision, Retry)
    assert decision.delay == expected


@pytest.mark.parametrize("draw", [0.0, 0.1, 0.37, 0.5, 0.999])
def test_backoff_matches_tenacity(monkeypatch: pytest.MonkeyPatch, draw: float) -> None:
    """The delays equal tenacity's wait_random_exponential when it draws the same number."""
    policy = RetryPolicy(backoff_base=0.3, backoff_max=20.0, random=lambda: draw)
    monkeypatch.setattr(random, "uniform", lambda a, b: a + (b - a) * draw)
    tenacity_wait = wait_random_exponential(multiplier=0.3, max=20.0)
    for attempt in range(1, 12):
        state = RetryCallState(Retrying(), None, (), {})
        state.attempt_number = attempt
        req = request(retry_times=attempt - 1, max_retry_times=100)
        decision = policy.on_error(req, error(FetchTimeout, req))
        assert isinstance(decision, Retry)
        assert decision.delay == pytest.approx(tenacity_wait(state))


def test_backoff_grows_and_never_exceeds_the_cap() -> None:
    """With the real random source, each attempt's delays stay in [0, min(cap, window)]."""
    policy = RetryPolicy(backoff_base=0.5, backoff_max=10.0)
    for attempt in range(1, 30):
        window = min(10.0, 0.5 * 2 ** (attempt - 1))
        req = request(retry_times=attempt - 1, max_retry_times=100)
        delays = [policy.on_error(req, error(TransportError, req)) for _ in range(50)]
        assert all(isinstance(d, Retry) and 0.0 <= d.delay <= window for d in delays)


# -- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "header", "draw", "retry_times", "delay", "retry_after"),
    [
        pytest.param(503, "30", 1.0, 0, 30.0, 30.0, id="503-longer-than-backoff"),
        pytest.param(429, "30", 1.0, 0, 30.0, 30.0, id="429"),
        pytest.param(500, "30", 1.0, 0, 30.0, 30.0, id="500"),
        pytest.param(503, "1", 1.0, 5, 16.0, 1.0, id="backoff-longer"),
        pytest.param(503, "86400", 1.0, 0, 600.0, 600.0, id="capped"),
        pytest.param(503, "9" * 400, 1.0, 0, 600.0, 600.0, id="400-digits-capped"),
        pytest.param(503, "0", 1.0, 0, 0.5, 0.0, id="zero"),
        pytest.param(503, "soon", 1.0, 0, 0.5, None, id="garbage"),
    ],
)
def test_retry_after_is_honoured_and_capped(
    status: int, header: str, draw: float, retry_times: int, delay: float, retry_after: float | None
) -> None:
    """The delay is max(backoff, min(Retry-After, RETRY_AFTER_MAX)), and the cut value is kept."""
    req = request(retry_times=retry_times, max_retry_times=10)
    decision = fixed(draw).on_response(req, response(req, status, **{"Retry-After": header}))
    assert decision == Retry(
        delay=delay, attempt=retry_times + 2, reason=f"http {status}", retry_after=retry_after
    )


def test_retry_after_date_is_honoured() -> None:
    """A Retry-After HTTP-date is turned into seconds from now."""
    req = request()
    header = formatdate(time.time() + 120, usegmt=True)
    decision = fixed(0.0).on_response(req, response(req, 503, **{"Retry-After": header}))
    assert isinstance(decision, Retry)
    assert decision.retry_after is not None
    assert 118 <= decision.delay == decision.retry_after <= 120


def test_retry_after_max_setting_caps_the_delay() -> None:
    """RETRY_AFTER_MAX from settings caps what a server may ask for."""
    policy = RetryPolicy.from_settings(settings(RETRY_AFTER_MAX=5.0, RETRY_BACKOFF_BASE=0.0))
    req = request()
    decision = policy.on_response(req, response(req, 429, **{"Retry-After": "3600"}))
    assert decision == Retry(delay=5.0, attempt=2, reason="http 429", retry_after=5.0)


def test_retry_after_does_not_extend_retries() -> None:
    """A Retry-After on the last allowed attempt still gives up."""
    req = request(retry_times=3)
    decision = RetryPolicy().on_response(req, response(req, 503, **{"Retry-After": "1"}))
    assert decision == GiveUp("http 503", 4, retryable=True)


# -- statistics --------------------------------------------------------------------------------


def test_statistics_count_retries_and_give_ups_by_reason() -> None:
    """Retries are counted by reason; only requests whose retries ran out count as given up."""
    policy = fixed(0.0)
    get, post = request(), request("POST")
    policy.on_response(get, response(get, 503))
    policy.on_response(get, response(get, 503))
    policy.on_error(get, error(FetchTimeout, get))
    policy.on_response(get, response(get, 404))  # not a retry matter
    policy.on_error(post, error(FetchTimeout, post))  # never retried: not a give-up
    policy.on_error(get, InvalidURL("ftp://x", "bad scheme"))
    exhausted = request(retry_times=3)
    policy.on_error(exhausted, error(TransportError, exhausted))
    stats = policy.statistics()
    assert stats.retries == 3
    assert stats.retries_by_reason == {"http 503": 2, "timeout": 1}
    assert stats.gave_up_by_reason == {"transport error": 1}


def test_statistics_are_a_frozen_snapshot() -> None:
    """statistics() returns a frozen value that later decisions do not change."""
    policy, req = RetryPolicy(), request()
    before = policy.statistics()
    policy.on_error(req, error(FetchTimeout, req))
    assert (before.retries, before.retries_by_reason) == (0, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.retries = 1  # type: ignore[misc]


def test_negative_limits_are_rejected() -> None:
    """A negative retry count or backoff is a programming error, caught at construction."""
    with pytest.raises(ValueError, match="must not be negative"):
        RetryPolicy(times=-1)


# -- real responses and errors over loopback ---------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session with default settings and a 5 s timeout."""
    async with Session.from_settings(settings(DOWNLOAD_TIMEOUT=5.0)) as s:
        yield s


def slow(request: WRequest) -> WResponse:
    """A handler that answers after one second."""
    time.sleep(1.0)
    return WResponse("late")


async def fetch_error(session: Session, req: Request) -> FetchError:
    """The FetchError that fetching `req` raises."""
    with pytest.raises(FetchError) as info:
        await session.fetch(req)
    return info.value


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_refused_connection_is_retried(
    session: Session, unreachable_url: str, method: str
) -> None:
    """A refused connection is retried, even for a POST: nothing reached the server."""
    req = Request(unreachable_url, method, body=b"x=1")
    exc = await fetch_error(session, req)
    assert isinstance(exc, TransportError)
    decision = RetryPolicy().on_error(req, exc)
    assert isinstance(decision, Retry)
    assert decision.reason == "transport error"


@pytest.mark.parametrize(
    ("method", "meta", "retried"),
    [
        pytest.param("GET", {}, True, id="get"),
        pytest.param("POST", {}, False, id="post"),
        pytest.param("POST", {"retry_non_idempotent": True}, True, id="post-opted-in"),
    ],
)
async def test_read_timeout(
    httpserver: HTTPServer, session: Session, method: str, meta: dict[str, Any], retried: bool
) -> None:
    """A read timeout is retried for a GET, but not for a POST unless it opts in."""
    httpserver.expect_request("/slow").respond_with_handler(slow)
    req = Request(
        httpserver.url_for("/slow"), method, body=b"x=1", meta={"download_timeout": 0.2, **meta}
    )
    exc = await fetch_error(session, req)
    assert isinstance(exc, FetchTimeout)
    decision = RetryPolicy().on_error(req, exc)
    if retried:
        assert isinstance(decision, Retry)
        assert decision.reason == "timeout"
    else:
        assert decision == GiveUp("timeout", 1, retryable=False)


@pytest.mark.parametrize(
    ("method", "status", "retried"),
    [
        pytest.param("GET", 500, True, id="get-500"),
        pytest.param("POST", 503, True, id="post-503"),
        pytest.param("POST", 500, False, id="post-500"),
    ],
)
async def test_real_error_status(
    httpserver: HTTPServer, session: Session, method: str, status: int, retried: bool
) -> None:
    """A real 5xx is retried for a GET; a POST only on a 503."""
    httpserver.expect_request("/fail").respond_with_data("no", status=status)
    req = Request(httpserver.url_for("/fail"), method, body=b"x=1")
    decision = RetryPolicy().on_response(req, await session.fetch(req))
    assert isinstance(decision, Retry) is retried
    assert decision is not None
    assert decision.reason == f"http {status}"


async def test_real_retry_after_pauses(httpserver: HTTPServer, session: Session) -> None:
    """A real 429 with Retry-After gives a retry that waits for it and reports it."""
    httpserver.expect_request("/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "42"}
    )
    req = Request(httpserver.url_for("/busy"))
    decision = fixed(1.0).on_response(req, await session.fetch(req))
    assert decision == Retry(delay=42.0, attempt=2, reason="http 429", retry_after=42.0)


async def test_real_not_found_is_not_retried(httpserver: HTTPServer, session: Session) -> None:
    """A real 404 is handed on by on_response, and gives up at once as an HttpStatusError."""
    httpserver.expect_request("/gone").respond_with_data("gone", status=404)
    req = Request(httpserver.url_for("/gone"))
    resp = await session.fetch(req)
    policy = RetryPolicy()
    assert policy.on_response(req, resp) is None
    exc = HttpStatusError("404", request=req, response=resp)
    assert policy.on_error(req, exc) == GiveUp("http 404", 1, retryable=False)
