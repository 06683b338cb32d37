"""Resumes a cron user runs into: start() items killed mid-way, --fresh with RECRAWL_AFTER.

Real child processes, real state files, a loopback server. The kill is deterministic: the
spider's start() sends itself SIGKILL at a chosen output, once (a flag file says it did).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Project

pytestmark = pytest.mark.subprocess

SPIDERS = """
import json
import os
import signal
from pathlib import Path

import scrapekit
from scrapekit import Request, Spider


class Ids:
    '''Logs each item with its current_item_id(), as a pipeline writing elsewhere sees them.'''

    def process_item(self, item, spider):
        with open("ids.jsonl", "a") as log:
            log.write(json.dumps([scrapekit.current_item_id(), item]) + "\\n")
        return item


class StartItems(Spider):
    '''start(): two items, a request, items n=2.. (killed once before n=kill), a request.'''

    name = "startitems"
    kill = "4"
    custom_settings = {
        "CONCURRENCY": 1,
        "RETRY_ENABLED": False,
        "PIPELINES": {"spiders.startitems.Ids": 100},
    }

    async def start(self):
        yield {"n": 0}
        yield {"n": 1}
        yield Request(f"{self.base}/p0")
        for n in range(2, 7):
            if n == int(self.kill) and not Path("killed").exists():
                Path("killed").touch()
                os.kill(os.getpid(), signal.SIGKILL)
            yield {"n": n}
        yield Request(f"{self.base}/p1")

    def parse(self, response):
        yield {"url": response.url}
"""


@pytest.fixture
def start_items(project: Project, httpserver: HTTPServer) -> Project:
    project.add_spider("startitems", SPIDERS)
    for i in range(2):
        httpserver.expect_request(f"/p{i}").respond_with_data("ok")
    return project


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_start_items_after_a_kill_are_delivered_once_with_stable_ids(
    start_items: Project, httpserver: HTTPServer
) -> None:
    """Items start() yielded before a kill are not read again on resume, and keep their ids."""
    base = httpserver.url_for("").rstrip("/")
    out = start_items.root / "out.jsonl"
    args = ["crawl", "startitems", "-a", f"base={base}", "-o", str(out)]
    killed = start_items.run(*args)
    assert killed.returncode == -9, killed.stderr
    resumed = start_items.run(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed run 2" in resumed.stderr.splitlines()[0]

    expected = [json.dumps({"n": n}) for n in range(7)] + [
        json.dumps({"url": f"{base}/p{i}"}) for i in range(2)
    ]
    assert Counter(lines(out)) == Counter(expected)  # none missing, none twice

    # At least once for a custom pipeline, but an id always names the same item.
    items_by_id: defaultdict[str, set[str]] = defaultdict(set)
    for line in lines(start_items.root / "ids.jsonl"):
        item_id, item = json.loads(line)
        items_by_id[item_id].add(json.dumps(item, sort_keys=True))
    assert all(len(items) == 1 for items in items_by_id.values()), dict(items_by_id)
    start_ids = {i: next(iter(v)) for i, v in items_by_id.items() if i.startswith("start:")}
    assert start_ids["start:0"] == json.dumps({"n": 0})
    assert start_ids["start:3"] == json.dumps({"n": 2})  # the request was output 2
    assert len(start_ids) == 7


@pytest.mark.parametrize("name", ["frontier.db", "run.lock"])
def test_a_state_file_that_is_a_folder_is_one_line_saying_so(
    start_items: Project, httpserver: HTTPServer, name: str
) -> None:
    """The line names the path that is a folder, not its (writable) parent."""
    path = start_items.root / ".scrapekit" / "startitems" / name
    path.parent.mkdir(parents=True, mode=0o700)
    (start_items.root / ".scrapekit").chmod(0o700)
    path.mkdir()
    result = start_items.run("crawl", "startitems", "-a", "base=http://127.0.0.1:9")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"{path} is a folder, not a file" in line


@pytest.mark.parametrize("command", ["runs", "status"])
def test_runs_and_status_on_a_frontier_that_is_a_folder(start_items: Project, command: str) -> None:
    """Not SQLite's "disk I/O error": the line says what the path is."""
    path = start_items.root / ".scrapekit" / "startitems" / "frontier.db"
    path.mkdir(parents=True)
    result = start_items.run(command, "startitems")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"frontier {path} is a folder, not a file" in line
