"""RECRAWL_AFTER: a new run skips pages an earlier run fetched recently, revisits the others
with If-None-Match / If-Modified-Since, and takes a 304 as "unchanged"."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WsgiRequest
from werkzeug import Response as WsgiResponse

from scrapekit import Response, Spider, crawl

LAST_MODIFIED = "Tue, 01 Dec 2026 10:00:00 GMT"


class Site:
    """An index linking to /etag/N (ETag validators) and /dated/N (Last-Modified ones)."""

    def __init__(self, server: HTTPServer, pages: int = 3) -> None:
        self.server = server
        self.paths = [f"/etag/{n}" for n in range(pages)] + [f"/dated/{n}" for n in range(pages)]
        self.hits: Counter[str] = Counter()
        self.conditional: list[tuple[str, str | None, str | None]] = []
        self.changed: set[str] = set()
        server.expect_request("/robots.txt").respond_with_data("", status=404)
        for path in ["/", *self.paths]:
            server.expect_request(path).respond_with_handler(self._handle)

    def url(self, path: str = "/") -> str:
        return self.server.url_for(path)

    def _handle(self, request: WsgiRequest) -> WsgiResponse:
        path = request.path
        self.hits[path] += 1
        if path == "/":
            links = "".join(f'<a href="{p}">{p}</a>' for p in self.paths)
            return WsgiResponse(f"<html><body>{links}</body></html>", content_type="text/html")
        match = request.headers.get("If-None-Match")
        since = request.headers.get("If-Modified-Since")
        if match is not None or since is not None:
            self.conditional.append((path, match, since))
        version = "v2" if path in self.changed else "v1"
        tag = f'"{path}-{version}"'
        headers = {"ETag": tag} if path.startswith("/etag") else {"Last-Modified": LAST_MODIFIED}
        unchanged = match == tag if path.startswith("/etag") else since == LAST_MODIFIED
        if unchanged and path not in self.changed:
            return WsgiResponse(status=304, headers=headers)
        body = f"<html><body><h1>{path} {version}</h1></body></html>"
        return WsgiResponse(body, content_type="text/html", headers=headers)


class Pages(Spider):
    name = "pages"

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a", callback=self.page)

    def page(self, response: Response) -> Iterator[dict[str, Any]]:
        if response.status == 304:  # only when the spider accepts 304 (HTTPERROR_ALLOWED_CODES)
            yield {"url": response.url, "unchanged": True}
            return
        yield {"url": response.url, "title": response.css_first("h1").text(strip=True)}


@pytest.fixture
def site(httpserver: HTTPServer) -> Site:
    return Site(httpserver)


def run(site: Site, tmp_path: Path, **settings: Any) -> dict[str, Any]:
    settings = {
        "FRONTIER": "sqlite",
        "STATE_DIR": str(tmp_path / "state"),
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    return crawl(Pages, settings, start_urls=[site.url()])


def test_a_new_run_skips_pages_fetched_recently_but_not_the_start(
    site: Site, tmp_path: Path
) -> None:
    first = run(site, tmp_path, RECRAWL_AFTER="1h")
    assert first["items"] == 6
    second = run(site, tmp_path, RECRAWL_AFTER="1h")
    assert second["finish_reason"] == "finished"
    assert site.hits["/"] == 2  # the start page is read again: the crawl grows from it
    assert all(site.hits[p] == 1 for p in site.paths)  # the pages were not due
    assert second["dropped"]["requests"]["not due"] == 6
    assert second["items"] == 0
    assert second["scheduler"]["frontier"]["not_due"] == 6


def test_a_due_revisit_asks_changed_since_and_a_304_is_unchanged(
    site: Site, tmp_path: Path
) -> None:
    run(site, tmp_path, RECRAWL_AFTER=0.5)
    time.sleep(0.6)  # the pages are now older than RECRAWL_AFTER
    site.changed = {"/etag/1", "/dated/2"}
    second = run(site, tmp_path, RECRAWL_AFTER=0.5)
    asked = {path: (match, since) for path, match, since in site.conditional}
    assert asked["/etag/0"] == ('"/etag/0-v1"', None)
    assert asked["/dated/0"] == (None, LAST_MODIFIED)
    assert set(asked) == set(site.paths)
    # Only the changed pages reach their callback; the others are unchanged, not failures.
    assert second["items"] == 2
    assert second["unchanged"] == 4
    assert second["responses_by_status"] == {"200": 3, "304": 4}
    assert second["error_count"] == 0
    assert second["finish_reason"] == "finished"
    assert second["pages_succeeded"] == 7


def test_the_validators_of_the_last_fetch_are_kept(site: Site, tmp_path: Path) -> None:
    """A changed page's new ETag replaces the old; a 304 without validators keeps them."""
    run(site, tmp_path, RECRAWL_AFTER=0.3)
    time.sleep(0.4)
    site.changed = {"/etag/0"}
    run(site, tmp_path, RECRAWL_AFTER=0.3)
    db = sqlite3.connect(tmp_path / "state" / "pages" / "frontier.db")
    try:
        etags = {row[0] for row in db.execute("SELECT etag FROM fetched WHERE etag IS NOT NULL")}
        modified = {row[0] for row in db.execute("SELECT last_modified FROM fetched")}
    finally:
        db.close()
    assert '"/etag/0-v2"' in etags
    assert '"/etag/0-v1"' not in etags
    assert '"/etag/1-v1"' in etags
    assert LAST_MODIFIED in modified


def test_a_callback_that_accepts_304_still_runs(site: Site, tmp_path: Path) -> None:
    run(site, tmp_path, RECRAWL_AFTER=0.3)
    time.sleep(0.4)
    second = run(site, tmp_path, RECRAWL_AFTER=0.3, HTTPERROR_ALLOWED_CODES=[304])
    assert second["unchanged"] == 6
    assert second["items"] == 6  # each callback saw its 304
    assert second["error_count"] == 0
    assert second["pages_succeeded"] == 7


def test_fresh_forgets_the_fetches_of_the_crawl_it_discards(site: Site, tmp_path: Path) -> None:
    """--fresh after an unfinished crawl: its pages are not kept out as "not due"."""
    first = run(site, tmp_path, RECRAWL_AFTER="1d", CONCURRENCY=1, CLOSESPIDER_PAGECOUNT=3)
    assert first["finish_reason"] == "closespider_pagecount"
    fresh = run(site, tmp_path, RECRAWL_AFTER="1d", FRESH=True)
    assert fresh["finish_reason"] == "finished"
    assert fresh["dropped"]["requests"].get("not due", 0) == 0
    assert fresh["items"] == 6  # every page, those the discarded crawl fetched too
    # A finished crawl's fetches are kept: the next new crawl finds nothing due.
    assert run(site, tmp_path, RECRAWL_AFTER="1d", FRESH=True)["items"] == 0


def test_without_recrawl_after_a_new_run_fetches_everything_again(
    site: Site, tmp_path: Path
) -> None:
    run(site, tmp_path)
    second = run(site, tmp_path)
    assert all(site.hits[p] == 2 for p in site.paths)
    assert not site.conditional
    assert second["items"] == 6


def test_the_memory_frontier_says_it_cannot_recrawl(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = run(site, tmp_path, FRONTIER="memory", RECRAWL_AFTER="1d", LOG_FORMAT="json")
    assert stats["items"] == 6
    warning = [line for line in capsys.readouterr().err.splitlines() if "recrawl" in line]
    assert len(warning) == 1
    assert "FRONTIER" in warning[0]
