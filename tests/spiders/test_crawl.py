"""CrawlSpider and Rule end to end against a loopback site, on the default (SQLite) frontier."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import (
    ConfigError,
    CrawlSpider,
    Link,
    LinkExtractor,
    Request,
    Response,
    Rule,
    crawl_async,
)

PAGES = {
    "/": """<nav><a href="/cat/a">A</a> <a href="/cat/b">B</a> <a href="/admin/cat/">admin</a></nav>
        <div class="ads"><a href="/item/9">ad</a></div>
        <a href="/doc.pdf">pdf</a> <a href="mailto:x@example.com">mail</a> <a href="">empty</a>""",
    "/cat/a": """<ul class="items"><li><a href="/item/1">one</a></li>
        <li><a href="/item/2">two</a></li></ul><a class="next" href="/cat/a2">next</a>
        <a href="/item/7">not in the list</a>""",
    "/cat/a2": """<ul class="items"><li><a href="/item/3">three</a></li></ul>""",
    "/cat/b": """<ul class="items"><li><a href="/item/4">four</a></li></ul>
        <a href="/cat/a">A</a>""",
    "/admin/cat/": """<ul class="items"><li><a href="/item/8">secret</a></li></ul>""",
}
ITEMS = ("1", "2", "3", "4", "7", "8", "9")


def serve(httpserver: HTTPServer) -> str:
    """The shop: category pages with item lists, an admin area, ads, and item pages."""
    for path, body in PAGES.items():
        httpserver.expect_request(path).respond_with_data(
            f"<html><body>{body}</body></html>", content_type="text/html"
        )
    for n in ITEMS:
        httpserver.expect_request(f"/item/{n}").respond_with_data(
            f'<html><body><h1>Item {n}</h1><a href="/cat/b">B</a></body></html>',
            content_type="text/html",
        )
    return httpserver.url_for("/")


def fetched(httpserver: HTTPServer) -> list[str]:
    """The paths the site served, sorted."""
    return sorted(request.path for request, _ in httpserver.log)


def settings(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """A quiet crawl whose state (the SQLite frontier) and feed stay under tmp_path."""
    return {
        "STATE_DIR": str(tmp_path / "state"),
        "FEEDS": {str(tmp_path / "items.jsonl"): {"overwrite": False}},
        "LOG_LEVEL": "WARNING",
        "CONCURRENCY": 1,
        **extra,
    }


def feed(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]


class Shop(CrawlSpider):
    name = "shop"
    rules = (
        Rule(LinkExtractor(allow=r"/cat/", deny=r"/admin/")),
        Rule(LinkExtractor(allow=r"/item/\d+$", restrict_css="ul.items"), callback="parse_item"),
    )

    def parse_item(self, response: Response) -> Any:
        yield {
            "name": response.css_first("h1").text(),  # type: ignore[union-attr]
            "link_text": response.meta["link_text"],
        }


async def test_rules_follow_allowed_links_and_call_back_on_items(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """allow/deny and restrict_css choose the links; a rule with no callback follows, one with
    a callback does not; mailto, empty and .pdf links are never requested."""
    stats = await crawl_async(Shop, settings(tmp_path), start_urls=[serve(httpserver)])
    assert stats["finish_reason"] == "finished"
    assert sorted(item["name"] for item in feed(tmp_path)) == [
        "Item 1", "Item 2", "Item 3", "Item 4",
    ]  # fmt: skip
    assert {item["link_text"] for item in feed(tmp_path)} == {"one", "two", "three", "four"}
    # /item/7 is outside ul.items, /item/9 in the ads, /admin/ denied; item pages not followed.
    assert fetched(httpserver) == [
        "/", "/cat/a", "/cat/a2", "/cat/b", "/item/1", "/item/2", "/item/3", "/item/4",
    ]  # fmt: skip
    assert stats["dropped"]["requests"]["link scheme mailto"] == 1
    assert stats["dropped"]["requests"]["link empty"] == 1


async def test_a_resumed_crawl_spider_on_the_sqlite_frontier_loses_nothing(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Rule requests are stored in the SQLite frontier (callback by name, rule index in meta):
    a crawl stopped after two pages finishes on the next run with every item once."""
    url = serve(httpserver)
    first = await crawl_async(Shop, settings(tmp_path, CLOSESPIDER_PAGECOUNT=2), start_urls=[url])
    assert first["finish_reason"] == "closespider_pagecount"
    db = tmp_path / "state" / "shop" / "frontier.db"
    with sqlite3.connect(db) as conn:
        stored = " ".join(str(row) for row in conn.execute("SELECT * FROM requests"))
    conn.close()
    assert '"callback":"_rule_callback"' in stored
    assert '"rule":0' in stored
    second = await crawl_async(Shop, settings(tmp_path), start_urls=[url])
    assert (second["finish_reason"], second["run"]["resumed"]) == ("finished", True)
    names = sorted(item["name"] for item in feed(tmp_path))
    assert names == ["Item 1", "Item 2", "Item 3", "Item 4"]
    assert first["pages"] + second["pages"] == 8


