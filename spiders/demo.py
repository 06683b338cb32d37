"""Crawls the bundled demo shop logged in, and yields one item per product.

The shop shows each product's stock only to logged-in users. The spider logs in through the
shared session (a form with a CSRF token); the login cookie is persisted, so the next run
starts logged in, and when the shop expires the session mid-crawl, scrapekit logs in again
once and carries on. Run it against a demo site started with `python -m scrapekit.demo serve`:

    scrapekit crawl demo -a base_url=http://127.0.0.1:PORT -O demo.jsonl
    scrapekit check demo -a base_url=http://127.0.0.1:PORT   # the contracts in the docstrings
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapekit import Request, Response, Session, Spider


class DemoSpider(Spider):
    """Every product of the demo shop, with the stock count only logged-in users see."""

    name = "demo"
    allowed_domains = ["127.0.0.1", "localhost"]

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        username: str = "demo",
        password: str = "demo",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.start_urls = [f"{self.base_url}/catalogue/page-1.html"]
        self.login_url = f"{self.base_url}/login"
        self.login_check_url = f"{self.base_url}/catalogue/page-1.html"

    async def login(self, session: Session) -> None:
        """Fill in the login form; its hidden CSRF token is kept by submit_form."""
        page = await session.get(self.login_url)
        await session.submit_form(page, {"username": self.username, "password": self.password})

    def is_logged_in(self, response: Response) -> bool | None:
        """Every shop page has either a "Log out" or a "Log in" link in its header."""
        if not response.is_html:
            return None
        if response.css_first("a.logout") is not None:
            return True
        return False if response.css_first("a.login") is not None else None

    def parse(self, response: Response) -> Iterator[Request | None]:
        """A listing page: every product, then the next page.

        @url {base_url}/catalogue/page-1.html
        @returns requests 21 21
        @returns items 0 0
        """
        yield from response.follow_all(css="article.product h3 a", callback=self.parse_product)
        next_link = response.css_first("ul.pager li.next a")
        if next_link is not None:
            yield response.follow(next_link, callback=self.parse)

    def parse_product(self, response: Response) -> Iterator[dict[str, Any]]:
        """A product page: one item.

        @url {base_url}/catalogue/product/the-frozen-fjord-1/index.html
        @returns items 1 1
        @scrapes title price upc category stock url
        """

        def text(selector: str) -> str | None:
            node = response.css_first(selector)
            return node.text(strip=True) if node is not None else None

        stock = response.css_first("p.stock")
        yield {
            "title": text("h1"),
            "price": text("p.price"),
            "upc": text("table.product-info tr.upc td"),
            "category": text("table.product-info tr.category td"),
            "stock": int(stock.attributes["data-stock"] or 0) if stock is not None else None,
            "url": response.url,
        }
