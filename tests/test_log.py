"""Logging: secret redaction, renderer choice, and the live progress line on a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import structlog

from scrapekit import log
from scrapekit.demo import DemoSite
from scrapekit.stats import CrawlStats, write_stats_file
from tests.conftest import REPO, child_env


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param("password", "hunter2", "***", id="password"),
        pytest.param("Authorization", "Bearer abc", "***", id="auth-header-field"),
        pytest.param("cookie", "sessionid=abc", "***", id="cookie"),
        pytest.param("csrf_token", "t0k", "***", id="csrf"),
        pytest.param(
            "headers",
            {"Authorization": "Basic eA==", "Accept": "x"},
            {"Authorization": "***", "Accept": "x"},
            id="nested-headers",
        ),
        pytest.param(
            "form",
            [{"user": "u", "passwd": "p"}],
            [{"user": "u", "passwd": "***"}],
            id="nested-list",
        ),
        pytest.param(
            "url", "http://user:pw@shop.test/a", "http://user:***@shop.test/a", id="url-password"
        ),
        pytest.param("url", "http://shop.test/a?b=1", "http://shop.test/a?b=1", id="plain-url"),
        pytest.param("status", 200, 200, id="harmless"),
        pytest.param("cookies_saved", 3, 3, id="count-under-a-cookie-name"),
        pytest.param(
            "cookie_jar",
            {"backend": "sqlite", "loaded": 2, "saved": 5},
            {"backend": "***", "loaded": 2, "saved": 5},
            id="stats-group-under-a-cookie-name",
        ),
        pytest.param(
            "cookies",
            {"sessionid": "abc", "n": 1},
            {"sessionid": "***", "n": 1},
            id="cookie-values",
        ),
        pytest.param("cookies", ["a=1", "b=2"], ["***", "***"], id="cookie-value-list"),
        pytest.param("password", 1234, "***", id="numeric-password"),
        pytest.param("author", "Ann", "Ann", id="author-is-not-auth"),
        pytest.param(
            "headers",
            {"X-Api-Key": "k", "X-Request-Id": "r"},
            {"X-Api-Key": "***", "X-Request-Id": "r"},
            id="hyphenated-header",
        ),
        pytest.param(
            "url",
            "http://x.test/a?access_token=abc&page=2&author=me",
            "http://x.test/a?access_token=***&page=2&author=me",
            id="query-token",
        ),
        pytest.param(
            "exception",
            "Traceback ...\nValueError: GET http://u:pw@x.test/?api-key=k failed",
            "Traceback ...\nValueError: GET http://u:***@x.test/?api-key=*** failed",
            id="traceback-text",
        ),
    ],
)
def test_redact_secrets(field: str, value: object, expected: object) -> None:
    """Secret-looking fields, nested ones and URL passwords are replaced with ***."""
    event = log.redact_secrets(None, "info", {"event": "x", field: value})
    assert event[field] == expected


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("api_key", id="api_key"),
        pytest.param("apikey", id="apikey"),
        pytest.param("X-Api-Key", id="api-key-header"),
        pytest.param("Ocp-Apim-Subscription-Key", id="subscription-key-header"),
        pytest.param("otp", id="otp"),
        pytest.param("totp_code", id="totp"),
        pytest.param("pin", id="pin"),
        pytest.param("PIN-Code", id="pin-code"),
        pytest.param("passcode", id="passcode"),
    ],
)
def test_secret_names(name: str) -> None:
    """Kinds of key, one-time-password and PIN names are secret, as whole words of the name."""
    assert log.is_secret(name)


@pytest.mark.parametrize(
    "name",
    ["keyword", "keys", "monkey", "hotkey", "pinned", "spin", "pinterest", "otpx", "code", "key"],
)
def test_names_that_only_contain_a_secret_word_are_not_secret(name: str) -> None:
    """A secret word inside a longer word ("keyword", "pinned") does not make a name secret,
    nor does a bare "key" as a field name (an identifier, like a rate-limit slot's key)."""
    assert not log.is_secret(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "login failed at http://x.test/login?user=bob&key=Hunter2Xyz",
            "login failed at http://x.test/login?user=bob&key=***",
            id="key",
        ),
        pytest.param("GET /v?otp=123456&pin=0042", "GET /v?otp=***&pin=***", id="otp-pin"),
        pytest.param(
            "/s?keyword=key&monkey=1&pinned=yes&sort=pin",
            "/s?keyword=key&monkey=1&pinned=yes&sort=pin",
            id="look-alikes-kept",
        ),
        pytest.param(
            "http://x.test/login?password=Hunter2: RemoteProtocolError: disconnected",
            "http://x.test/login?password=***: RemoteProtocolError: disconnected",
            id="separator-after-value-kept",
        ),
        pytest.param(
            "(see http://x.test/?token=abc).", "(see http://x.test/?token=***).", id="closing"
        ),
        pytest.param("?key=a:b:c done", "?key=*** done", id="colon-inside-value-hidden"),
        pytest.param(
            "GET https://a.test/x?next=https://b.test/cb?token=S3CRET",
            "GET https://a.test/x?next=https://b.test/cb?token=***",
            id="secret-inside-another-parameters-value",
        ),
        pytest.param("/x?a=b;token=S3CRET", "/x?a=b;token=***", id="semicolon-separated"),
        pytest.param(
            "/x?user=bob&password=p@ss;w?rd&x=1",
            "/x?user=bob&password=***&x=1",
            id="punctuation-inside-a-secret-hidden",
        ),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    """Secret query parameters in free text are hidden; what follows the value is kept."""
    assert log.scrub_text(text) == expected


def test_numeric_pin_and_otp_are_hidden() -> None:
    """A PIN or one-time password is a number, and still a secret."""
    event = log.redact_secrets(None, "info", {"event": "x", "pin": 1234, "otp": 987654})
    assert event["pin"] == event["otp"] == "***"


class Origin(NamedTuple):
    host: str
    url: str


def test_odd_containers_in_the_summary_are_redacted_and_written(tmp_path: Path) -> None:
    """A namedtuple and a set among a summary's statistics: walked like any container (as
    lists), secrets hidden inside them, and STATS_FILE still written as JSON."""
    summary = CrawlStats().summary(
        "shop",
        requests=1,
        dropped={},
        origin=Origin("shop.test", "http://bob:s3cret@shop.test/"),
        seen={"http://shop.test/?token=t0k"},
        cookie_jar=Origin("sid", "abc"),
    )
    redacted = log.redact(summary)
    assert redacted["origin"] == ["shop.test", "http://bob:***@shop.test/"]
    assert redacted["seen"] == ["http://shop.test/?token=***"]
    assert redacted["cookie_jar"] == ["***", "***"]
    write_stats_file(tmp_path / "stats.json", redacted)
    written = json.loads((tmp_path / "stats.json").read_text())
    assert written["seen"] == ["http://shop.test/?token=***"]
    assert "s3cret" not in (tmp_path / "stats.json").read_text()


def test_odd_containers_in_a_log_line() -> None:
    """The log's redaction is the same walker: a namedtuple under a secret name, a set and a
    frozenset under plain ones."""
    event = log.redact_secrets(
        None,
        "info",
        {
            "event": "x",
            "auth": Origin("shop.test", "Basic eA=="),
            "urls": {"http://u:pw@x.test/"},
            "names": frozenset({"a"}),
            "pair": ("a", "http://x.test/?password=p"),
        },
    )
    assert event["auth"] == ["***", "***"]
    assert event["urls"] == ["http://u:***@x.test/"]
    assert event["names"] == ["a"]
    assert event["pair"] == ("a", "http://x.test/?password=***")


def test_json_lines_when_not_a_terminal() -> None:
    """LOG_FORMAT=auto renders one JSON object per line when the stream is not a TTY."""
    stream = io.StringIO()
    log.configure("INFO", "auto", stream)
    structlog.get_logger("t").info("response", url="http://x.test/", password="p")
    structlog.get_logger("t").debug("hidden")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert (event["event"], event["level"], event["password"]) == ("response", "info", "***")
    assert "timestamp" in event


def test_tracebacks_are_redacted_too() -> None:
    """A secret inside an exception message is scrubbed from the formatted traceback."""
    stream = io.StringIO()
    log.configure("INFO", "json", stream)
    try:
        raise ValueError("cannot fetch http://bob:s3cret@x.test/?token=t0k")
    except ValueError as exc:
        structlog.get_logger("t").error("failed", exc_info=exc)
    event = json.loads(stream.getvalue())
    assert "s3cret" not in event["exception"]
    assert "t0k" not in event["exception"]
    assert "ValueError: cannot fetch http://bob:***@x.test/?token=***" in event["exception"]


def test_console_format_is_human_readable() -> None:
    """LOG_FORMAT=console renders key=value text, not JSON."""
    stream = io.StringIO()
    log.configure("INFO", "console", stream)
    structlog.get_logger("t").warning("request failed", url="http://x.test/")
    line = stream.getvalue().strip()
    assert "request failed" in line
    assert "url=http://x.test/" in line
    assert not line.startswith("{")


@pytest.mark.subprocess
def test_live_progress_line_on_a_terminal(tmp_path: object) -> None:
    """On a TTY the crawl redraws a progress line in place (carriage return, clear line)."""
    with DemoSite(products=60, delay=0.05) as site:
        leader, follower = pty.openpty()
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scrapekit",
                "crawl",
                "demo",
                "-a",
                f"base_url={site.url}",
                "-s",
                "CONCURRENCY=2",
            ],
            cwd=REPO,
            env=child_env({"TERM": "xterm", "SCRAPEKIT_STATE_DIR": f"{tmp_path}/state"}),
            stdin=follower,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        output = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif child.poll() is not None:
                break
        child.wait(timeout=10)
        os.close(leader)
    text = output.decode(errors="replace")
    assert child.returncode == 0, text
    assert "\r\x1b[Kpages " in text
    assert "pages/s" in text
    assert "items " in text
    assert "crawl finished" in text
