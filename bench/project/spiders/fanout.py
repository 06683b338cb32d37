"""The `fanout` spider: a crawl that comes to know `fanout`² URLs after `fanout` + 1 pages.

Page `/fan/0` links to `/fan/1` .. `/fan/F`; each of those links to F pages of its own
(`/fan/i*F+1` .. `/fan/i*F+F`), which link nowhere. Crawled breadth first (FIFO among equal
priorities), the first F + 1 pages put 1 + F + F² URLs into the frontier, F at a time, as a
crawl of a big catalogue or a sitemap does. The links are made up here rather than parsed, so
the bench measures the frontier, not the HTML parser.

    scrapekit crawl fanout -a url=http://127.0.0.1:PORT/ -a fanout=1000 \
        -s CLOSESPIDER_PAGECOUNT=1001 -s FRONTIER=sqlite
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapekit import Request, Response, Spider


class Fanout(Spider):
    """Two levels of `fanout` links each below `/fan/0`, one item per page."""

    name = "fanout"

    def __init__(
        self, url: str = "http://127.0.0.1:8000/", fanout: str = "1000", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.base = url.rstrip("/")
        self.fanout = int(fanout)
        self.start_urls = [f"{self.base}/fan/0"]

    def parse(self, response: Response) -> Iterator[dict[str, Any] | Request]:
        n = int(response.url.rsplit("/", 1)[-1])
        yield {"url": response.url}
        if n <= self.fanout:  # the root and the first level link on; the second does not
            first = n * self.fanout + 1
            for child in range(first, first + self.fanout):
                yield Request(f"{self.base}/fan/{child}")
