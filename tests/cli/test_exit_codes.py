"""Exit codes cron can trust: one child `scrapekit crawl` per row of the README's table.

Every spider reads its site from `-a base=URL` (a pytest-httpserver on loopback), retries are
off and timeouts short, so each run takes well under a second of crawling.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Project

pytestmark = pytest.mark.subprocess

SPIDERS = """
from scrapekit import Request, Spider


class Pages(Spider):
    '''Fetches `paths` (comma-separated) under `base`; parse raises on paths in `bad`.'''

    name = "pages"
    paths = "/ok"
    bad = ""

    async def start(self):
        for path in self.paths.split(","):
            if path:
                yield Request(self.base + path)

    def parse(self, response):
        if response.url.rsplit("/", 1)[-1] in self.bad.split(","):
            raise ValueError("parse failed on purpose")
        yield {"url": response.url}


class Local(Pages):
    name = "local"
    allowed_domains = ["localhost", "127.0.0.1"]


class Nothing(Spider):
    name = "nothing"

    async def start(self):
        return
        yield


class LoginQuery(Spider):
    '''Logs in with a secret in the query parameter `param`, against a server that fails.'''

    name = "login_query"
    param = "password"

    async def login(self, session):
        response = await session.get(self.base + f"/login?user=bob&{self.param}=hunter2")
        if response.status != 200:
            raise RuntimeError(f"login refused at {response.url} (HTTP {response.status})")

    async def start(self):
        yield Request(self.base + "/ok")

    def parse(self, response):
        yield {"url": response.url}


class LoginLost(Spider):
    '''Logs in; its page shows the login form again, and the re-login is refused.'''

    name = "login_lost"

    async def login(self, session):
        response = await session.post(self.base + "/member-login", data={"user": "bob"})
        if response.status != 200:
            raise RuntimeError(f"re-login refused (HTTP {response.status})")

    def is_logged_in(self, response):
        return response.css_first(".login") is None

    async def start(self):
        yield Request(self.base + "/members")

    def parse(self, response):
        yield {"url": response.url}


class SetsCookie(Pages):
    '''Sets a cookie through `session.cookies` before its first request.'''

    name = "sets_cookie"

    async def start(self):
        self.session.cookies.set("manual", "s3cr3t", domain="127.0.0.1", path="/")
        async for request in super().start():
            yield request


class StartFails(Spider):
    name = "start_fails"

    async def start(self):
        raise ValueError("no start today")
        yield
