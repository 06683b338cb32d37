"""Runs from the command line: the run lock, resume, --fresh, start() not replayed, `runs`,
`status`, corrupt state. Real child processes, real files, a loopback server.

The `gated` spider's start() waits for a file (`-a gate=PATH`) before its first request, so a
test holds a crawl running for as long as it needs, and lets it go by creating the file.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Project, child_env

pytestmark = pytest.mark.subprocess

SPIDERS = """
import asyncio
from pathlib import Path

from scrapekit import Request, Spider


class Gated(Spider):
    '''`n` dont_filter requests to base/p<i>, once the file `gate` exists (if given).'''

    name = "gated"
    n = "3"
    gate = ""
    custom_settings = {"CONCURRENCY": 1, "RETRY_ENABLED": False}

    async def start(self):
        if self.gate:
            while not Path(self.gate).exists():
                await asyncio.sleep(0.02)
        for i in range(int(self.n)):
            yield Request(f"{self.base}/p{i}", dont_filter=True)

    def parse(self, response):
        yield {"url": response.url}
"""


@pytest.fixture
def gated(project: Project, httpserver: HTTPServer) -> Project:
    project.add_spider("gated", SPIDERS)
    for i in range(5):
        httpserver.expect_request(f"/p{i}").respond_with_data("ok")
    return project


def crawl_args(httpserver: HTTPServer, *extra: str) -> list[str]:
    return ["crawl", "gated", "-a", f"base={httpserver.url_for('').rstrip('/')}", *extra]


def lock_file(project: Project, spider: str = "gated") -> Path:
    return project.root / ".scrapekit" / spider / "run.lock"


def state_file(project: Project, spider: str = "gated") -> Path:
    return project.root / ".scrapekit" / spider / "frontier.db"


def first_event(stderr: str) -> dict[str, Any]:
    """The first log line (JSON, as logged without a terminal)."""
    event: dict[str, Any] = json.loads(stderr.splitlines()[0])
    return event


def fetched(httpserver: HTTPServer) -> Counter[str]:
    return Counter(request.path for request, _ in httpserver.log)


@pytest.fixture
def background(gated: Project) -> Iterator[list[subprocess.Popen[str]]]:
    """Child crawls started with `start(...)`; any still running at the end are killed."""
    children: list[subprocess.Popen[str]] = []
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def start(project: Project, children: list[subprocess.Popen[str]], *args: str) -> Any:
    child = subprocess.Popen(
        [sys.executable, "-m", "scrapekit", *args],
        cwd=project.root,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    children.append(child)
    return child


def wait_for(check: Any, what: str, timeout: float = 20.0) -> None:
    """Poll `check()` until it is true (a generous bound proves nothing hung)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def holds_lock(project: Project, pid: int) -> bool:
    path = lock_file(project)
    try:
        return f'"pid": {pid}' in path.read_text()
    except FileNotFoundError:
        return False


def test_a_second_crawl_exits_75_naming_the_pid_and_wait_waits(
    gated: Project, httpserver: HTTPServer, background: list[Any], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    running = start(gated, background, *crawl_args(httpserver, "-a", f"gate={gate}"))
    assert json.loads(running.stderr.readline())["event"] == "new run 1"  # its state is open
    assert holds_lock(gated, running.pid)

    began = time.monotonic()
    second = gated.run(*crawl_args(httpserver, "-a", f"gate={gate}"))
    assert time.monotonic() - began < 10  # it did not wait for the running crawl
    assert second.returncode == 75, second.stderr
    [line] = second.stderr.splitlines()
    assert f"pid {running.pid}" in line
    assert "already running" in line
    assert "--wait" in line

    # status and runs read the file while the crawl runs, without its lock.
    status = gated.run("status", "gated")
    assert status.returncode == 0, status.stderr
    assert "crawl:     1: running" in status.stdout
    assert f"held by pid {running.pid}" in status.stdout
    runs = gated.run("runs", "gated")
    assert runs.returncode == 0, runs.stderr
    assert " running " in runs.stdout.splitlines()[1]

    waiting = start(gated, background, *crawl_args(httpserver, "-a", f"gate={gate}", "--wait"))
    wait_for(
        lambda: "waiting for the running crawl" in waiting.stderr.readline(),
        "the waiting crawl to say it waits",
    )
    gate.touch()
    assert running.wait(timeout=30) == 0
    assert waiting.wait(timeout=30) == 0
    rest = waiting.stderr.read()
    assert "waiting for the running crawl" not in rest  # said once
    assert "new run 2" in rest  # the first crawl finished: a new crawl


def test_a_lock_left_by_a_killed_crawl_is_taken_over(
    gated: Project, httpserver: HTTPServer, background: list[Any], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    killed = start(gated, background, *crawl_args(httpserver, "-a", f"gate={gate}"))
    assert json.loads(killed.stderr.readline())["event"] == "new run 1"  # its state is open
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert holds_lock(gated, killed.pid)  # the file still names it: only the flock is gone

    status = gated.run("status", "gated")
    assert f"left by pid {killed.pid}" in status.stdout
    assert "unfinished" in status.stdout

    gate.touch()
    again = gated.run(*crawl_args(httpserver, "-a", f"gate={gate}"))
    assert again.returncode == 0, again.stderr
    event = first_event(again.stderr)
    assert event["event"] == "resumed run 2 with 0 pending"
    assert event["state"] == str(state_file(gated))
    runs = gated.run("runs", "gated").stdout.splitlines()
    assert runs[1].split()[:3] == ["1", "1", "new"]
    assert " died " in runs[1]
    assert runs[2].split()[:3] == ["2", "1", "resumed"]
    assert " finished " in runs[2]
    assert lock_file(gated).read_text() == ""  # released: nobody holds it


def test_start_is_not_replayed_on_resume(gated: Project, httpserver: HTTPServer) -> None:
    """dont_filter start requests: each is fetched once over a run stopped early and its resume."""
    first = gated.run(*crawl_args(httpserver, "-a", "n=4", "--max-pages", "1"))
    assert first.returncode == 0, first.stderr
    assert first_event(first.stderr)["event"] == "new run 1"
    last = first.stderr.splitlines()[-1]
    assert last.startswith("scrapekit: stopped early: CLOSESPIDER_PAGECOUNT=1 reached")
    assert last.endswith("run the same command again to continue")

    second = gated.run(*crawl_args(httpserver, "-a", "n=4"))
    assert second.returncode == 0, second.stderr
    assert first_event(second.stderr)["event"].startswith("resumed run 2 with ")
    assert fetched(httpserver) == {f"/p{i}": 1 for i in range(4)}

    third = gated.run(*crawl_args(httpserver, "-a", "n=4"))  # finished: a new crawl
    assert first_event(third.stderr)["event"] == "new run 3"
    assert fetched(httpserver) == {f"/p{i}": 2 for i in range(4)}


def test_fresh_starts_over(gated: Project, httpserver: HTTPServer) -> None:
    gated.run(*crawl_args(httpserver, "-a", "n=4", "--max-pages", "1"))
    fresh = gated.run(*crawl_args(httpserver, "-a", "n=4", "--fresh"))
    assert fresh.returncode == 0, fresh.stderr
    event = first_event(fresh.stderr)
    assert (event["event"], event["crawl"]) == ("new run 2", 2)
    assert fetched(httpserver)["/p0"] == 2  # fetched again: its state was discarded


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--max-duration", "5x", "expected a duration"),
        ("--max-duration", "0", "expected a duration"),
        ("--max-pages", "0", "expected a whole number"),
        ("--max-items", "many", "expected a whole number"),
    ],
)
def test_a_bad_limit_is_one_line(
    gated: Project, httpserver: HTTPServer, flag: str, value: str, words: str
) -> None:
    result = gated.run(*crawl_args(httpserver, flag, value))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert flag in line
    assert words in line
    assert not httpserver.log


