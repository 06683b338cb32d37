"""Closing a crawl is bounded: CLOSE_TIMEOUT, and a second signal while closing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Project, child_env

pytestmark = pytest.mark.subprocess

SPIDER = """
from scrapekit import Request, Spider


class Stuck(Spider):
    name = "stuck"

    async def start(self):
        yield Request(self.base + "/page")

    def parse(self, response):
        yield {"n": 1}
"""

PIPELINE = """
import asyncio
import pathlib


class HangOnClose:
    '''A pipeline whose close() never returns on its own (say, a remote sink that hangs).'''

    def __init__(self):
        self.marker = pathlib.Path("closing.marker")

    def process_item(self, item, spider):
        return item

    async def close(self, spider):
        self.marker.write_text("closing")
        await asyncio.sleep(3600)
"""


@pytest.fixture
def stuck(project: Project, httpserver: HTTPServer) -> Project:
    """A project whose only pipeline hangs in close(), crawling one page."""
    project.add_spider("stuck", SPIDER)
    (project.root / "hangs.py").write_text(PIPELINE)
    project.write_settings('SPIDER_MODULES = ["spiders"]\n[PIPELINES]\n"hangs.HangOnClose" = 100\n')
    httpserver.expect_request("/page").respond_with_data("<p>x</p>", content_type="text/html")
    return project


@pytest.fixture(autouse=True)
def _no_stray_child() -> Iterator[None]:
    """A child that outlives a failing test is killed, so none keeps running."""
    yield
    for child in CHILDREN:
        if child.poll() is None:
            child.kill()
            child.communicate()
    CHILDREN.clear()


CHILDREN: list[subprocess.Popen[str]] = []


def start(project: Project, server: HTTPServer, *args: str) -> subprocess.Popen[str]:
    """`scrapekit crawl stuck` as a child process, JSON logs, STATS_FILE in the project."""
    child = subprocess.Popen(
        [sys.executable, "-m", "scrapekit", "crawl", "stuck",
         "-a", f"base={server.url_for('').rstrip('/')}", "--log-format", "json",
         "-s", f"STATS_FILE={project.root / 'stats.json'}", *args],
        cwd=project.root, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    CHILDREN.append(child)
    return child


def events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_close_timeout_abandons_a_hanging_close(stuck: Project, httpserver: HTTPServer) -> None:
    """A close that overruns CLOSE_TIMEOUT is abandoned: exit 1, one log line, stats written."""
    began = time.monotonic()
    child = start(stuck, httpserver, "-s", "CLOSE_TIMEOUT=0.5")
    _, err = child.communicate(timeout=30)
    assert time.monotonic() - began < 20
    assert child.returncode == 1, err
    logged = events(err)
    assert [e["reason"] for e in logged if e["event"] == "close abandoned"] == ["timeout"]
    assert logged[-1]["event"] == "crawl finished"
    assert logged[-1]["finish_reason"] == "close_timeout"
    stats = json.loads((stuck.root / "stats.json").read_text())
    assert stats["finish_reason"] == "close_timeout"


def test_second_signal_while_closing_abandons_it(stuck: Project, httpserver: HTTPServer) -> None:
    """With no time limit, a signal while closing is noted and the next one abandons: exit 3."""
    child = start(stuck, httpserver, "-s", "CLOSE_TIMEOUT=0")
    marker = Path(stuck.root / "closing.marker")
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert child.poll() is None, "the crawl ended before closing its pipeline"
        assert time.monotonic() < deadline, "close never started"
        time.sleep(0.02)
    child.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert child.poll() is None  # the first signal only asks to wait
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=10)
    assert child.returncode == 3, err
    logged = [e["event"] for e in events(err)]
    assert "closing, please wait" in logged
    assert "close abandoned" in logged
    assert logged[-1] == "crawl finished"


TWO_HANGING = """
import asyncio
import pathlib


class HangOnClose:
    '''A close() that never returns on its own, and waits again when cancelled once.'''

    marker = "first.marker"

    def process_item(self, item, spider):
        return item

    async def close(self, spider):
        pathlib.Path(self.marker).write_text("closing")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # a stubborn sink: one cancellation is not enough


class AlsoHangs(HangOnClose):
    marker = "second.marker"
"""


@pytest.fixture
def stuck_twice(project: Project, httpserver: HTTPServer) -> Project:
    """A project with two pipelines that hang in close() (closed in reverse order)."""
    project.add_spider("stuck", SPIDER)
    (project.root / "hangs.py").write_text(TWO_HANGING)
    project.write_settings(
        'SPIDER_MODULES = ["spiders"]\n[PIPELINES]\n'
        '"hangs.AlsoHangs" = 100\n"hangs.HangOnClose" = 200\n'
    )
    httpserver.expect_request("/page").respond_with_data("<p>x</p>", content_type="text/html")
    return project


def wait_for(child: subprocess.Popen[str], marker: Path) -> None:
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert child.poll() is None, "the crawl ended before that close"
        assert time.monotonic() < deadline, f"{marker.name} never written"
        time.sleep(0.02)


def test_close_timeout_is_a_deadline_for_every_closer(
    stuck_twice: Project, httpserver: HTTPServer
) -> None:
    """CLOSE_TIMEOUT bounds the whole close: closers that hang after the abandoned one (and
    shrug off a cancellation) are cancelled too, and the process exits 1 within bound."""
    began = time.monotonic()
    child = start(stuck_twice, httpserver, "-s", "CLOSE_TIMEOUT=0.5")
    _, err = child.communicate(timeout=20)
    assert time.monotonic() - began < 15
    assert child.returncode == 1, err
    assert (stuck_twice.root / "first.marker").exists()
    assert (stuck_twice.root / "second.marker").exists()
    logged = events(err)
    assert [e["reason"] for e in logged if e["event"] == "close abandoned"] == ["timeout"]
    assert logged[-1]["event"] == "crawl finished"
    assert logged[-1]["finish_reason"] == "close_timeout"


def test_every_signal_while_closing_cancels_the_next_hanging_closer(
    stuck_twice: Project, httpserver: HTTPServer
) -> None:
    """After the close is abandoned, each further signal cancels whatever closer now hangs:
    no kill -9 needed, exit 3."""
    child = start(stuck_twice, httpserver, "-s", "CLOSE_TIMEOUT=0")
    wait_for(child, stuck_twice.root / "first.marker")
    child.send_signal(signal.SIGTERM)  # noted: please wait
    time.sleep(0.2)
    child.send_signal(signal.SIGTERM)  # abandons the first closer (it waits again)
    time.sleep(0.2)
    child.send_signal(signal.SIGTERM)  # cancels it again: the second closer starts
    wait_for(child, stuck_twice.root / "second.marker")
    time.sleep(0.2)
    assert child.poll() is None  # the second closer hangs until told otherwise
    for _ in range(2):
        child.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    _, err = child.communicate(timeout=10)
    assert child.returncode == 3, err
    logged = events(err)
    assert [e["event"] for e in logged].count("close abandoned") == 1
    assert logged[-1]["event"] == "crawl finished"
    assert logged[-1]["finish_reason"] == "killed"
