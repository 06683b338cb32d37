"""The genspider templates for CrawlSpider and SitemapSpider run as generated against a site:
`scrapekit genspider NAME URL --template crawl|sitemap`, then `scrapekit crawl NAME`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Project

pytestmark = pytest.mark.subprocess

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def serve_site(httpserver: HTTPServer) -> None:
    """Three linked pages, an off-site link and a PDF; robots.txt names a gzipped sitemap."""
    pages = {
        "/": '<a href="/a">A</a> <a href="http://elsewhere.invalid/">off</a> '
        '<a href="/f.pdf">file</a>',
        "/a": '<a href="/b">B</a> <a href="/">home</a>',
        "/b": '<a href="/a">A</a>',
    }
    for path, body in pages.items():
        httpserver.expect_request(path).respond_with_data(
            f"<html><head><title>page {path}</title></head><body>{body}</body></html>",
            content_type="text/html",
        )
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nAllow: /\nSitemap: /sitemap.xml.gz\n", content_type="text/plain"
    )
    locs = "".join(f"<url><loc>{httpserver.url_for(p)}</loc></url>" for p in ("/a", "/b"))
    httpserver.expect_request("/sitemap.xml.gz").respond_with_data(
        gzip.compress(f"<urlset {NS}>{locs}</urlset>".encode()), content_type="application/gzip"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("crawl", ["/", "/a", "/b"], id="crawl"),
        pytest.param("sitemap", ["/a", "/b"], id="sitemap"),
    ],
)
def test_a_rendered_template_crawls_a_site(
    httpserver: HTTPServer, project: Project, tmp_path: Path, template: str, expected: list[str]
) -> None:
    """`scrapekit crawl NAME` runs the spider genspider wrote from the template unchanged,
    and its items are the site's pages (each once, with their titles)."""
    serve_site(httpserver)
    name = f"{template}_site"
    made = project.run("genspider", name, httpserver.url_for("/"), "--template", template)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "items.jsonl"
    result = project.run("crawl", name, "-O", str(out), "--log-format", "json")
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(item["url"] for item in items) == [httpserver.url_for(p) for p in expected]
    assert all(item["title"] == f"page {urlsplit(item['url']).path}" for item in items)
    assert "/f.pdf" not in {request.path for request, _ in httpserver.log}
