"""`-O` under failure, from the command line: yesterday's file survives a run that got nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import Response, Spider, crawl
from tests.conftest import Project

SPIDER = """
from scrapekit import Request, Spider


class Items(Spider):
    name = "items"

    async def start(self):
        yield Request(self.base + "/list")

    def parse(self, response):
        for n in range(3):
            yield {"n": n}
"""

YESTERDAY = "".join(json.dumps({"n": f"old {n}"}) + "\n" for n in range(500))


def run(project: Project, base: str, out: str) -> tuple[int, str]:
    result = project.run(
        "crawl", "items", "-a", f"base={base}", "-O", out,
        "-s", "RETRY_TIMES=0", "--log-format", "json",
    )  # fmt: skip
    return result.returncode, result.stderr


@pytest.mark.subprocess
def test_unreachable_site_keeps_yesterdays_file(
    project: Project, tmp_path: Path, unreachable_origin: str
) -> None:
    """A run that fails before its first item leaves the old -O file as it was (exit 1)."""
    project.add_spider("items", SPIDER)
    out = tmp_path / "out" / "items.jsonl"
    out.parent.mkdir()
    out.write_text(YESTERDAY, encoding="utf-8")
    code, stderr = run(project, unreachable_origin, str(out))
    assert code == 1, stderr
    assert out.read_text(encoding="utf-8") == YESTERDAY
    assert [p.name for p in out.parent.iterdir()] == ["items.jsonl"]  # no temp file left
    assert any(
        json.loads(line)["event"] == "feed kept" for line in stderr.splitlines() if line[:1] == "{"
    )


@pytest.mark.subprocess
def test_symlinked_output_follows_the_name_given(
    project: Project, tmp_path: Path, httpserver: HTTPServer
) -> None:
    """`-O link.jsonl` pointing at real.csv writes JSON lines into real.csv; the link stays."""
    project.add_spider("items", SPIDER)
    httpserver.expect_request("/list").respond_with_data("<p>x</p>", content_type="text/html")
    real = tmp_path / "real.csv"
    real.write_text("n\r\nold\r\n", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    code, stderr = run(project, httpserver.url_for("").rstrip("/"), str(link))
    assert code == 0, stderr
    assert link.is_symlink()
    assert [json.loads(line) for line in real.read_text().splitlines()] == [
        {"n": 0},
        {"n": 1},
        {"n": 2},
    ]


def test_items_counted_are_the_items_written(httpserver: HTTPServer, tmp_path: Path) -> None:
    """When the output folder vanishes mid-crawl, the feed fails and no item counts as
    written (not: 3 items reported, no file, exit 0)."""
    out = tmp_path / "out"
    out.mkdir()
    httpserver.expect_request("/list").respond_with_data("<p>x</p>", content_type="text/html")

    class Vanishing(Spider):
        name = "vanishing"
        start_urls = [httpserver.url_for("/list")]

        def parse(self, response: Response) -> Iterator[dict[str, Any]]:
            for n in range(3):
                yield {"n": n}
            shutil.rmtree(out)  # a clean-up job removes the folder under the crawl

    stats = crawl(
        Vanishing,
        {
            "FEEDS": {str(out / "items.jsonl"): {"overwrite": True}},
            "LOG_LEVEL": "CRITICAL",
            "STATE_DIR": str(tmp_path / "state"),
        },
    )
    assert not (out / "items.jsonl").exists()
    assert (stats["finish_reason"], stats["items"]) == ("feed_error", 0)
