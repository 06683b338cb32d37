"""`scrapekit crawl` with the HTTP cache (--no-cache, a corrupt file) and through a PROXY.

The proxy is a small threaded forward proxy started by the test: it takes absolute-form
GET/POST requests for http:// targets, requires Proxy-Authorization, passes the request on
and counts what went through it, so the site's counters and the proxy's can be compared.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from scrapekit.demo import DemoSite
from tests.conftest import REPO, Project

pytestmark = pytest.mark.subprocess

PASSWORD = "pr0xy-Pa55word"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te",
              "trailer", "transfer-encoding", "upgrade"}  # fmt: skip


class ForwardProxy(ThreadingHTTPServer):
    """A forward proxy for http:// targets that requires user `alice` and PASSWORD."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.passed: list[tuple[str, str]] = []
        self.refused = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://alice:{PASSWORD}@127.0.0.1:{self.server_port}"

    @property
    def shown(self) -> str:
        """The proxy URL as scrapekit shows it."""
        return f"http://alice:***@127.0.0.1:{self.server_port}"


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardProxy

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Proxy-Authorization") != expected:
            with self.server.lock:
                self.server.refused += 1
            self._reply(407, [("Proxy-Authenticate", 'Basic realm="test"')], b"")
            return
        target = urlsplit(self.path)  # absolute form: http://host:port/path?query
        assert target.scheme == "http", self.path
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.netloc, timeout=10)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path or "/", body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
            status = answer.status
        finally:
            upstream.close()
        with self.server.lock:
            self.server.passed.append((self.command, self.path))
        self._reply(status, [(k, v) for k, v in kept if k.lower() != "content-length"], data)

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    server = ForwardProxy()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def site() -> Iterator[DemoSite]:
    with DemoSite(products=6, per_page=3) as demo:
        yield demo


@pytest.fixture
def repo(tmp_path: Path) -> Project:
    """The repository's own project (spiders/demo.py: logs in), state under tmp_path."""
    project = Project.__new__(Project)
    project.root = REPO
    project.state = tmp_path / "state"
    return project


def crawl_demo(repo: Project, site: DemoSite, *args: str) -> Any:
    """`scrapekit crawl demo` against `site` with JSON logs at DEBUG."""
    return repo.run(
        "crawl", "demo", "-a", f"base_url={site.url}", "--log-format", "json",
        "--log-level", "DEBUG", *args,
    )  # fmt: skip


def finished(stderr: str) -> dict[str, Any]:
    """The `crawl finished` record of a run's JSON log."""
    for line in stderr.splitlines():
        if line.startswith("{") and json.loads(line).get("event") == "crawl finished":
            record: dict[str, Any] = json.loads(line)
            return record
    raise AssertionError(f"no crawl finished line in:\n{stderr}")


PAGES = 2 + 6  # two listing pages of three products, then each product
ROBOTS = 1  # the project's settings.toml obeys robots.txt, and it is cached too


def test_no_cache_skips_the_cache_for_one_run(repo: Project, site: DemoSite) -> None:
    """--no-cache fetches every page although the cache holds them, and stores nothing;
    the next run without it is replayed again."""
    first = crawl_demo(repo, site, "-s", "HTTPCACHE_ENABLED=true")
    assert first.returncode == 0, first.stderr
    assert finished(first.stderr)["httpcache"]["stores"] == PAGES + ROBOTS
    site.reset_stats()

    uncached = crawl_demo(repo, site, "-s", "HTTPCACHE_ENABLED=true", "--no-cache")
    assert uncached.returncode == 0, uncached.stderr
    assert finished(uncached.stderr)["httpcache"] is None
    assert site.stats.by_path["/catalogue/product/"] == 6
    site.reset_stats()

    cached = crawl_demo(repo, site, "-s", "HTTPCACHE_ENABLED=true")
    assert cached.returncode == 0, cached.stderr
    assert finished(cached.stderr)["httpcache"]["hits"] == PAGES + ROBOTS
    assert "/catalogue/product/" not in site.stats.by_path
    responses = [
        json.loads(line) for line in cached.stderr.splitlines() if '"event": "response"' in line
    ]
    assert len(responses) == PAGES
    assert all(r.get("cached") is True for r in responses)


def test_a_corrupt_cache_is_one_line_and_exit_2(repo: Project, site: DemoSite) -> None:
    """A cache file that is not SQLite stops the crawl with exit 2 and one line naming the
    file and the fix; nothing is fetched."""
    path = repo.state / "demo" / "httpcache.db"  # type: ignore[operator]
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(b"this is not a database" * 100)

    result = crawl_demo(repo, site, "-s", "HTTPCACHE_ENABLED=true")

    assert result.returncode == 2
    assert site.stats.requests == 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("scrapekit: error: HTTP cache ")
    assert str(path) in last
    assert "--no-cache" in last


def test_the_login_and_every_page_go_through_the_proxy(
    repo: Project, site: DemoSite, proxy: ForwardProxy
) -> None:
    """With PROXY, the login (form and POST) and every page go through the proxy with its
    credentials, and the password is in no log line, only the hidden form of the URL."""
    result = crawl_demo(repo, site, "-s", f"PROXY={proxy.url}")

    assert result.returncode == 0, result.stderr
    assert proxy.refused == 0
    assert len(proxy.passed) == site.stats.requests  # nothing reached the site directly
    assert ("POST", f"{site.url}/login") in proxy.passed
    assert site.stats.logins == 1
    assert sum(1 for _, url in proxy.passed if "/catalogue/product/" in url) == 6
    assert PASSWORD not in result.stderr + result.stdout
    assert finished(result.stderr)["session"]["proxy"] == proxy.shown


def test_a_bad_proxy_url_is_one_line_and_exit_2(repo: Project, site: DemoSite) -> None:
    """A PROXY that is not an http(s) URL stops the crawl at start: exit 2, one line naming
    PROXY, the password hidden."""
    result = crawl_demo(repo, site, "-s", f"PROXY=socks5://alice:{PASSWORD}@127.0.0.1:1080")

    assert result.returncode == 2
    assert site.stats.requests == 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("scrapekit: error: PROXY (-s): expected an http:// or https://")
    assert PASSWORD not in result.stderr


def test_a_proxy_that_refuses_connections_is_named_in_the_error(
    repo: Project, site: DemoSite, unreachable_origin: str
) -> None:
    """When the proxy refuses connections, the failure names the proxy (not the password)
    and PROXY, and the run fails."""
    port = unreachable_origin.rsplit(":", 1)[1]
    proxy_url = f"http://alice:{PASSWORD}@127.0.0.1:{port}"

    result = crawl_demo(repo, site, "-s", f"PROXY={proxy_url}", "-s", "RETRY_ENABLED=false")

    assert result.returncode == 1
    assert site.stats.requests == 0
    assert PASSWORD not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"cannot connect to proxy http://alice:***@127.0.0.1:{port} (PROXY)" in last
