"""A spider's login_url/login_check_url attributes are the spider layer of LOGIN_*."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from scrapekit.session.login import LoginManager
from scrapekit.settings import Settings
from scrapekit.spider import Spider
from tests.conftest import Project

SPIDER = """
from scrapekit import Spider


class Layered(Spider):
    name = "layered"

    def __init__(self, base, **kwargs):
        super().__init__(**kwargs)
        self.base = base
        self.start_urls = [base + "/page"]
        self.login_url = base + "/signin-spider"
        self.login_check_url = base + "/check-spider"

    async def login(self, session):
        await session.post(self.base + "/login")

    def parse(self, response):
        yield {"url": response.url}
"""


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("layer", "winner"),
    [
        pytest.param("project", "spider", id="spider-beats-settings.toml"),
        pytest.param("env", "env", id="env-beats-spider"),
        pytest.param("cmdline", "cmdline", id="cmdline-beats-spider"),
    ],
)
def test_login_urls_follow_the_settings_layers(
    project: Project, httpserver: HTTPServer, layer: str, winner: str
) -> None:
    """default < settings.toml < spider attribute < SCRAPEKIT_* < -s, for both login URLs."""
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/login", method="POST").respond_with_data("welcome")
    httpserver.expect_request(f"/check-{winner}").respond_with_data("you are in")
    # The page sends us to the winning layer's login page once: only it means "logged out",
    # and the page fetched again after the re-login comes back.
    httpserver.expect_oneshot_request("/page").respond_with_data(
        "", status=302, headers={"Location": f"/signin-{winner}"}
    )
    httpserver.expect_request("/page").respond_with_data("the page")
    httpserver.expect_request(f"/signin-{winner}").respond_with_data("sign in")
    login_url, check_url = f"{base}/signin-{layer}", f"{base}/check-{layer}"
    settings = 'SPIDER_MODULES = ["spiders"]\n'
    env: dict[str, str] = {}
    args: list[str] = []
    if layer == "project":
        settings += f'LOGIN_URL = "{login_url}"\nLOGIN_CHECK_URL = "{check_url}"\n'
    elif layer == "env":
        env = {"SCRAPEKIT_LOGIN_URL": login_url, "SCRAPEKIT_LOGIN_CHECK_URL": check_url}
    else:
        args = ["-s", f"LOGIN_URL={login_url}", "-s", f"LOGIN_CHECK_URL={check_url}"]
    project.write_settings(settings)
    project.add_spider("layered", SPIDER)
    stats_file = project.root / "stats.json"
    result = project.run(
        "crawl", "layered", "-a", f"base={base}", "-s", f"STATS_FILE={stats_file}", *args,
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    checked = [request.path for request, _ in httpserver.log if request.path.startswith("/check")]
    # LOGIN_CHECK_URL verified the login and the re-login; no other layer's URL was asked.
    assert checked == [f"/check-{winner}"] * 2
    stats = json.loads(stats_file.read_text())
    # LOGIN_URL: the redirect to /signin-<winner> was judged logged out, so the page was
    # fetched again under a new login instead of the sign-in page being parsed as an item.
    assert stats["login"]["relogins"] == 1
    assert stats["errors"] == {}
    assert stats["items"] == 1


class Attributes(Spider):
    """Sets both login URLs as attributes."""

    name = "attributes"
    login_url = "http://site.test/signin-spider"
    login_check_url = "http://site.test/check-spider"

    async def login(self, session: Any) -> None:
        """Never called here."""


def test_the_spider_layer_is_recorded_as_the_source() -> None:
    """The attribute's value is set at the spider layer, naming where it came from."""
    settings = Settings.load(
        project_file=None,
        spider_cls=None,
        env={"SCRAPEKIT_LOGIN_CHECK_URL": "http://site.test/check-env"},
    )

    class Jar:
        async def flush(self) -> int:
            return 0

    LoginManager(Attributes(), session=None, settings=settings, cookies=Jar())  # type: ignore[arg-type]
    assert settings["LOGIN_URL"] == "http://site.test/signin-spider"
    assert settings.source("LOGIN_URL") == "Attributes.login_url"
    assert settings["LOGIN_CHECK_URL"] == "http://site.test/check-env"
    assert settings.source("LOGIN_CHECK_URL") == "environment SCRAPEKIT_LOGIN_CHECK_URL"
