"""SitemapSpider end to end against a loopback site: robots.txt Sitemap lines, a gzipped index,
sitemap_rules, alternate links, a malformed sitemap and a gzip bomb."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import Response, SitemapSpider, crawl_async

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
XHTML = 'xmlns:xhtml="http://www.w3.org/1999/xhtml"'


def urlset(*urls: str, extra: str = "") -> bytes:
    entries = "".join(f"<url><loc>{url}</loc>{extra}</url>" for url in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset {NS} {XHTML}>{entries}</urlset>'.encode()


def index(*urls: str) -> bytes:
    entries = "".join(f"<sitemap><loc>{url}</loc></sitemap>" for url in urls)
    return f'<?xml version="1.0"?><sitemapindex {NS}>{entries}</sitemapindex>'.encode()


def bomb(size: int) -> bytes:
    """A gzip file of `size` zero bytes (about a thousandth of that compressed)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size >> 20)]
    return b"".join([*parts, packer.flush()])


def page(httpserver: HTTPServer, path: str) -> None:
    httpserver.expect_request(path).respond_with_data(
        f"<html><title>{path}</title></html>", content_type="text/html"
    )


def fetched(httpserver: HTTPServer) -> list[str]:
    return sorted(request.path for request, _ in httpserver.log)


def settings(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "STATE_DIR": str(tmp_path / "state"),
        "FEEDS": {str(tmp_path / "items.jsonl"): {"overwrite": True}},
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "CONCURRENCY": 1,
        **extra,
    }


def feed(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]


