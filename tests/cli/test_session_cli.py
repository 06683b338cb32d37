"""Login sessions from the command line: exit codes, `session show|clear`, secrets, kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse

from scrapekit.demo import DemoSite
from tests.conftest import REPO, Project, child_env

pytestmark = pytest.mark.subprocess


def crawl_demo(repo: Project, site: DemoSite, *args: str) -> subprocess.CompletedProcess[str]:
    """`scrapekit crawl demo` against `site`, state in the test's folder, JSON logs."""
    return repo.run(
        "crawl", "demo", "-a", f"base_url={site.url}", "--log-format", "json",
        "-s", f"STATE_DIR={repo.state}", *args,  # type: ignore[attr-defined]
    )  # fmt: skip


def test_corrupt_jar_is_one_line_naming_the_file_and_the_fix(repo: Project) -> None:
    """A jar that is not SQLite stops the crawl with exit 2 and says how to clear it."""
    jar = repo.state / "demo" / "session.db"  # type: ignore[attr-defined]
    jar.parent.mkdir(parents=True, mode=0o700)
    jar.write_bytes(b"this is not a database" * 100)
    jar.chmod(0o600)
    with DemoSite(products=5) as site:
        result = crawl_demo(repo, site)
        assert site.stats.requests == 0
    assert result.returncode == 2
    # The crawl's first log line (its run and state) comes first; then the one error line.
    log, *lines = result.stderr.strip().splitlines()
    assert json.loads(log)["event"] == "new run 1"
    assert len(lines) == 1
    assert str(jar) in lines[0]
    assert "scrapekit session clear demo" in lines[0]


def test_wrong_password_exits_1_before_crawling(repo: Project) -> None:
    """A login that leaves the session logged out is exit 1, one line, no catalogue crawled."""
    with DemoSite(products=5) as site:
        result = crawl_demo(repo, site, "-a", "password=nope")
        assert site.stats.by_path.get("/catalogue/product/", 0) == 0
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("scrapekit: crawl failed: still logged out after login()")


def test_session_show_hides_values_and_clear_logs_out(repo: Project) -> None:
    """`session show` lists cookies without values (unless --values); `clear` deletes the jar."""
    with DemoSite(products=5) as site:
        assert crawl_demo(repo, site).returncode == 0
    state = f"SCRAPEKIT_STATE_DIR={repo.state}"  # type: ignore[attr-defined]
    env = dict([state.split("=", 1)])
    shown = repo.run("session", "show", "demo", env=env)
    assert shown.returncode == 0, shown.stderr
    jar = repo.state / "demo" / "session.db"  # type: ignore[attr-defined]
    value = (
        sqlite3.connect(jar)
        .execute("SELECT value FROM cookies WHERE name = 'sessionid'")
        .fetchone()[0]
    )
    assert "sessionid" in shown.stdout
    assert "httponly" in shown.stdout
    assert value not in shown.stdout
    assert value in repo.run("session", "show", "demo", "--values", env=env).stdout
    cleared = repo.run("session", "clear", "demo", env=env)
    assert cleared.returncode == 0
    assert not jar.exists()
    missing = repo.run("session", "show", "demo", env=env)
    assert missing.returncode == 2
    assert "no saved session 'demo'" in missing.stderr


def test_session_show_leaves_the_jar_untouched(repo: Project) -> None:
    """`session show` reads the jar only: an expired cookie stays, bytes and mtime unchanged."""
    with DemoSite(products=2) as site:
        assert crawl_demo(repo, site).returncode == 0
    folder = repo.state / "demo"  # type: ignore[attr-defined]
    with sqlite3.connect(folder / "session.db") as db:
        db.execute(
            "INSERT INTO cookies SELECT domain, path, 'stale', value, host_only, secure, "
            "http_only, same_site, 1.0, creation, last_access FROM cookies LIMIT 1"
        )
    db.close()
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert "session.db" in before
    shown = repo.run("session", "show", "demo", env={"SCRAPEKIT_STATE_DIR": str(folder.parent)})
    assert shown.returncode == 0, shown.stderr
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert after == before


