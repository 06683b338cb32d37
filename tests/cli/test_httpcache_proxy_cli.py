"""`scrapekit crawl` with the HTTP cache (--no-cache, a corrupt file) and through a PROXY.

The proxy is tests/proxyserver.py's forward proxy, started by the test; a proxy that refuses
is tested in test_proxy_refused_cli.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scrapekit.demo import DemoSite
from tests.conftest import Project, crawl_finished
from tests.proxyserver import PASSWORD, ForwardProxy

pytestmark = pytest.mark.subprocess


def crawl_demo(repo: Project, site: DemoSite, *args: str) -> Any:
    """`scrapekit crawl demo` against `site` with JSON logs at DEBUG."""
    return repo.run(
        "crawl", "demo", "-a", f"base_url={site.url}", "--log-format", "json",
        "--log-level", "DEBUG", *args,
    )  # fmt: skip


PAGES = 2 + 6  # two listing pages of three products, then each product
ROBOTS = 1  # the project's settings.toml obeys robots.txt, and it is cached too


def test_no_cache_skips_the_cache_for_one_run(repo: Project, small_site: DemoSite) -> None:
    """--no-cache fetches every page although the cache holds them, and stores nothing;
    the next run without it is replayed again."""
    first = crawl_demo(repo, small_site, "-s", "HTTPCACHE_ENABLED=true")
    assert first.returncode == 0, first.stderr
    assert crawl_finished(first.stderr)["httpcache"]["stores"] == PAGES + ROBOTS
    small_site.reset_stats()

    uncached = crawl_demo(repo, small_site, "-s", "HTTPCACHE_ENABLED=true", "--no-cache")
    assert uncached.returncode == 0, uncached.stderr
    assert crawl_finished(uncached.stderr)["httpcache"] is None
    assert small_site.stats.by_path["/catalogue/product/"] == 6
    small_site.reset_stats()

    cached = crawl_demo(repo, small_site, "-s", "HTTPCACHE_ENABLED=true")
    assert cached.returncode == 0, cached.stderr
    assert crawl_finished(cached.stderr)["httpcache"]["hits"] == PAGES + ROBOTS
    assert "/catalogue/product/" not in small_site.stats.by_path
    responses = [
        json.loads(line) for line in cached.stderr.splitlines() if '"event": "response"' in line
    ]
    assert len(responses) == PAGES
    assert all(r.get("cached") is True for r in responses)


def test_a_corrupt_cache_is_one_line_and_exit_2(repo: Project, small_site: DemoSite) -> None:
    """A cache file that is not SQLite stops the crawl with exit 2 and one line naming the
    file and the fix; nothing is fetched."""
    path = repo.state / "demo" / "httpcache.db"  # type: ignore[operator]
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(b"this is not a database" * 100)

    result = crawl_demo(repo, small_site, "-s", "HTTPCACHE_ENABLED=true")

    assert result.returncode == 2
    assert small_site.stats.requests == 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("scrapekit: error: HTTP cache ")
    assert str(path) in last
    assert "--no-cache" in last


def test_the_login_and_every_page_go_through_the_proxy(
    repo: Project, small_site: DemoSite, proxy: ForwardProxy
) -> None:
    """With PROXY, the login (form and POST) and every page go through the proxy with its
    credentials, and the password is in no log line, only the hidden form of the URL."""
    result = crawl_demo(repo, small_site, "-s", f"PROXY={proxy.url}")

    assert result.returncode == 0, result.stderr
    assert proxy.refused == 0
    assert len(proxy.passed) == small_site.stats.requests  # nothing reached the small_site directly
    assert ("POST", f"{small_site.url}/login") in proxy.passed
    assert small_site.stats.logins == 1
    assert sum(1 for _, url in proxy.passed if "/catalogue/product/" in url) == 6
    assert PASSWORD not in result.stderr + result.stdout
    assert crawl_finished(result.stderr)["session"]["proxy"] == proxy.shown


def test_a_bad_proxy_url_is_one_line_and_exit_2(repo: Project, small_site: DemoSite) -> None:
    """A PROXY that is not an http(s) URL stops the crawl at start: exit 2, one line naming
    PROXY, the password hidden."""
    result = crawl_demo(repo, small_site, "-s", f"PROXY=socks5://alice:{PASSWORD}@127.0.0.1:1080")

    assert result.returncode == 2
    assert small_site.stats.requests == 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("scrapekit: error: PROXY (-s): expected an http:// or https://")
    assert PASSWORD not in result.stderr