def warnings(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    return [e for e in events if e.get("level") == "warning"]


class Shop(SitemapSpider):
    name = "sitemap_shop"
    sitemap_rules = [(r"/product/", "parse_product"), (r"/blog/", "parse_post")]
    sitemap_follow = [r"products", r"blog"]

    def parse_product(self, response: Response) -> Any:
        return {"product": response.url.rsplit("/", 1)[1]}

    def parse_post(self, response: Response) -> Any:
        return {"post": response.url.rsplit("/", 1)[1]}


async def test_robots_txt_leads_to_a_gzipped_index_and_its_sitemaps(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """robots.txt Sitemap lines are followed; a .xml.gz index served as application/gzip is
    inflated; sitemap_follow picks its sitemaps; sitemap_rules pick the callbacks; a URL no
    rule matches is not requested."""
    url = httpserver.url_for
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow:\nSitemap: /sitemap_index.xml.gz\n", content_type="text/plain"
    )
    httpserver.expect_request("/sitemap_index.xml.gz").respond_with_data(
        gzip.compress(index(url("/sitemap-products.xml"), url("/blog.xml.gz"), url("/skip.xml"))),
        content_type="application/gzip",
    )
    httpserver.expect_request("/sitemap-products.xml").respond_with_data(
        urlset(url("/product/1"), url("/product/2"), url("/about")),
        content_type="application/xml",
    )
    httpserver.expect_request("/blog.xml.gz").respond_with_data(
        gzip.compress(urlset(url("/blog/hello"))), content_type="application/octet-stream"
    )
    for path in ("/product/1", "/product/2", "/blog/hello"):
        page(httpserver, path)
    stats = await crawl_async(Shop, settings(tmp_path), sitemap_urls=[url("/robots.txt")])
    assert stats["finish_reason"] == "finished"
    assert sorted(map(str, feed(tmp_path))) == sorted(
        map(str, [{"product": "1"}, {"product": "2"}, {"post": "hello"}])
    )
    assert fetched(httpserver) == [
        "/blog.xml.gz", "/blog/hello", "/product/1", "/product/2", "/robots.txt",
        "/sitemap-products.xml", "/sitemap_index.xml.gz",
    ]  # fmt: skip


class Alternates(SitemapSpider):
    name = "sitemap_alternates"
    sitemap_alternate_links = True

    def parse(self, response: Response) -> Any:
        return {"url": response.url}


async def test_alternate_links_are_followed_when_asked(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """With sitemap_alternate_links, each entry's xhtml:link alternates are requested too."""
    alternate = f'<xhtml:link rel="alternate" hreflang="de" href="{httpserver.url_for("/de")}"/>'
    httpserver.expect_request("/sitemap.xml").respond_with_data(
        urlset(httpserver.url_for("/en"), extra=alternate), content_type="text/xml"
    )
    page(httpserver, "/en")
    page(httpserver, "/de")
    await crawl_async(
        Alternates, settings(tmp_path), sitemap_urls=[httpserver.url_for("/sitemap.xml")]
    )
    assert sorted(item["url"] for item in feed(tmp_path)) == [
        httpserver.url_for("/de"),
        httpserver.url_for("/en"),
    ]


class Everything(SitemapSpider):
    name = "sitemap_everything"

    def parse(self, response: Response) -> Any:
        return {"url": response.url}


@pytest.mark.parametrize(
    ("body", "event", "reason"),
    [
        pytest.param(b"<html><p>not a sitemap", "sitemap ignored", "not <urlset>", id="html"),
        pytest.param(b"\x00\x01garbage", "sitemap ignored", "not XML", id="binary"),
        pytest.param(b"\x1f\x8b\x08\x00broken", "sitemap ignored", "corrupt", id="bad-gzip"),
    ],
)
async def test_a_malformed_sitemap_is_one_warning_and_the_crawl_goes_on(
    httpserver: HTTPServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: bytes,
    event: str,
    reason: str,
) -> None:
    """A sitemap that is not one gives one warning naming its URL; the other sitemaps and
    their pages are still crawled."""
    broken = httpserver.url_for("/broken.xml")
    httpserver.expect_request("/broken.xml").respond_with_data(body, content_type="text/xml")
    httpserver.expect_request("/good.xml").respond_with_data(
        urlset(httpserver.url_for("/p")), content_type="text/xml"
    )
    page(httpserver, "/p")
    stats = await crawl_async(
        Everything,
        settings(tmp_path),
        sitemap_urls=[broken, httpserver.url_for("/good.xml")],
    )
    assert stats["finish_reason"] == "finished"
    assert feed(tmp_path) == [{"url": httpserver.url_for("/p")}]
    [warning] = warnings(capsys)
    assert (warning["event"], warning["url"]) == (event, broken)
    assert reason in warning["reason"]


async def test_a_truncated_sitemap_keeps_the_entries_before_the_fault(
    httpserver: HTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sitemap cut off mid-entry yields the entries read so far, with one warning."""
    whole = urlset(httpserver.url_for("/p1"), httpserver.url_for("/p2"))
    cut = whole[: whole.index(b"/p2")]
    httpserver.expect_request("/cut.xml").respond_with_data(cut, content_type="text/xml")
    page(httpserver, "/p1")
    await crawl_async(Everything, settings(tmp_path), sitemap_urls=[httpserver.url_for("/cut.xml")])
    assert feed(tmp_path) == [{"url": httpserver.url_for("/p1")}]
    [warning] = warnings(capsys)
    assert warning["event"] == "sitemap malformed"
    assert warning["url"] == httpserver.url_for("/cut.xml")
    assert warning["entries_read"] == 1


async def test_a_gzip_bomb_sitemap_stops_at_the_body_limit(
    httpserver: HTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .xml.gz that inflates past MAX_RESPONSE_BYTES is cut off there, with one warning
    naming the URL and the setting; the crawl goes on."""
    bomb_url = httpserver.url_for("/bomb.xml.gz")
    httpserver.expect_request("/bomb.xml.gz").respond_with_data(
        bomb(64 << 20), content_type="application/gzip"
    )
    httpserver.expect_request("/good.xml").respond_with_data(
        urlset(httpserver.url_for("/p")), content_type="text/xml"
    )
    page(httpserver, "/p")
    stats = await crawl_async(
        Everything,
        settings(tmp_path, MAX_RESPONSE_BYTES=1 << 20),
        sitemap_urls=[bomb_url, httpserver.url_for("/good.xml")],
    )
    assert stats["finish_reason"] == "finished"
    assert feed(tmp_path) == [{"url": httpserver.url_for("/p")}]
    [warning] = warnings(capsys)
    assert (warning["event"], warning["url"]) == ("sitemap ignored", bomb_url)
    assert "MAX_RESPONSE_BYTES=1048576" in warning["reason"]


async def test_a_plain_function_as_a_sitemap_callback_survives_the_sqlite_frontier(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A sitemap rule whose callback is not a spider method is stored by rule index."""

    def parse_any(response: Response) -> Any:
        return {"function": response.url}

    class Functions(SitemapSpider):
        name = "sitemap_functions"
        sitemap_rules = [("", parse_any)]

    httpserver.expect_request("/sitemap.xml").respond_with_data(
        urlset(httpserver.url_for("/p")), content_type="text/xml"
    )
    page(httpserver, "/p")
    await crawl_async(
        Functions, settings(tmp_path), sitemap_urls=[httpserver.url_for("/sitemap.xml")]
    )
    assert feed(tmp_path) == [{"function": httpserver.url_for("/p")}]