"""

FAST = ["-s", "RETRY_TIMES=0", "-s", "DOWNLOAD_TIMEOUT=2", "--log-format", "json"]


@pytest.fixture
def shop(project: Project, httpserver: HTTPServer) -> Project:
    """A project with the test spiders, and a site: /ok to /ok4 are pages (robots.txt disallows
    /ok3 and /ok4), /dead is a 404, /private a 401."""
    project.add_spider("pages", SPIDERS)
    for path in ("/ok", "/ok2", "/ok3", "/ok4"):
        httpserver.expect_request(path).respond_with_data(
            "<html><body>fine</body></html>", content_type="text/html"
        )
    httpserver.expect_request("/dead").respond_with_data("gone", status=404)
    httpserver.expect_request("/private").respond_with_data("who are you", status=401)
    httpserver.expect_request("/login").respond_with_data("broken", status=500)
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /ok3\nDisallow: /ok4\n", content_type="text/plain"
    )
    return project


def crawl(
    project: Project, server: HTTPServer, spider: str, *args: str, base: str | None = None
) -> tuple[int, str, dict[str, Any]]:
    """Run the spider; its exit code, stderr and STATS_FILE."""
    stats_file = project.root / "stats.json"
    result = project.run(
        "crawl", spider, "-a", f"base={base or server.url_for('').rstrip('/')}",
        "-s", f"STATS_FILE={stats_file}", *FAST, *args,
    )  # fmt: skip
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return result.returncode, result.stderr, stats


def events(stderr: str) -> list[dict[str, Any]]:
    """The JSON log events (the last line may be the CLI's own error line)."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    ("args", "code", "reason", "error"),
    [
        pytest.param(["-a", "paths=/ok,/ok2,/dead"], 0, "finished", None, id="some-dead-links"),
        pytest.param(
            ["-a", "paths=/ok,/ok2", "-a", "bad=ok,ok2"], 1, "no_page_succeeded",
            "no page succeeded: 2 responses, 2 errors (callback 2)", id="every-callback-raises",
        ),
        pytest.param(
            ["-a", "paths=/private"], 1, "no_page_succeeded",
            "no page succeeded: 1 response, 1 error (http 401 1)", id="only-page-a-401",
        ),
        pytest.param(
            ["-a", "paths=/ok,/ok3", "-s", "ROBOTSTXT_OBEY=true"], 0, "finished", None,
            id="some-pages-disallowed-by-robots",
        ),
        pytest.param(
            ["-a", "paths=/dead,/private"], 1, "no_page_succeeded",
            "no page succeeded: 2 responses, 2 errors (http 401 1, http 404 1)", id="only-errors",
        ),
        pytest.param(
            ["-a", "paths=/ok,/ok2,/ok3,/ok4", "-a", "bad=ok,ok2"], 0, "finished", None,
            id="errors-without-max-errors",
        ),
        pytest.param(
            ["-a", "paths=/ok,/ok2,/ok3,/ok4", "-a", "bad=ok,ok2", "-s", "MAX_ERRORS=1"], 1,
            "too_many_errors", "too many errors: 2 errors (callback 2), more than MAX_ERRORS=1",
            id="max-errors-exceeded",
        ),
        pytest.param(
            ["-a", "paths=/ok,/ok2,/ok3,/ok4", "-a", "bad=ok,ok2", "-s", "MAX_ERRORS=2"], 0,
            "finished", None, id="max-errors-not-exceeded",
        ),
        pytest.param(
            ["-a", "paths=/ok,/ok2,/ok3,/ok4", "-a", "bad=ok,ok2",
             "-s", "CLOSESPIDER_ERRORCOUNT=1", "-s", "CONCURRENCY=1"],
            1, "closespider_errorcount",
            "closespider errorcount: 1 error (callback 1) reached CLOSESPIDER_ERRORCOUNT=1",
            id="closespider-errorcount",
        ),
    ],
)  # fmt: skip
def test_exit_code_follows_what_the_run_did(
    shop: Project,
    httpserver: HTTPServer,
    args: list[str],
    code: int,
    reason: str,
    error: str | None,
) -> None:
    """Each outcome in the exit-code table gives its code and finish_reason; a failed one
    says why in the summary's `error`, and the CLI's last line ends with the same text."""
    returncode, stderr, stats = crawl(shop, httpserver, "pages", *args)
    assert (returncode, stats["finish_reason"], stats.get("error")) == (code, reason, error), stderr
    assert events(stderr)[-1].get("error") == error
    if code == 1:
        assert stderr.strip().splitlines()[-1] == f"scrapekit: crawl failed: {error}"


def test_http_statuses_do_not_count_toward_max_errors(
    shop: Project, httpserver: HTTPServer
) -> None:
    """Dead links are outcomes, not errors: two 404s stay under MAX_ERRORS = 1."""
    returncode, stderr, stats = crawl(
        shop, httpserver, "pages", "-a", "paths=/ok,/dead,/ok2", "-s", "MAX_ERRORS=1"
    )
    assert (returncode, stats["finish_reason"], stats["errors"]) == (
        0, "finished", {"http 404": 1},
    ), stderr  # fmt: skip


