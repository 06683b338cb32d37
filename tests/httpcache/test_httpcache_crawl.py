"""The HTTP cache in whole crawls: hits, misses, expiry, what is stored, and the login."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit import Request, Response, Spider, crawl
from scrapekit.demo import DemoSite
from scrapekit.exceptions import HttpCacheCorrupt
from spiders.demo import DemoSpider

PRODUCTS = 10
PAGES = 2 + PRODUCTS  # two listing pages of five products, then each product


class Catalogue(Spider):
    """The demo shop's catalogue, without logging in: every product, flagged when replayed."""

    name = "catalogue"

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [f"{base_url}/catalogue/page-1.html"]

    def parse(self, response: Response) -> Iterator[Request | None]:
        yield from response.follow_all(css="article.product h3 a", callback=self.parse_product)
        if (nxt := response.css_first("ul.pager li.next a")) is not None:
            yield response.follow(nxt)

    def parse_product(self, response: Response) -> Iterator[dict[str, Any]]:
        h1 = response.css_first("h1")
        yield {
            "url": response.url,
            "title": h1.text(strip=True) if h1 else None,
            "cached": response.cached,
        }


@pytest.fixture
def site() -> Iterator[DemoSite]:
    """A small demo shop of its own, so its request counters are this test's."""
    with DemoSite(products=PRODUCTS, per_page=5) as demo:
        yield demo


