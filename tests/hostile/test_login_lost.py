"""A login that is lost for good: in-flight pages finish, and a login storm is stopped."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit import Request, Response, Session, Spider, crawl_async
from tests.hostile.lifecycle_servers import MemberSite

QUIET = {"COOKIES_PERSIST": False, "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING"}
ITEMS_PER_PAGE = 5


class SlowMembers(Spider):
    """Logs in to a MemberSite; each page's callback yields several items, slowly."""

    name = "slow-members"

    def __init__(self, site: MemberSite, pages: int, started: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.site = site
        self.pages = pages
        self.started = started
        self.login_url = site.url("/login")

    async def start(self) -> AsyncIterator[Request]:
        for n in range(self.pages):
            yield Request(self.site.url(f"/p/{n}"), cb_kwargs={"n": n})

    async def login(self, session: Session) -> None:
        response = await session.post(self.login_url, data={"user": "me"})
        if response.status != 200:
            raise RuntimeError(f"login refused: HTTP {response.status}")

    def is_logged_in(self, response: Response) -> bool | None:
        if response.css_first(".member") is not None:
            return True
        return False if response.css_first(".login") is not None else None

    async def parse(self, response: Response, n: int) -> AsyncIterator[dict[str, int]]:
        self.started.append(n)
        for part in range(ITEMS_PER_PAGE):
            await asyncio.sleep(0.03)
            yield {"page": n, "part": part}


def json_events(err: str) -> list[dict[str, Any]]:
    """The events of a JSON log."""
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


async def test_a_failed_relogin_lets_in_flight_pages_finish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The re-login fails: every page whose callback started has all its items in the feed."""
    feed = tmp_path / "items.jsonl"
    started: list[int] = []
    with MemberSite(pages_per_session=12, max_logins=1) as site:
        stats = await crawl_async(
            SlowMembers,
            {**QUIET, "CONCURRENCY": 6, "FEEDS": {str(feed): {}}},
            site=site,
            pages=60,
            started=started,
        )
        refused = site.refused_logins
    assert stats["finish_reason"] == "login_failed"
    assert "login refused: HTTP 403" in stats["login"]["error"]
    assert refused == 2  # both attempts of the one re-login, and no worker tried again
    items = [json.loads(line) for line in feed.read_text().splitlines()]
    parts: dict[int, list[int]] = {}
    for item in items:
        parts.setdefault(item["page"], []).append(item["part"])
    assert len(started) >= 12
    assert sorted(parts) == sorted(started)
    assert all(sorted(parts[n]) == list(range(ITEMS_PER_PAGE)) for n in started)
    assert len(started) < 60  # the crawl stopped handing out pages
    failures = [e for e in json_events(capsys.readouterr().err) if e["event"] == "login failed"]
    assert len(failures) == 1
    assert "login refused" in failures[0]["error"]


class Unsure(SlowMembers):
    """Sees the member marker only on pages that show it; the site shows it on none."""

    name = "unsure"

    async def parse(self, response: Response, n: int) -> AsyncIterator[dict[str, int]]:
        yield {"page": n, "part": 0}


async def test_pages_that_cannot_tell_do_not_reset_the_relogin_count() -> None:
    """Logins 'succeed', odd pages keep redirecting to login, even pages cannot tell: stop."""
    odd = frozenset(range(1, 40, 2))
    with MemberSite(always_logged_out=odd, marked=False) as site:
        stats = await crawl_async(
            Unsure,
            {**QUIET, "LOG_LEVEL": "CRITICAL", "CONCURRENCY": 1, "MAX_RELOGINS": 3},
            site=site,
            pages=40,
            started=[],
        )
        logins = site.logins
    assert stats["finish_reason"] == "login_failed"
    assert "MAX_RELOGINS=3" in stats["login"]["error"]
    assert stats["login"]["relogins"] == 3
    assert logins == 4  # the first login and three re-logins, not one per odd page


class Undecided(SlowMembers):
    """Judges no page itself (the base class's is_logged_in): only redirects to login count."""

    name = "undecided"
    is_logged_in = Spider.is_logged_in

    async def parse(self, response: Response, n: int) -> AsyncIterator[dict[str, int]]:
        yield {"page": n, "part": 0}


async def test_a_relogin_that_brings_the_page_back_counts_as_working() -> None:
    """A spider that never says True outlives many expiring sessions (not MAX_RELOGINS of them)."""
    with MemberSite(pages_per_session=4, marked=False) as site:
        stats = await crawl_async(
            Undecided,
            {**QUIET, "LOG_LEVEL": "CRITICAL", "CONCURRENCY": 1, "MAX_RELOGINS": 2},
            site=site,
            pages=40,
            started=[],
        )
    assert stats["finish_reason"] == "finished", stats["login"]
    assert stats["items"] == 40
    assert stats["login"]["relogins"] >= 9  # 40 pages, 4 per session


class Public(Spider):
    """Logs in to a site whose pages are public, except one that sends us to the login page."""

    name = "public"

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base
        self.login_url = base + "/login"
        self.start_urls = [f"{base}/p/{n}" for n in range(20)]

    async def login(self, session: Session) -> None:
        response = await session.post(self.login_url)
        if response.status != 200:
            raise RuntimeError(f"login refused: HTTP {response.status}")

    def parse(self, response: Response) -> Any:
        yield {"url": response.url}


async def test_workers_waiting_for_a_failed_relogin_send_nothing(httpserver: HTTPServer) -> None:
    """Requests held while the re-login ran are not sent once it failed: no page after it."""
    logins: list[int] = []

    def login(request: WRequest) -> WResponse:
        logins.append(1)
        return WResponse(
            "welcome" if len(logins) == 1 else "locked", status=200 if len(logins) == 1 else 403
        )

    def page(request: WRequest) -> WResponse:
        if request.path == "/p/0":
            return WResponse("", status=302, headers={"Location": "/login"})
        time.sleep(0.2)  # in flight while /p/0 finds the session lost
        return WResponse("<p>public</p>", content_type="text/html")

    httpserver.expect_request("/login", method="POST").respond_with_handler(login)
    httpserver.expect_request("/login").respond_with_data("<form></form>", content_type="text/html")
    httpserver.expect_request(re.compile(r"^/p/\d+$")).respond_with_handler(page)
    base = httpserver.url_for("").rstrip("/")
    stats = await crawl_async(
        Public, {**QUIET, "LOG_LEVEL": "CRITICAL", "CONCURRENCY": 4}, base=base
    )
    paths = [request.path for request, _ in httpserver.log]
    refused = max(
        i
        for i, (request, _) in enumerate(httpserver.log)
        if request.path == "/login" and request.method == "POST"
    )
    assert stats["finish_reason"] == "login_failed"
    assert len(logins) == 3  # the start, then the re-login tried twice
    assert [p for p in paths[refused + 1 :] if p.startswith("/p/")] == []
    assert stats["items"] == len({p for p in paths if p.startswith("/p/") and p != "/p/0"})


class Quick(SlowMembers):
    """Judges pages by the member marker, and parses them at once."""

    name = "quick"

    async def parse(self, response: Response, n: int) -> AsyncIterator[dict[str, int]]:
        yield {"page": n, "part": 0}


async def test_a_session_that_expires_again_before_the_refetch_loses_no_page() -> None:
    """Short sessions and slow pages: a refetch after a re-login may meet the next expiry."""
    with MemberSite(seconds_per_session=0.5, page_delay=0.1) as site:
        stats = await crawl_async(
            Quick,
            {**QUIET, "LOG_LEVEL": "CRITICAL", "CONCURRENCY": 16, "MAX_RELOGINS": 3},
            site=site,
            pages=100,
            started=[],
        )
    assert stats["finish_reason"] == "finished", stats["login"]
    assert stats["errors"] == {}
    assert stats["items"] == 100
    assert stats["login"]["relogins"] >= 2