class FirstRuleWins(CrawlSpider):
    name = "first_rule_wins"

    def parse_start_url(self, response: Response) -> Any:
        return {"start": response.url}

    def parse_first(self, response: Response, kind: str) -> Any:
        return {"first": response.url.rsplit("/", 1)[1], "kind": kind}

    def parse_second(self, response: Response) -> Any:
        return {"second": response.url.rsplit("/", 1)[1]}

    def only_odd(self, links: list[Link]) -> list[Link]:
        return [link for link in links if int(link.url[-1]) % 2]

    def mark(self, request: Request, response: Response) -> Request | None:
        if request.url.endswith("/item/3"):
            return None
        request.headers["X-Rule"] = "first"
        return request

    rules = (
        Rule(
            LinkExtractor(allow=r"/item/"),
            callback=parse_first,  # the function in the class body, bound on the instance
            cb_kwargs={"kind": "odd"},
            process_links="only_odd",
            process_request="mark",
        ),
        Rule(LinkExtractor(allow=r"/item/"), callback="parse_second"),
    )


async def test_the_first_matching_rule_takes_a_link(httpserver: HTTPServer, tmp_path: Path) -> None:
    """Links an earlier rule took are not taken again by a later one; process_links,
    process_request and cb_kwargs apply; start pages go to parse_start_url."""
    links = "".join(f'<a href="/item/{n}">{n}</a>' for n in range(1, 5))
    httpserver.expect_request("/").respond_with_data(links, content_type="text/html")
    for n in range(1, 5):
        httpserver.expect_request(f"/item/{n}").respond_with_data(
            "<p>item</p>", content_type="text/html"
        )
    start = httpserver.url_for("/")
    await crawl_async(FirstRuleWins, settings(tmp_path), start_urls=[start])
    items = feed(tmp_path)
    assert {"start": start} in items
    # 1 and 3 passed only_odd; 3 was dropped by process_request; 2 and 4 fell to rule 2.
    assert sorted(json.dumps(i, sort_keys=True) for i in items if "start" not in i) == sorted(
        json.dumps(i, sort_keys=True)
        for i in (
            {"first": "1", "kind": "odd"},
            {"second": "2"},
            {"second": "4"},
        )
    )
    headers = {req.path: req.headers.get("X-Rule") for req, _ in httpserver.log}
    assert headers["/item/1"] == "first"
    assert headers["/item/2"] is None
    assert "/item/3" not in headers


class Errbacks(CrawlSpider):
    name = "errbacks"
    rules = (Rule(LinkExtractor(), callback="parse_page", errback="on_error"),)

    def parse_page(self, response: Response) -> Any:
        return {"ok": response.url}

    def on_error(self, error: Exception) -> Any:
        return {"failed": error.request.url}  # type: ignore[attr-defined]


