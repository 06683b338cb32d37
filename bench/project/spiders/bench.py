"""The `bench` spider: the same work as bench/bare.py, written against scrapekit's API.

One item (title, price, url) per page and every <a href> followed; scrapekit's scheduler does
the deduplication that bare.py does with a set.

    scrapekit crawl bench -a url=http://127.0.0.1:PORT/ -O items.jsonl -s CONCURRENCY=16
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapekit import Request, Response, Spider


class Bench(Spider):
    """Crawl the bench site from `url`, one item per page."""

    name = "bench"

    def __init__(self, url: str = "http://127.0.0.1:8000/", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [url]

    def parse(self, response: Response) -> Iterator[dict[str, Any] | Request]:
        title = response.css_first("h1")
        price = response.css_first(".price")
        yield {
            "title": title.text(strip=True) if title is not None else None,
            "price": price.text(strip=True) if price is not None else None,
            "url": response.url,
        }
        # bare.py selects a[href]; follow_all skips (and counts) <a> without a usable href.
        yield from response.follow_all(css="a")
