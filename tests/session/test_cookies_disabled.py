"""COOKIES_ENABLED = false: no cookie is stored or sent, even after code reads session.cookies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from scrapekit import Response, Spider, crawl_async
from scrapekit.session import Session
from scrapekit.settings import Settings


def settings(**overrides: object) -> Settings:
    """Validated defaults plus overrides."""
    return Settings.load(project_file=None, spider_cls=None, env={}, overrides=overrides)


async def test_reading_the_jar_does_not_switch_cookies_on(cookie_server: HTTPServer) -> None:
    """session.cookies can be read, but the session neither fills it nor sends from it."""
    async with Session.from_settings(settings(COOKIES_ENABLED=False)) as session:
        assert len(session.cookies) == 0
        first = await session.get(cookie_server.url_for("/cookies/set"), params={"sid": "x"})
        again = await session.get(cookie_server.url_for("/cookies"))
        assert len(session.cookies) == 0
        assert session.statistics().cookies == 0
    assert first.json() == again.json() == {"cookie": None}


class CookieEcho(Spider):
    """Yields what /cookies saw."""

    name = "cookie-echo-off"

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield response.json()


async def test_a_crawl_with_cookies_off_sends_none(
    cookie_server: HTTPServer, tmp_path: Path
) -> None:
    """In a crawl (whose engine reads session.cookies), a Set-Cookie is never sent back."""
    items: list[Any] = []

    class Collect:
        def process_item(self, item: Any, spider: Spider) -> Any:
            items.append(item)
            return item

    await crawl_async(
        CookieEcho,
        {
            "STATE_DIR": str(tmp_path),
            "COOKIES_ENABLED": False,
            "LOG_LEVEL": "ERROR",
            "ROBOTSTXT_OBEY": False,
            "PIPELINES": {Collect: 1},
        },
        start_urls=[cookie_server.url_for("/cookies/set") + "?sid=x"],
    )
    assert items == [{"cookie": None}]