def test_no_secret_reaches_the_logs(repo: Project) -> None:
    """At DEBUG, neither the password nor the session cookie value appears in any log line."""
    with DemoSite(products=30, password="hunter2-secret") as site:
        result = crawl_demo(repo, site, "-a", "password=hunter2-secret", "--log-level", "DEBUG")
    assert result.returncode == 0, result.stderr[-2000:]
    jar = repo.state / "demo" / "session.db"  # type: ignore[attr-defined]
    values = [row[0] for row in sqlite3.connect(jar).execute("SELECT value FROM cookies")]
    assert values
    assert len(result.stderr.splitlines()) > 30  # DEBUG logged every response
    for secret in ["hunter2-secret", *values]:
        assert secret not in result.stderr


TICKER = """
from scrapekit import Request, Spider

class Ticker(Spider):
    name = "ticker"
    custom_settings = {"CONCURRENCY": 1, "COOKIES_FLUSH_SECONDS": 0.2}

    def __init__(self, url, **kwargs):
        super().__init__(**kwargs)
        self.url = url

    async def start(self):
        for n in range(100_000):
            yield Request(f"{self.url}?n={n}")

    def parse(self, response):
        return None
"""


def test_kill_9_loses_at_most_the_last_flush_interval(
    project: Project, httpserver: HTTPServer
) -> None:
    """After SIGKILL the jar holds a cookie set no longer than one flush interval before it."""
    set_at: dict[int, float] = {}

    def tick(request: WRequest) -> WResponse:
        n = int(request.args["n"])
        set_at[n] = time.monotonic()
        time.sleep(0.005)
        response = WResponse("tick")
        response.set_cookie("tick", str(n))
        return response

    httpserver.expect_request("/tick").respond_with_handler(tick)
    project.add_spider("ticker", TICKER)
    child = subprocess.Popen(
        [sys.executable, "-m", "scrapekit", "crawl", "ticker", "-a",
         f"url={httpserver.url_for('/tick')}", "--log-format", "json"],
        cwd=project.root, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while len(set_at) < 150:
        assert time.monotonic() < deadline, "the crawl did not get going"
        time.sleep(0.01)
    killed_at = time.monotonic()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    jar = project.root / ".scrapekit" / "ticker" / "session.db"
    (saved,) = (
        sqlite3.connect(jar).execute("SELECT value FROM cookies WHERE name='tick'").fetchone()
    )
    # Saved at most one interval (0.2 s) before the kill, plus scheduling slack.
    assert killed_at - set_at[int(saved)] < 0.2 + 0.3


def test_kill_9_after_login_keeps_the_login(repo: Project) -> None:
    """After SIGKILL the jar holds the login (written right after it): the next run reuses it."""
    with DemoSite(products=500, delay=0.05) as site:
        child = subprocess.Popen(
            [sys.executable, "-m", "scrapekit", "crawl", "demo", "-a", f"base_url={site.url}",
             "-s", f"STATE_DIR={repo.state}", "-s", "COOKIES_FLUSH_SECONDS=0.2",  # type: ignore[attr-defined]
             "--log-format", "json"],
            cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while site.stats.by_path.get("/catalogue/product/", 0) < 10:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        jar = repo.state / "demo" / "session.db"  # type: ignore[attr-defined]
        names = {row[0] for row in sqlite3.connect(jar).execute("SELECT name FROM cookies")}
        assert "sessionid" in names
        # The next run starts logged in from the jar the killed run left.
        result = crawl_demo(repo, site, "-s", "CLOSESPIDER_ITEMCOUNT=5")
        assert result.returncode == 0
        lines = result.stderr.splitlines()
        assert lines[-1].startswith("scrapekit: stopped early")
        events = [json.loads(line) for line in lines[:-1]]
        assert any(e["event"] == "login skipped" for e in events)
        assert site.stats.logins == 1


@pytest.mark.parametrize("name", ["../outside", "a/b", ".."])
def test_session_names_cannot_leave_the_state_folder(repo: Project, name: str) -> None:
    """A session name with a path in it is refused (exit 2) before anything is deleted."""
    result = repo.run("session", "clear", name)
    assert result.returncode == 2
    assert "not a valid session name" in result.stderr