def test_unreachable_site_exits_1(shop: Project, httpserver: HTTPServer) -> None:
    """A site that refuses connections: no page succeeded, exit 1, the summary says so."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    returncode, stderr, stats = crawl(
        shop, httpserver, "pages", "-a", "paths=/ok", base=f"http://127.0.0.1:{port}"
    )
    assert (returncode, stats["finish_reason"]) == (1, "no_page_succeeded"), stderr
    assert stats["pages_succeeded"] == 0
    assert events(stderr)[-1]["event"] == "crawl finished"
    assert stats["error"] == "no page succeeded: 0 responses, 1 error (transport error 1)"
    assert stderr.strip().splitlines()[-1] == f"scrapekit: crawl failed: {stats['error']}"


@pytest.mark.parametrize(
    ("paths", "dropped", "error"),
    [
        pytest.param(
            "/ok3,/ok4", {"robots.txt": 2},
            "no page succeeded: 0 responses, 0 errors, 2 refused (robots.txt 2)",
            id="robots-disallows-every-page",
        ),
        pytest.param(
            "/moved", {"redirect offsite": 1},
            "no page succeeded: 0 responses, 0 errors, 1 refused (redirect offsite 1)",
            id="only-page-redirects-off-site",
        ),
    ],
)  # fmt: skip
def test_every_page_refused_exits_1(
    shop: Project, httpserver: HTTPServer, paths: str, dropped: dict[str, int], error: str
) -> None:
    """Pages the workers took on and refused (robots.txt, a redirect off-site) were tried:
    with none left to succeed the run failed, though no response and no error was counted."""
    httpserver.expect_request("/moved").respond_with_data(
        "", status=302, headers={"Location": "http://elsewhere.invalid/"}
    )
    returncode, stderr, stats = crawl(
        shop, httpserver, "local", "-a", f"paths={paths}", "-s", "ROBOTSTXT_OBEY=true"
    )
    assert (returncode, stats["finish_reason"]) == (1, "no_page_succeeded"), stderr
    assert (stats["pages"], stats["error_count"]) == (0, 0)
    assert stats["dropped"]["requests"] == dropped
    assert stats["error"] == error
    assert stderr.strip().splitlines()[-1] == f"scrapekit: crawl failed: {error}"


def test_nothing_to_crawl_exits_0(shop: Project, httpserver: HTTPServer) -> None:
    """A spider whose start() yields nothing did its job: exit 0, finish_reason finished."""
    returncode, stderr, stats = crawl(shop, httpserver, "nothing")
    assert (returncode, stats["finish_reason"], stats["pages"]) == (0, "finished", 0), stderr


@pytest.mark.parametrize("param", ["password", "key", "otp", "pin"])
def test_failed_login_logs_summary_and_writes_stats(
    shop: Project, httpserver: HTTPServer, param: str
) -> None:
    """A login that fails at start still logs `crawl finished` (reason and error) and writes
    STATS_FILE; the secret in the login URL (a password, API key, OTP or PIN) appears nowhere
    on stderr."""
    returncode, stderr, stats = crawl(shop, httpserver, "login_query", "-a", f"param={param}")
    assert returncode == 1, stderr
    assert "hunter2" not in stderr
    assert "hunter2" not in json.dumps(stats)
    finished = [e for e in events(stderr) if e["event"] == "crawl finished"]
    assert len(finished) == 1
    assert finished[0]["finish_reason"] == stats["finish_reason"] == "login_failed"
    assert "login refused" in finished[0]["error"]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("scrapekit: crawl failed:")
    assert "login" in last
    assert f"{param}=***" in last


def test_failed_login_on_the_console_hides_the_password(
    shop: Project, httpserver: HTTPServer
) -> None:
    """With the console renderer too, nothing on stderr shows the password."""
    stats_file = shop.root / "stats.json"
    result = shop.run(
        "crawl", "login_query", "-a", f"base={httpserver.url_for('').rstrip('/')}",
        "-s", f"STATS_FILE={stats_file}", "-s", "RETRY_TIMES=0", "--log-format", "console",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "hunter2" not in result.stderr
    assert "crawl failed" in result.stderr


def test_lost_login_says_why_in_the_summary_and_last_line(
    shop: Project, httpserver: HTTPServer
) -> None:
    """A login lost mid-crawl (the re-login refused): the summary's `error` is the login's
    error, and the CLI's last line ends with it."""
    httpserver.expect_oneshot_request("/member-login", method="POST").respond_with_data("ok")
    httpserver.expect_request("/member-login").respond_with_data("no", status=403)
    httpserver.expect_request("/members").respond_with_data(
        '<form class="login"></form>', content_type="text/html"
    )
    returncode, stderr, stats = crawl(shop, httpserver, "login_lost")
    assert (returncode, stats["finish_reason"]) == (1, "login_failed"), stderr
    assert "re-login refused (HTTP 403)" in stats["error"]
    assert stats["error"] == stats["login"]["error"]
    assert stderr.strip().splitlines()[-1] == f"scrapekit: crawl failed: {stats['error']}"


