"""A login page that robots.txt or allowed_domains rule out still shows a lost session."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scrapekit import Response, Session, Spider, crawl_async
from tests.conftest import Project
from tests.hostile.lifecycle_servers import MemberSite

MEMBERS_SPIDER = """
from scrapekit import Request, Spider


class Members(Spider):
    name = "members"
    allowed_domains = ["127.0.0.1"]

    def __init__(self, base_url, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url
        self.login_url = base_url + "/login"

    async def start(self):
        for n in range(100):
            yield Request(f"{self.base_url}/p/{n}")

    async def login(self, session):
        await session.post(self.login_url, data={"user": "me"})

    def is_logged_in(self, response):
        if response.css_first(".member") is not None:
            return True
        return False if response.css_first(".login") is not None else None

    def parse(self, response):
        yield {"page": response.css_first("h1").text()}
"""


@pytest.mark.subprocess
def test_expired_sessions_behind_a_robots_disallowed_login_page(project: Project) -> None:
    """robots.txt disallows /login; sessions expire every 15 pages: all 100 pages, exit 0."""
    project.write_settings('SPIDER_MODULES = ["spiders"]\nROBOTSTXT_OBEY = true\nCONCURRENCY = 4\n')
    project.add_spider("members", MEMBERS_SPIDER)
    feed, stats_file = project.root / "out.jsonl", project.root / "stats.json"
    with MemberSite(pages_per_session=15) as site:
        result = project.run(
            "crawl", "members", "-a", f"base_url={site.url('')}".rstrip("/"),
            "-O", str(feed), "-s", f"STATS_FILE={stats_file}",
        )  # fmt: skip
        logins = site.logins
    assert result.returncode == 0, result.stderr
    pages = [json.loads(line)["page"] for line in feed.read_text().splitlines()]
    assert sorted(pages) == sorted(f"page {n}" for n in range(100))
    stats = json.loads(stats_file.read_text())
    assert stats["dropped"]["requests"] == {}
    assert stats["errors"] == {}
    assert stats["login"]["relogins"] >= 5  # 100 pages, 15 per session
    assert logins == stats["login"]["logins"]


class SingleSignOn(Spider):
    """Sent to a login page on another host name: off-site for allowed_domains."""

    name = "sso"
    allowed_domains = ["127.0.0.1"]

    def __init__(self, site: MemberSite, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.site = site
        self.start_urls = [site.url(f"/p/{n}") for n in range(30)]
        self.login_url = site.login_location

    async def login(self, session: Session) -> None:
        # The identity provider's redirect leads off-site: the login goes there anyway.
        authorized = await session.get(self.site.url("/sso-start"))
        assert authorized.text == "authorized"
        await session.post(self.site.url("/login"), data={"user": "me"})

    def is_logged_in(self, response: Response) -> bool | None:
        if response.css_first(".member") is not None:
            return True
        return False if response.css_first(".login") is not None else None

    def parse(self, response: Response) -> Any:
        yield {"page": response.text}


async def test_an_offsite_login_page_and_login_redirects_are_not_dropped() -> None:
    """Login page and identity provider off-site: re-logins happen, every page is scraped."""
    with MemberSite(pages_per_session=10) as site:
        provider = site.url("/authorize").replace("127.0.0.1", "localhost")
        site.login_location = site.url("/login").replace("127.0.0.1", "localhost")
        site.server.expect_request("/sso-start").respond_with_data(
            "", status=302, headers={"Location": provider}
        )
        site.server.expect_request("/authorize").respond_with_data("authorized")
        stats = await crawl_async(
            SingleSignOn,
            {
                "LOG_LEVEL": "CRITICAL",
                "COOKIES_PERSIST": False,
                "ROBOTSTXT_OBEY": True,
                "CONCURRENCY": 4,  # fewer than a session's pages: refetches fit in one
            },
            site=site,
        )
    assert stats["finish_reason"] == "finished"
    assert stats["items"] == 30
    assert stats["dropped"]["requests"] == {}
    assert stats["errors"] == {}
    assert stats["login"]["relogins"] >= 2  # 30 pages, 10 per session
