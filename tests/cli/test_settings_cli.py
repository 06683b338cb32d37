"""`scrapekit settings` as a child process: every setting with the layer it came from
(default, settings.toml, the spider, the environment, -s), `--get`, and no secret printed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scrapekit.settings.defaults import DEFAULTS
from tests.conftest import Project

pytestmark = pytest.mark.subprocess

SPIDER = """
from scrapekit import Spider


class Shop(Spider):
    name = "shop"
    custom_settings = {"CONCURRENCY": 3, "RATE": 4.0}
    login_url = "https://shop.example/login"
"""

LINE = re.compile(r"^(?P<key>[A-Z_0-9]+) +=(?P<value>.*?)  # (?P<where>.*)$")


def table(stdout: str) -> dict[str, tuple[object, str]]:
    """KEY -> (value, "layer: source") from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        match = LINE.match(line)
        assert match, f"not a settings line: {line!r}"
        rows[match["key"]] = (json.loads(match["value"]), match["where"])
    return rows


@pytest.fixture
def shop(project: Project) -> Project:
    project.write_settings(
        """
        SPIDER_MODULES = ["spiders"]
        RATE = 1.5
        DOWNLOAD_DELAY = 0.25
        [DEFAULT_REQUEST_HEADERS]
        Accept = "text/html"
        Authorization = "Bearer hunter2-token"
        """
    )
    project.add_spider("shop", SPIDER)
    return project


def test_every_layer_is_shown_with_its_source(shop: Project) -> None:
    """Each value says where it came from; a higher layer wins over a lower one."""
    result = shop.run(
        "settings", "--spider", "shop", "-s", "RETRY_TIMES=5", "-s", "RATE=2.5",
        env={"SCRAPEKIT_LOG_LEVEL": "DEBUG", "SCRAPEKIT_CONCURRENCY": "7"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    assert list(rows) == list(DEFAULTS)  # every setting, in docs/settings.md's order
    assert rows["USER_AGENT"][1] == "default"
    assert rows["DOWNLOAD_DELAY"] == (0.25, "project: settings.toml")
    assert rows["LOGIN_URL"] == ("https://shop.example/login", "spider: Shop.login_url")
    assert rows["CONCURRENCY"] == (7, "env: environment SCRAPEKIT_CONCURRENCY")
    assert rows["LOG_LEVEL"] == ("DEBUG", "env: environment SCRAPEKIT_LOG_LEVEL")
    assert rows["RETRY_TIMES"] == (5, "cmdline: -s RETRY_TIMES=5")
    assert rows["RATE"] == (2.5, "cmdline: -s RATE=2.5")
    # Without the -s and the environment, the spider's custom_settings show through.
    plain = table(shop.run("settings", "--spider", "shop").stdout)
    assert plain["CONCURRENCY"] == (3, "spider: custom_settings of spider 'shop'")
    assert plain["RATE"] == (4.0, "spider: custom_settings of spider 'shop'")
    # And without --spider, settings.toml's.
    assert table(shop.run("settings").stdout)["RATE"] == (1.5, "project: settings.toml")


def test_secrets_are_never_printed(shop: Project) -> None:
    """A secret header, a password in a URL (from settings.toml, -s or the environment):
    shown as ***, in the value and in its source, in the table and with --get."""
    secret_url = "https://me:pa55word@shop.example/login?token=t0k3n"
    result = shop.run(
        "settings", "-s", f"LOGIN_URL={secret_url}",
        env={"SCRAPEKIT_LOGIN_CHECK_URL": secret_url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for secret in ("hunter2", "pa55word", "t0k3n"):
        assert secret not in result.stdout
    rows = table(result.stdout)
    assert rows["DEFAULT_REQUEST_HEADERS"][0] == {"Accept": "text/html", "Authorization": "***"}
    assert rows["LOGIN_URL"][0] == "https://me:***@shop.example/login?token=***"
    got = shop.run("settings", "--get", "DEFAULT_REQUEST_HEADERS")
    assert "hunter2" not in got.stdout
    assert json.loads(got.stdout)["Authorization"] == "***"


def test_proxy_credentials_are_never_printed(shop: Project) -> None:
    """PROXY's userinfo (a password, or a lone token) is hidden in the value, in its -s
    source and with --get."""
    token_proxy = "http://tok3n-secret@proxy.example:3128"
    result = shop.run("settings", "-s", f"PROXY={token_proxy}")
    assert result.returncode == 0, result.stderr
    assert "tok3n-secret" not in result.stdout
    assert table(result.stdout)["PROXY"] == (
        "http://***@proxy.example:3128",
        "cmdline: -s PROXY=http://***@proxy.example:3128",
    )
    got = shop.run("settings", "--get", "PROXY", env={"SCRAPEKIT_PROXY": token_proxy})
    assert got.returncode == 0, got.stderr
    assert got.stdout == "http://***@proxy.example:3128\n"
    password = shop.run("settings", "--get", "PROXY", "-s", "PROXY=http://me:pa55@proxy:3128")
    assert password.stdout == "http://me:***@proxy:3128\n"


def test_get_prints_one_value(shop: Project) -> None:
    """--get KEY prints the value alone: text as is, anything else as JSON."""
    assert shop.run("settings", "--get", "RATE").stdout == "1.5\n"
    assert shop.run("settings", "--get", "FRONTIER").stdout == "sqlite\n"
    assert shop.run("settings", "--get", "ROBOTSTXT_OBEY", "-s", "ROBOTSTXT_OBEY=1").stdout == (
        "true\n"
    )
    assert shop.run("settings", "--get", "RETRY_HTTP_CODES").stdout.startswith("[408, 429")


def test_an_unknown_key_exits_2_with_the_close_match(shop: Project) -> None:
    """--get of a key that does not exist: one line naming the closest one, exit 2."""
    result = shop.run("settings", "--get", "CONCURENCY")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scrapekit: error: CONCURENCY (--get): unknown setting; did you mean CONCURRENCY?"
    ]
    unknown_spider = shop.run("settings", "--spider", "shpo")
    assert unknown_spider.returncode == 2
    assert "did you mean 'shop'?" in unknown_spider.stderr


def test_outside_a_project_the_defaults_and_the_layers_above(tmp_path: Path) -> None:
    """No project: defaults, the environment and -s (what runspider gets); --spider needs one."""
    project = Project.__new__(Project)
    project.root = tmp_path
    result = project.run("settings", "-s", "RATE=3", env={"SCRAPEKIT_DEPTH_LIMIT": "2"})
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    assert rows["RATE"] == (3.0, "cmdline: -s RATE=3")
    assert rows["DEPTH_LIMIT"] == (2, "env: environment SCRAPEKIT_DEPTH_LIMIT")
    assert rows["ROBOTSTXT_OBEY"] == (False, "default")
    needs = project.run("settings", "--spider", "shop")
    assert needs.returncode == 2
    assert "no settings.toml" in needs.stderr
