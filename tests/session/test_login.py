"""The login lifecycle against the demo shop: start logged in, re-login once, fail clearly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scrapekit import Response, Session, Spider, crawl_async
from scrapekit.demo import DemoSite
from scrapekit.exceptions import LoginFailed


class Shop(Spider):
    """Logs in to the demo shop and scrapes every product with its stock."""

    name = "shop"
    allowed_domains = ["127.0.0.1"]

    def __init__(self, base_url: str, password: str = "demo", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [f"{base_url}/catalogue/page-1.html"]
        self.login_url = f"{base_url}/login"
        self.login_check_url = f"{base_url}/catalogue/page-1.html"
        self.password = password
        self.logins = 0

    async def login(self, session: Session) -> None:
        self.logins += 1
        page = await session.get(self.login_url)
        await session.submit_form(page, {"username": "demo", "password": self.password})

    def is_logged_in(self, response: Response) -> bool | None:
        if response.css_first("a.logout") is not None:
            return True
        return False if response.css_first("a.login") is not None else None

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="article.product h3 a", callback=self.product)
        yield from response.follow_all(css="ul.pager li.next a")

    def product(self, response: Response) -> Iterator[dict[str, Any]]:
        stock = response.css_first("p.stock")
        yield {
            "upc": response.css_first("tr.upc td").text(),
            "stock": stock.attributes["data-stock"] if stock is not None else None,
        }


@pytest.fixture
def state(tmp_path: Path) -> dict[str, Any]:
    """Settings that keep the persisted session in tmp_path."""
    return {"STATE_DIR": str(tmp_path / "state"), "LOG_LEVEL": "WARNING"}


class Items:
    """A pipeline stage collecting items, one list per crawl."""

    collected: list[dict[str, Any]] = []

    def open(self, spider: Spider) -> None:
        Items.collected = []

    def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
        Items.collected.append(item)
        return item


async def test_second_run_skips_login_while_cookies_are_valid(state: dict[str, Any]) -> None:
    """The first crawl logs in; the next one checks its persisted cookies and does not."""
    with DemoSite(products=40) as site:
        first = await crawl_async(Shop, state, base_url=site.url)
        assert (first["login"]["logins"], site.stats.logins) == (1, 1)
        second = await crawl_async(Shop, {**state, "PIPELINES": {Items: 1}}, base_url=site.url)
        assert second["login"] == {"logins": 0, "relogins": 0, "skipped": True, "error": None}
        assert site.stats.logins == 1  # the server saw no second login
        assert second["cookie_jar"]["loaded"] >= 1
        assert len(Items.collected) == 40
        assert all(item["stock"] is not None for item in Items.collected)


async def test_expired_cookies_lead_to_a_fresh_login(state: dict[str, Any]) -> None:
    """When the persisted session was ended server-side, login() runs before crawling."""
    with DemoSite(products=20) as site:
        await crawl_async(Shop, state, base_url=site.url)
        site.expire_sessions()
        again = await crawl_async(Shop, state, base_url=site.url)
        assert again["login"]["logins"] == 1
        assert site.stats.logins == 2


class ExpireMidway:
    """Ends every session on the site once 10 items went through: all workers see it."""

    site: DemoSite

    def __init__(self) -> None:
        self.seen = 0

    def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
        self.seen += 1
        if self.seen == 10:
            ExpireMidway.site.expire_sessions()
        return item


async def test_one_relogin_however_many_workers_see_the_expiry(state: dict[str, Any]) -> None:
    """16 workers hit an expired session at once; the server sees exactly one more login."""
    with DemoSite(products=120, delay=0.01) as site:
        ExpireMidway.site = site
        stats = await crawl_async(
            Shop,
            {**state, "CONCURRENCY": 16, "PIPELINES": {ExpireMidway: 1, Items: 2}},
            base_url=site.url,
        )
        assert stats["login"]["relogins"] == 1
        assert site.stats.logins == 2
        assert len(Items.collected) == 120
        assert all(item["stock"] is not None for item in Items.collected)
        # The logged-out pages were fetched again, not retried and not parsed.
        assert stats["error_count"] == 0


async def test_failed_login_stops_before_any_page(state: dict[str, Any]) -> None:
    """A wrong password: LoginFailed at start, and no catalogue page was crawled."""
    with DemoSite(products=20) as site:
        with pytest.raises(LoginFailed, match="still logged out after login"):
            await crawl_async(Shop, state, base_url=site.url, password="wrong")
        assert site.stats.by_path.get("/catalogue/product/", 0) == 0


class Stubborn(Shop):
    """Logs in 'successfully' but the site never accepts it (no check URL at start)."""

    name = "stubborn"

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, password="wrong", **kwargs)
        self.login_check_url = ""
        self.start_urls = [f"{base_url}/catalogue/page-{n}.html" for n in range(1, 6)]


async def test_login_loop_stops_at_max_relogins(state: dict[str, Any]) -> None:
    """Page after page logged out despite re-logins: the crawl fails after MAX_RELOGINS."""
    with DemoSite(products=100) as site:
        stats = await crawl_async(
            Stubborn, {**state, "MAX_RELOGINS": 2, "CONCURRENCY": 1}, base_url=site.url
        )
        assert stats["finish_reason"] == "login_failed"
        assert "MAX_RELOGINS=2" in stats["login"]["error"]
        assert site.stats.failed_logins == 3  # the start login and two re-logins


class MembersArea(Shop):
    """Treats listing page 2 as a page this account can never see logged in."""

    name = "members-area"

    def is_logged_in(self, response: Response) -> bool | None:
        if response.url.endswith("/page-2.html"):
            return False
        return super().is_logged_in(response)


async def test_one_page_logged_out_after_a_fresh_login_fails_alone(
    state: dict[str, Any],
) -> None:
    """A page still logged out right after a re-login fails by itself; the crawl goes on."""
    with DemoSite(products=40) as site:
        stats = await crawl_async(
            MembersArea, {**state, "PIPELINES": {Items: 1}}, base_url=site.url
        )
        assert len(Items.collected) == 20  # page 1's products; page 2 failed
        assert stats["errors"] == {"logged out": 1}
        assert stats["login"]["relogins"] == 1


async def test_a_login_that_raises_is_a_login_failure(state: dict[str, Any]) -> None:
    """An exception inside login() is reported as LoginFailed naming it."""

    class Crashing(Shop):
        name = "crashing"

        async def login(self, session: Session) -> None:
            await asyncio.sleep(0)
            raise KeyError("csrf_token")

    with (
        DemoSite(products=5) as site,
        pytest.raises(LoginFailed, match=r"login\(\) failed: KeyError"),
    ):
        await crawl_async(Crashing, state, base_url=site.url)


async def test_relogins_after_a_restart_race_nothing(state: dict[str, Any]) -> None:
    """Re-logins wait for in-flight pages: no CSRF clash, no login page parsed as a product."""
    for _ in range(2):  # the second crawl starts from the first one's persisted cookies
        with DemoSite(products=100, session_max_requests=40) as site:
            stats = await crawl_async(Shop, {**state, "PIPELINES": {Items: 1}}, base_url=site.url)
            assert site.stats.csrf_failures == 0
            assert stats["login"]["relogins"] >= 2
            assert sorted(i["upc"] for i in Items.collected) == sorted(p.upc for p in site.products)
            assert all(item["stock"] is not None for item in Items.collected)
