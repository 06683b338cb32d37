"""Hostile pages full of huge links: memory stays bounded and the links are dropped and counted.

The issue: 400 off-site links of 63 KB on 40 pages took a crawl to 1.16 GB, because every
URL-keyed cache kept every URL. The crawl runs in a child process so its peak RSS is its own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WsgiRequest
from werkzeug import Response as WsgiResponse

from tests.conftest import Project, child_env

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

PAGES = 40
HUGE_LINKS = 10
HUGE_LINK_BYTES = 63_000

SPIDER = """
from scrapekit import Spider

class Links(Spider):
    name = "links"
    allowed_domains = ["localhost", "127.0.0.1"]

    def __init__(self, url, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [url]

    def parse(self, response):
        yield {"url": response.url}
        yield from response.follow_all(css="a")
"""


def _page(prefix: str, number: int) -> WsgiResponse:
    # Distinct huge links on every page (a cache that keeps them cannot get hits from them);
    # the "plain" twin of the site has none, to measure the crawl's own footprint.
    huge = "".join(
        f'<a href="http://elsewhere.example/{number}/{link}/{"x" * HUGE_LINK_BYTES}">far</a>\n'
        for link in range(HUGE_LINKS if prefix == "page" else 0)
    )
    near = "".join(
        f'<a href="/{prefix}/{target % PAGES}">page {target % PAGES}</a>\n'
        for target in (number + 1, number * 7 + 3, number + 13)
    )
    body = f"<html><body><h1>Page {number}</h1>\n{near}{huge}</body></html>"
    return WsgiResponse(body, content_type="text/html; charset=utf-8")


def _handler(request: WsgiRequest) -> WsgiResponse:
    match = re.fullmatch(r"/(page|plain)/(\d+)", request.path)
    if match is None or int(match.group(2)) >= PAGES:
        return WsgiResponse("not found", status=404)
    return _page(match.group(1), int(match.group(2)))


def _crawl(project: Project, url: str, *settings: str) -> tuple[int, int, str]:
    """Run the crawl as a child; return its exit status, peak RSS in MiB and stderr."""
    args = [sys.executable, "-m", "scrapekit", "crawl", "links", "-a", f"url={url}"]
    for setting in settings:
        args += ["-s", setting]
    err = project.root / "stderr.log"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            args, cwd=project.root, env=child_env(), stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            _, status, rusage = os.wait4(proc.pid, 0)
        finally:
            proc.returncode = 0  # reaped by wait4 above: keep Popen from waiting again
    return os.waitstatus_to_exitcode(status), rusage.ru_maxrss // 1024, err.read_text()


def _run(project: Project, url: str, stats_file: Path) -> tuple[int, dict[str, Any]]:
    """Crawl from `url`; return the peak RSS in MiB and the stats."""
    status, peak_mib, stderr = _crawl(
        project,
        url,
        f"STATS_FILE={stats_file}",
        "LOG_LEVEL=WARNING",
        "CONCURRENCY=4",
    )
    assert status == 0, stderr
    stats: dict[str, Any] = json.loads(stats_file.read_text())
    assert stats["pages"] == PAGES
    return peak_mib, stats


def test_huge_offsite_links_are_dropped_and_memory_stays_bounded(
    project: Project, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """40 pages x 10 distinct 63 KB off-site links: every page is crawled, the 400 links are
    dropped as "url too long", and peak RSS stays near that of the same site without them.

    Before the fix the huge links cost ~31 MiB over the plain crawl (80 MiB against 49 MiB):
    the URL caches kept every one of them.
    """
    httpserver.expect_request(re.compile(r"/(page|plain)/\d+")).respond_with_handler(_handler)
    project.add_spider("links", SPIDER)
    plain_mib, _ = _run(project, httpserver.url_for("/plain/0"), tmp_path / "plain.json")
    huge_mib, stats = _run(project, httpserver.url_for("/page/0"), tmp_path / "huge.json")
    assert huge_mib - plain_mib < 6, f"peak RSS {huge_mib} MiB against {plain_mib} MiB"
    assert stats["dropped"]["requests"]["url too long"] == PAGES * HUGE_LINKS
    assert "offsite" not in stats["dropped"]["requests"]  # dropped before any other check