async def test_a_rule_errback_receives_its_failures(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A rule's errback gets the error of a request that failed for good."""
    httpserver.expect_request("/").respond_with_data(
        '<a href="/gone">gone</a><a href="/here">here</a>', content_type="text/html"
    )
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    httpserver.expect_request("/here").respond_with_data("<p>hi</p>", content_type="text/html")
    await crawl_async(Errbacks, settings(tmp_path), start_urls=[httpserver.url_for("/")])
    assert sorted(map(str, feed(tmp_path))) == sorted(
        map(str, [{"failed": httpserver.url_for("/gone")}, {"ok": httpserver.url_for("/here")}])
    )


def test_a_rule_naming_no_method_is_a_config_error() -> None:
    """A rule whose callback names no method fails at construction, naming rule and method."""

    class Broken(CrawlSpider):
        name = "broken"
        rules = (Rule(LinkExtractor(), callback="parse_missing"),)

    with pytest.raises(ConfigError, match=r"rules\[0\] callback='parse_missing' is not a method"):
        Broken()


def test_follow_defaults_to_true_only_without_a_callback() -> None:
    """Rule.follow is True when there is no callback, False when there is, unless given."""
    assert Rule().follow is True
    assert Rule(callback="parse_item").follow is False
    assert Rule(callback="parse_item", follow=True).follow is True


# -- process_value, restrict_xpaths, restrict_text ---------------------------------------------

PORTED_PAGES = {
    "/": """<div id="menu"><a href="/cat/x">X</a></div>
        <nav class="pages"><a href="javascript:goToPage('/cat/y'); return false">2</a>
        <a href="/drop/me">drop</a></nav>
        <a href="/cat/z">outside the regions</a>""",
    "/cat/x": """<ul class="items"><li><a href="/item/1">Details</a></li>
        <li><a href="/item/2">Buy now</a></li></ul>
        <div class="ads"><a href="/item/9">Details</a></div>""",
    "/cat/y": """<ul class="items"><li><a href="/item/3">Details of <b>three</b></a></li></ul>""",
}


def serve_ported(httpserver: HTTPServer) -> str:
    """A shop whose pagination is javascript:, with menus, item lists and ads."""
    for path, body in PORTED_PAGES.items():
        httpserver.expect_request(path).respond_with_data(body, content_type="text/html")
    for path in ("/cat/z", "/drop/me", "/item/1", "/item/2", "/item/3", "/item/9"):
        httpserver.expect_request(path).respond_with_data(
            f"<h1>{path}</h1>", content_type="text/html"
        )
    return httpserver.url_for("/")


def page_link(value: str) -> str | None:
    """The URL in javascript:goToPage('...'); /drop/ links left out; others as they are."""
    if match := re.search(r"goToPage\('(.*?)'", value):
        return match.group(1)
    return None if "/drop/" in value else value


class Ported(CrawlSpider):
    """Rules as a Scrapy project writes them: XPath and CSS regions, process_value, and
    restrict_text."""

    name = "ported"
    rules = (
        Rule(
            LinkExtractor(
                restrict_xpaths="//div[@id='menu']",
                restrict_css="nav.pages",
                process_value=page_link,
            )
        ),
        Rule(
            LinkExtractor(restrict_xpaths="//ul[@class='items']", restrict_text=r"^Details"),
            callback="parse_item",
        ),
    )

    def parse_item(self, response: Response) -> Any:
        yield {"url": response.url, "link_text": response.meta["link_text"]}


async def test_ported_rules_with_xpath_regions_process_value_and_restrict_text(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """restrict_xpaths and restrict_css regions both give links; process_value turns the
    javascript: pagination into a page and drops /drop/; restrict_text keeps "Details" links
    of the item lists only (not "Buy now", not the ads)."""
    start = serve_ported(httpserver)
    stats = await crawl_async(Ported, settings(tmp_path), start_urls=[start])
    assert stats["finish_reason"] == "finished"
    assert stats["errors"] == {}
    assert fetched(httpserver) == ["/", "/cat/x", "/cat/y", "/item/1", "/item/3"]
    assert sorted((i["url"], i["link_text"]) for i in feed(tmp_path)) == [
        (httpserver.url_for("/item/1"), "Details"),
        (httpserver.url_for("/item/3"), "Details of three"),
    ]
    assert "link scheme javascript" not in stats["dropped"]["requests"]


def explode_on_b(value: str) -> str:
    """A process_value with a bug on one link."""
    if value.endswith("/b"):
        raise RuntimeError(f"cannot read {value}")
    return value


async def test_a_process_value_error_is_the_pages_callback_error(
    httpserver: HTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What process_value raises is logged and counted as a callback error of the page (as a
    process_links error is), with its traceback; the crawl goes on with the other pages."""

    class Explodes(CrawlSpider):
        name = "explodes"
        rules = (Rule(LinkExtractor(process_value=explode_on_b), follow=True),)

    httpserver.expect_request("/").respond_with_data(
        '<a href="/a">a</a><a href="/other">o</a>', content_type="text/html"
    )
    httpserver.expect_request("/a").respond_with_data(
        '<a href="/b">b</a><a href="/c">c</a>', content_type="text/html"
    )
    httpserver.expect_request("/other").respond_with_data("<p>x</p>", content_type="text/html")
    stats = await crawl_async(
        Explodes,
        settings(tmp_path, LOG_LEVEL="ERROR", LOG_FORMAT="json"),
        start_urls=[httpserver.url_for("/")],
    )
    assert stats["finish_reason"] == "finished"
    assert stats["errors"] == {"callback": 1}
    assert fetched(httpserver) == ["/", "/a", "/other"]
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    (error,) = [e for e in events if e["event"] == "callback error"]
    assert error["url"] == httpserver.url_for("/a")
    assert f"RuntimeError: cannot read {httpserver.url_for('/b')}" in error["error"]
    assert "explode_on_b" in error["exception"]