@pytest.mark.parametrize("command", ["crawl", "runs", "status"])
def test_a_corrupt_state_file_is_one_line(
    gated: Project, httpserver: HTTPServer, command: str
) -> None:
    path = state_file(gated)
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(b"this is not a database, " * 200)
    path.chmod(0o600)
    args = crawl_args(httpserver) if command == "crawl" else [command, "gated"]
    result = gated.run(*args)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert str(path) in line
    assert "delete it" in line
    assert not httpserver.log


def test_a_foreign_sqlite_file_is_one_line_for_status(gated: Project) -> None:
    path = state_file(gated)
    path.parent.mkdir(parents=True, mode=0o700)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    for command in ("runs", "status"):
        result = gated.run(command, "gated")
        assert result.returncode == 2
        [line] = result.stderr.splitlines()
        assert str(path) in line
        assert "not a scrapekit frontier" in line


def test_corrupt_lock_content_is_ignored(gated: Project, httpserver: HTTPServer) -> None:
    lock = lock_file(gated)
    lock.parent.mkdir(parents=True, mode=0o700)
    lock.write_bytes(b"\x00garbage{")
    lock.chmod(0o600)
    assert gated.run("status", "gated").returncode == 0
    result = gated.run(*crawl_args(httpserver))
    assert result.returncode == 0, result.stderr
    assert lock.read_text() == ""


def test_a_lock_path_that_is_a_folder_is_one_line(gated: Project, httpserver: HTTPServer) -> None:
    lock_file(gated).parent.mkdir(parents=True, mode=0o700)
    lock_file(gated).mkdir()
    result = gated.run(*crawl_args(httpserver))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "run lock" in line
    assert str(lock_file(gated)) in line


def test_status_and_runs_without_state(gated: Project) -> None:
    status = gated.run("status", "gated")
    assert status.returncode == 0
    assert "new, no state yet" in status.stdout
    assert str(state_file(gated)) in status.stdout
    assert "no runs yet" in gated.run("runs", "gated").stdout
    memory = gated.run("status", "gated", env={"SCRAPEKIT_FRONTIER": "memory"})
    assert "no durable state (FRONTIER = memory)" in memory.stdout
    unknown = gated.run("status", "nope")
    assert unknown.returncode == 2
    assert len(unknown.stderr.splitlines()) == 1
    assert "nope" in unknown.stderr


def test_status_and_runs_after_runs(gated: Project, httpserver: HTTPServer) -> None:
    gated.run(*crawl_args(httpserver, "-a", "n=4", "--max-pages", "1"))
    status = gated.run("status", "gated").stdout
    assert "crawl:     1: unfinished" in status
    assert "done:      1 pages" in status
    assert "run lock:  free" in status
    gated.run(*crawl_args(httpserver, "-a", "n=4"))
    status = gated.run("status", "gated").stdout
    assert "crawl:     1: finished" in status
    assert "pending:   0 " in status
    assert "done:      4 pages" in status
    lines = gated.run("runs", "gated").stdout.splitlines()
    assert lines[0].split() == [
        "RUN", "CRAWL", "KIND", "STARTED", "DURATION", "ENDED", "AS", "PAGES", "ITEMS", "ERRORS",
        "EXIT",
    ]  # fmt: skip
    one, two = (line.split() for line in lines[1:3])
    assert one[:3] == ["1", "1", "new"]
    assert one[-5:] == ["closespider_pagecount", "1", "1", "0", "0"]
    assert two[:3] == ["2", "1", "resumed"]
    assert two[-5:] == ["finished", "3", "3", "0", "0"]
    assert lines[3] == f"2 runs in {state_file(gated)}"
