"""A PROXY that refuses the credentials (407) or the connection, seen from the command line:
a crawl stops early with exit 1 and one line naming the proxy (password hidden) and the fix,
keeping the items already scraped; `fetch`, `shell` and `parse` fail with that line too.

The proxy is tests/proxyserver.py's forward proxy, started by the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scrapekit.demo import DemoSite
from tests.conftest import Project, crawl_finished
from tests.proxyserver import PASSWORD, ForwardProxy, running

pytestmark = pytest.mark.subprocess

WRONG = "not-the-Pa55word"
AUTH_FIX = (
    "refused the credentials (HTTP 407 Proxy Authentication Required); "
    "check PROXY's user and password"
)
REACH_FIX = "is the proxy running? check PROXY's host and port"


def crawl_demo(repo: Project, site: DemoSite, *args: str) -> Any:
    """`scrapekit crawl demo` against `site` with JSON logs."""
    return repo.run("crawl", "demo", "-a", f"base_url={site.url}", "--log-format", "json", *args)


def unreachable_proxy(unreachable_origin: str) -> tuple[str, str]:
    """(PROXY, as shown) for a proxy whose connections are refused."""
    port = unreachable_origin.rsplit(":", 1)[1]
    return f"http://alice:{PASSWORD}@127.0.0.1:{port}", f"http://alice:***@127.0.0.1:{port}"


# -- crawl ------------------------------------------------------------------------------------


def test_a_crawl_through_a_proxy_refusing_the_password_stops_with_one_line(
    repo: Project, small_site: DemoSite, proxy: ForwardProxy
) -> None:
    """A wrong proxy password stops the crawl at its first request (no retries, no page
    handed to a callback): exit 1, finish_reason proxy_failed, a last line naming the proxy
    and the fix, the password in no output."""
    result = crawl_demo(repo, small_site, "-s", f"PROXY={proxy.with_password(WRONG)}")

    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"scrapekit: crawl failed: proxy {proxy.shown} (PROXY) {AUTH_FIX}"
    )
    assert proxy.refused == 1  # the login's first request: nothing is tried after it
    assert small_site.stats.requests == 0
    record = crawl_finished(result.stderr)
    assert record["finish_reason"] == "proxy_failed"
    assert record["session"]["proxy"] == proxy.shown
    assert WRONG not in result.stderr + result.stdout


def test_a_crawl_through_an_unreachable_proxy_stops_with_one_line(
    repo: Project, small_site: DemoSite, unreachable_origin: str
) -> None:
    """A proxy that refuses connections stops the crawl, retries on or not: exit 1, one
    line asking whether the proxy runs, the password hidden."""
    proxy_url, shown = unreachable_proxy(unreachable_origin)

    result = crawl_demo(repo, small_site, "-s", f"PROXY={proxy_url}")

    assert result.returncode == 1, result.stderr
    assert small_site.stats.requests == 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"scrapekit: crawl failed: proxy {shown} (PROXY) cannot be reached")
    assert last.endswith(REACH_FIX)
    assert crawl_finished(result.stderr)["finish_reason"] == "proxy_failed"
    assert PASSWORD not in result.stderr + result.stdout


def test_credentials_revoked_mid_crawl_keep_the_items_scraped(
    repo: Project, small_site: DemoSite, tmp_path: Path
) -> None:
    """A proxy that starts answering 407 mid-crawl ends it early, gracefully: every product
    page that came through before has its item in the feed."""
    feed = tmp_path / "items.jsonl"
    # Six requests come first (the login's form, POST, redirect and check, robots.txt, the
    # first listing); of the next two (page 2 and three products arrive together) one at
    # least is a product; then the proxy refuses everything, page 2's products included.
    with running(ForwardProxy(refuse_after=8)) as proxy:
        result = crawl_demo(repo, small_site, "-s", f"PROXY={proxy.url}", "-o", str(feed))
        products = [url for _, url in proxy.passed if "/catalogue/product/" in url]

    assert result.returncode == 1, result.stderr
    assert crawl_finished(result.stderr)["finish_reason"] == "proxy_failed"
    assert "(PROXY) refused the credentials" in result.stderr.strip().splitlines()[-1]
    items = [json.loads(line) for line in feed.read_text().splitlines()]
    assert 0 < len(products) < 6
    assert len(items) == len(products)
    assert proxy.refused >= 1


# -- fetch, shell, parse ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_fetch_through_a_proxy_refusing_the_password_is_one_line(
    repo: Project, small_site: DemoSite, proxy: ForwardProxy, scheme: str
) -> None:
    """`scrapekit fetch` through a proxy answering 407 (to the request, or to the CONNECT of
    an https:// URL) prints one line naming the proxy and the fix, exit 1."""
    url = f"{small_site.url}/catalogue/page-1.html".replace("http:", f"{scheme}:", 1)

    result = repo.run("fetch", url, "-s", f"PROXY={proxy.with_password(WRONG)}")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"scrapekit: fetch failed: proxy {proxy.shown} (PROXY) {AUTH_FIX}"
    ]
    assert proxy.refused == 1
    assert small_site.stats.requests == 0


def test_fetch_through_an_unreachable_proxy_is_one_line(
    repo: Project, small_site: DemoSite, unreachable_origin: str
) -> None:
    """`scrapekit fetch` through a proxy that refuses connections: one line, exit 1."""
    proxy_url, shown = unreachable_proxy(unreachable_origin)

    result = repo.run("fetch", f"{small_site.url}/", "-s", f"PROXY={proxy_url}")

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"scrapekit: fetch failed: proxy {shown} (PROXY) cannot be reached")
    assert lines[0].endswith(REACH_FIX)
    assert PASSWORD not in result.stderr


def test_fetch_through_the_proxy_with_the_right_password_works(
    repo: Project, small_site: DemoSite, proxy: ForwardProxy
) -> None:
    """With the right password `scrapekit fetch` prints the page, which came via the proxy."""
    url = f"{small_site.url}/catalogue/page-1.html"

    result = repo.run("fetch", url, "-s", f"PROXY={proxy.url}")

    assert result.returncode == 0, result.stderr
    assert "article" in result.stdout
    assert proxy.passed == [("GET", url)]


@pytest.mark.parametrize("command", ["shell", "parse"])
def test_shell_and_parse_through_a_refusing_proxy_are_one_line(
    repo: Project, small_site: DemoSite, proxy: ForwardProxy, command: str
) -> None:
    """`shell URL -c` and `parse URL` through a proxy answering 407: one line, exit 1."""
    extra = ["-c", "response.status"] if command == "shell" else ["--spider", "demo"]
    url = f"{small_site.url}/catalogue/page-1.html"

    result = repo.run(command, url, *extra, "-s", f"PROXY={proxy.with_password(WRONG)}")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"scrapekit: {command} failed: proxy {proxy.shown} (PROXY) {AUTH_FIX}"
    ]