def test_start_that_raises_says_why(shop: Project, httpserver: HTTPServer) -> None:
    """start() raising before its first request: the summary's `error` and the last line say so."""
    returncode, stderr, stats = crawl(shop, httpserver, "start_fails")
    assert (returncode, stats["finish_reason"]) == (1, "start_failed"), stderr
    assert stats["error"].startswith("start failed: start() raised before its first request")
    assert stderr.strip().splitlines()[-1] == f"scrapekit: crawl failed: {stats['error']}"


@pytest.mark.parametrize(
    ("setting", "blocker"),
    [
        pytest.param("STATS_FILE", "stats.json", id="stats-file"),
        pytest.param("STATE_DIR", "session.db", id="state-dir"),
    ],
)
def test_unwritable_output_is_one_line_before_any_request(
    shop: Project, httpserver: HTTPServer, tmp_path: Path, setting: str, blocker: str
) -> None:
    """A STATS_FILE or STATE_DIR under a plain file is exit 2, one line naming the path and
    the setting, before the first request."""
    plain = tmp_path / "not-a-folder"
    plain.write_text("x")
    target = plain / "sub" / blocker if setting == "STATS_FILE" else plain / "state"
    result = shop.run(
        "crawl", "pages", "-a", f"base={httpserver.url_for('').rstrip('/')}",
        "-s", f"{setting}={target}", *FAST,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("scrapekit: error: cannot write")
    assert str(plain) in lines[0]
    assert setting in lines[0]
    assert httpserver.log == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        pytest.param("STATS_FILE", "/proc/scrapekit-nope/stats.json", id="stats-file"),
        pytest.param("STATE_DIR", "/proc/scrapekit-nope", id="state-dir"),
    ],
)
def test_path_that_cannot_be_created_is_one_line_before_any_request(
    shop: Project, httpserver: HTTPServer, setting: str, value: str
) -> None:
    """A folder that cannot be created though its parent looks writable (/proc, even for
    root) is exit 2, one line naming the path and the setting, before the first request."""
    result = shop.run(
        "crawl", "pages", "-a", f"base={httpserver.url_for('').rstrip('/')}",
        "-s", f"{setting}={value}", *FAST,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("scrapekit: error: cannot write")
    assert "/proc/scrapekit-nope" in lines[0]
    assert f"point {setting} elsewhere" in lines[0]
    assert httpserver.log == []


def test_summary_shows_cookie_counts(shop: Project, httpserver: HTTPServer) -> None:
    """`crawl finished` hides cookie values, not the counts of cookies loaded and saved."""
    httpserver.expect_request("/cookie").respond_with_data(
        "<html>c</html>", content_type="text/html", headers={"Set-Cookie": "sid=s3cr3t; Path=/"}
    )
    returncode, stderr, _ = crawl(shop, httpserver, "pages", "-a", "paths=/cookie")
    assert returncode == 0, stderr
    finished = events(stderr)[-1]
    assert finished["event"] == "crawl finished"
    assert finished["cookie_jar"]["saved"] == 1
    assert finished["session"]["cookies"] == 1
    assert "s3cr3t" not in stderr


def test_summary_with_cookies_disabled_counts_no_saved_cookie(
    shop: Project, httpserver: HTTPServer
) -> None:
    """With COOKIES_ENABLED false, a cookie set through `session.cookies` is not synced: the
    summary's cookie_jar says the jar is off and counts nothing saved."""
    base = httpserver.url_for("").rstrip("/").replace("localhost", "127.0.0.1")
    returncode, stderr, _ = crawl(
        shop, httpserver, "sets_cookie", "-s", "COOKIES_ENABLED=false", base=base
    )
    assert returncode == 0, stderr
    finished = events(stderr)[-1]
    assert finished["event"] == "crawl finished"
    assert finished["cookie_jar"] == {
        "loaded": 0, "saved": 0, "deleted": 0, "flushes": 0, "failures": 0, "enabled": False,
    }  # fmt: skip