def run(
    spider: type[Spider], tmp_path: Path, base_url: str, **settings: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One crawl with the cache on (unless overridden), state under tmp_path; stats, items."""
    feed = tmp_path / "items.jsonl"
    stats = crawl(
        spider,
        settings={
            "STATE_DIR": str(tmp_path / "state"),
            "HTTPCACHE_ENABLED": True,
            "FEEDS": {str(feed): {"overwrite": True}},
            "LOG_LEVEL": "WARNING",
            "PROGRESS": False,
            **settings,
        },
        base_url=base_url,
    )
    items = [json.loads(line) for line in feed.read_text().splitlines()]
    return stats, sorted(items, key=lambda item: str(item.get("url")))


def cache_rows(tmp_path: Path, spider: str = "catalogue") -> sqlite3.Connection:
    """The cache file, opened for the test to read or age its rows."""
    return sqlite3.connect(tmp_path / "state" / spider / "httpcache.db", isolation_level=None)


def test_second_run_replays_every_page_without_a_request(site: DemoSite, tmp_path: Path) -> None:
    """A second run is answered wholly by the cache, robots.txt included: the site sees no
    request, and every callback gets the same pages, flagged as cached."""
    first, items = run(Catalogue, tmp_path, site.url, ROBOTSTXT_OBEY=True)
    assert site.stats.by_path["/robots.txt"] == 1
    assert first["httpcache"]["stores"] == PAGES + 1
    assert first["httpcache"]["hits"] == 0
    assert len(items) == PRODUCTS
    assert not any(item["cached"] for item in items)
    site.reset_stats()

    second, replayed = run(Catalogue, tmp_path, site.url, ROBOTSTXT_OBEY=True)

    assert site.stats.requests == 0
    assert second["requests"] == 0
    assert second["httpcache"]["hits"] == PAGES + 1
    assert second["httpcache"]["misses"] == 0
    assert second["pages"] == PAGES
    assert second["finish_reason"] == "finished"
    assert all(item["cached"] for item in replayed)
    assert [{**item, "cached": False} for item in replayed] == items


def test_a_hit_takes_no_politeness_slot(site: DemoSite, tmp_path: Path) -> None:
    """Replayed pages are granted nothing by the rate limiter: they never wait for it."""
    limits = {"RATE": 1000.0, "CONCURRENCY_PER_HOST": 1}
    first, _ = run(Catalogue, tmp_path, site.url, **limits)
    assert sum(s["requests"] for s in first["rate_limits"]["slots"].values()) == PAGES

    second, _ = run(Catalogue, tmp_path, site.url, **limits)

    assert second["httpcache"]["hits"] == PAGES
    assert sum(s["requests"] for s in second["rate_limits"]["slots"].values()) == 0


def test_an_expired_entry_is_fetched_again_and_replaced(site: DemoSite, tmp_path: Path) -> None:
    """With HTTPCACHE_EXPIRATION_SECS, an entry stored longer ago is a miss, refetched and
    stored afresh; younger entries are still replayed."""
    run(Catalogue, tmp_path, site.url)
    with cache_rows(tmp_path) as db:
        db.execute("UPDATE responses SET stored_at = 1000 WHERE url LIKE '%page-2.html'")
    site.reset_stats()

    stats, _ = run(Catalogue, tmp_path, site.url, HTTPCACHE_EXPIRATION_SECS="1d")

    assert site.stats.requests == 1
    assert site.stats.by_path == {"/catalogue/page-": 1}
    assert stats["httpcache"] | {"location": ""} == {
        "backend": "sqlite", "location": "", "hits": PAGES - 1, "misses": 1, "stores": 1,
        "errors": 0,
    }  # fmt: skip
    with cache_rows(tmp_path) as db:
        (stored_at,) = db.execute(
            "SELECT stored_at FROM responses WHERE url LIKE '%page-2.html'"
        ).fetchone()
    assert stored_at > 1000


def test_entries_never_expire_by_default(site: DemoSite, tmp_path: Path) -> None:
    """HTTPCACHE_EXPIRATION_SECS = 0 (the default) replays an entry however old it is."""
    run(Catalogue, tmp_path, site.url)
    with cache_rows(tmp_path) as db:
        db.execute("UPDATE responses SET stored_at = 1000")
    site.reset_stats()

    stats, _ = run(Catalogue, tmp_path, site.url)

    assert site.stats.requests == 0
    assert stats["httpcache"]["hits"] == PAGES


def test_with_the_cache_off_nothing_is_read_or_written(site: DemoSite, tmp_path: Path) -> None:
    """HTTPCACHE_ENABLED = false fetches every page although the cache holds them all."""
    run(Catalogue, tmp_path, site.url)
    site.reset_stats()

    stats, items = run(Catalogue, tmp_path, site.url, HTTPCACHE_ENABLED=False)

    assert site.stats.requests == PAGES
    assert stats["httpcache"] is None
    assert not any(item["cached"] for item in items)


class Statuses(Spider):
    """Fetches one page of each status and records which ones its callback saw."""

    name = "statuses"
    custom_settings = {"RETRY_ENABLED": False, "HTTPERROR_ALLOWED_CODES": [404, 429, 500, 503]}

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [f"{base_url}/{path}" for path in ("ok", "gone", "busy", "broken")]

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"url": response.url, "status": response.status, "cached": response.cached}


def status_server(httpserver: HTTPServer) -> None:
    """/ok 200 (setting a cookie), /gone 404, /busy 429, /broken 500."""

    def reply(request: WRequest) -> WResponse:
        status = {"/ok": 200, "/gone": 404, "/busy": 429, "/broken": 500}[request.path]
        response = WResponse(f"<p>{status}</p>", status=status, content_type="text/html")
        if status == 200:
            response.set_cookie("visit", "secret-cookie-value")
        return response

    for path in ("/ok", "/gone", "/busy", "/broken"):
        httpserver.expect_request(path).respond_with_handler(reply)


def test_server_errors_and_429_are_never_stored(httpserver: HTTPServer, tmp_path: Path) -> None:
    """200 and 404 are replayed; 429 and 5xx are fetched again on every run."""
    status_server(httpserver)
    base = httpserver.url_for("").rstrip("/")
    run(Statuses, tmp_path, base)
    httpserver.clear_log()

    stats, items = run(Statuses, tmp_path, base)

    fetched = sorted(request.path for request, _ in httpserver.log)
    assert fetched == ["/broken", "/busy"]
    assert {item["status"]: item["cached"] for item in items} == {
        200: True, 404: True, 429: False, 500: False,
    }  # fmt: skip
    assert stats["httpcache"]["hits"] == 2
    assert stats["httpcache"]["misses"] == 2


def test_ignored_codes_are_not_stored(httpserver: HTTPServer, tmp_path: Path) -> None:
    """HTTPCACHE_IGNORE_HTTP_CODES keeps those statuses out of the cache."""
    status_server(httpserver)
    base = httpserver.url_for("").rstrip("/")
    run(Statuses, tmp_path, base, HTTPCACHE_IGNORE_HTTP_CODES=[404])
    httpserver.clear_log()

    run(Statuses, tmp_path, base, HTTPCACHE_IGNORE_HTTP_CODES=[404])

    assert sorted(request.path for request, _ in httpserver.log) == ["/broken", "/busy", "/gone"]


def test_a_replay_never_writes_a_cookie(httpserver: HTTPServer, tmp_path: Path) -> None:
    """Set-Cookie is not stored (the cookie's value is not in the file), so a replayed page
    leaves the jar as it was."""
    status_server(httpserver)
    base = httpserver.url_for("").rstrip("/")
    first, _ = run(Statuses, tmp_path, base, COOKIES_PERSIST=False)
    assert first["session"]["cookies"] == 1  # the live page did set it
    with cache_rows(tmp_path, "statuses") as db:
        headers = [json.loads(row[0]) for row in db.execute("SELECT headers FROM responses")]
    assert headers
    assert all(name.lower() != "set-cookie" for h in headers for name, _ in h)
    raw = (tmp_path / "state" / "statuses" / "httpcache.db").read_bytes()
    assert b"secret-cookie-value" not in raw

    second, _ = run(Statuses, tmp_path, base, COOKIES_PERSIST=False)

    assert second["httpcache"]["hits"] == 2
    assert second["session"]["cookies"] == 0


def test_the_login_is_never_served_from_the_cache(site: DemoSite, tmp_path: Path) -> None:
    """With the login forgotten, a cached crawl logs in again for real: the login form, its
    POST and LOGIN_CHECK_URL reach the site although page 1 (the check URL) is cached, and
    only the crawl's pages are replayed."""
    first, items = run(DemoSpider, tmp_path, site.url, COOKIES_PERSIST=False)
    assert first["login"]["logins"] == 1
    assert all(item["stock"] is not None for item in items)  # logged-in pages were stored
    site.reset_stats()

    second, replayed = run(DemoSpider, tmp_path, site.url, COOKIES_PERSIST=False)

    assert site.stats.logins == 1
    assert site.stats.by_path.get("/login", 0) == 2  # the form, then its POST
    # The login's redirect to the home page (page 1), then LOGIN_CHECK_URL (page 1 again).
    assert site.stats.by_path.get("/catalogue/page-", 0) == 2
    assert "/catalogue/product/" not in site.stats.by_path
    assert second["login"]["logins"] == 1
    assert second["httpcache"]["hits"] == PAGES
    assert replayed == items


def test_a_corrupt_cache_stops_the_crawl_before_a_request(site: DemoSite, tmp_path: Path) -> None:
    """A cache file that is not SQLite raises HttpCacheCorrupt naming it and the fix; the
    site sees nothing."""
    path = tmp_path / "state" / "catalogue" / "httpcache.db"
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(b"not a database at all " * 200)

    with pytest.raises(HttpCacheCorrupt) as caught:
        run(Catalogue, tmp_path, site.url)

    assert str(path) in str(caught.value)
    assert "--no-cache" in str(caught.value)
    assert site.stats.requests == 0


class DistrustsReplays(DemoSpider):
    """Judges every replayed page logged out: a replay must never be judged at all."""

    def is_logged_in(self, response: Response) -> bool | None:
        return False if response.cached else super().is_logged_in(response)


def test_a_replayed_page_is_not_judged_by_is_logged_in(site: DemoSite, tmp_path: Path) -> None:
    """Replayed pages never reach the login lifecycle: no re-login, although is_logged_in
    would call every one of them logged out."""
    run(DemoSpider, tmp_path, site.url)
    site.reset_stats()

    stats, items = run(DistrustsReplays, tmp_path, site.url)

    assert stats["finish_reason"] == "finished"
    assert stats["login"]["relogins"] == 0
    assert stats["httpcache"]["hits"] == PAGES
    assert len(items) == PRODUCTS
    assert site.stats.logins == 0
