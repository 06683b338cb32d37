"""Crawls the bundled demo shop: logs in, walks the catalogue, yields one item per product.

Run it against a demo site started with `python -m scrapekit.demo serve`:

    scrapekit crawl demo -a base_url=http://127.0.0.1:PORT -O demo.jsonl
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapekit import Request, Response, Spider


class DemoSpider(Spider):
    """Every product of the demo shop, with the stock count only logged-in users see."""

    name = "demo"
    allowed_domains = ["127.0.0.1", "localhost"]

    def __init__(self, base_url: str = "http://127.0.0.1:8000", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    async def start(self) -> AsyncIterator[Request]:
        """Log in through the shared session, then start at the first catalogue page."""
        form = await self.session.get(f"{self.base_url}/login")
        token = form.css_first("input[name=csrf_token]")
        await self.session.post(
            f"{self.base_url}/login",
            data={
                "csrf_token": token.attributes.get("value", "") if token is not None else "",
                "username": "demo",
                "password": "demo",
            },
        )
        yield Request(f"{self.base_url}/catalogue/page-1.html", callback=self.parse)

    def parse(self, response: Response) -> Iterator[Request | None]:
        """A listing page: every product, then the next page."""
        yield from response.follow_all(css="article.product h3 a", callback=self.parse_product)
        next_link = response.css_first("ul.pager li.next a")
        if next_link is not None:
            yield response.follow(next_link, callback=self.parse)

    def parse_product(self, response: Response) -> Iterator[dict[str, Any]]:
        """A product page: one item."""

        def text(selector: str) -> str | None:
            node = response.css_first(selector)
            return node.text(strip=True) if node is not None else None

        stock = response.css_first("p.stock")
        yield {
            "title": text("h1"),
            "price": text("p.price"),
            "upc": text("table.product-info tr.upc td"),
            "category": text("table.product-info tr.category td"),
            "stock": int(stock.attributes["data-stock"]) if stock is not None else None,
            "url": response.url,
        }
