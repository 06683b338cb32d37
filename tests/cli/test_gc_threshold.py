"""The crawl command runs the cyclic garbage collector less often (GC_THRESHOLD allocations
between collections of the youngest generation); `scrapekit.crawl()` in a caller's process
leaves the collector as the caller set it."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import crawl
from scrapekit.cli.crawl import GC_THRESHOLD
from tests.conftest import child_env

SPIDER = """
import gc

from scrapekit import Request, Spider


class Collector(Spider):
    name = "collector"
    url = ""

    async def start(self):
        yield Request(self.url, callback=self.parse)

    def parse(self, response):
        yield {"threshold": list(gc.get_threshold())}
"""


@pytest.fixture
def page(httpserver: HTTPServer) -> str:
    httpserver.expect_request("/").respond_with_data("<p>hi</p>", content_type="text/html")
    return httpserver.url_for("/")


@pytest.fixture
def spider_file(tmp_path: Path) -> Path:
    path = tmp_path / "collector.py"
    path.write_text(textwrap.dedent(SPIDER))
    return path


@pytest.fixture
def default_threshold() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


@pytest.mark.subprocess
def test_the_crawl_command_raises_the_youngest_threshold(
    tmp_path: Path, page: str, spider_file: Path
) -> None:
    out = tmp_path / "items.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "scrapekit", "runspider", str(spider_file), "-a", f"url={page}",
         "-O", str(out), "-s", f"STATE_DIR={tmp_path / 'state'}", "-s", "ROBOTSTXT_OBEY=false"],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (item,) = [json.loads(line) for line in out.read_text().splitlines()]
    young, older, oldest = item["threshold"]
    assert young == GC_THRESHOLD > 700
    assert (older, oldest) == (10, 10)  # the older generations keep Python's defaults


def test_the_library_call_leaves_the_callers_collector_alone(
    tmp_path: Path, page: str, default_threshold: tuple[int, int, int]
) -> None:
    from scrapekit import Request, Spider

    seen: list[tuple[int, int, int]] = []

    class Collector(Spider):
        name = "collector"

        async def start(self):  # type: ignore[no-untyped-def]
            yield Request(page, callback=self.parse)

        def parse(self, response):  # type: ignore[no-untyped-def]
            seen.append(gc.get_threshold())
            yield {}

    stats = crawl(
        Collector,
        {"STATE_DIR": str(tmp_path / "state"), "ROBOTSTXT_OBEY": False, "FRONTIER": "memory"},
    )
    assert stats["pages"] == 1
    assert seen == [default_threshold]
    assert gc.get_threshold() == default_threshold
