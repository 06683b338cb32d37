"""The baseline: the smallest honest httpx2 + selectolax crawl loop, to measure scrapekit against.

It does the work the bench spider does and nothing more: one `httpx2.AsyncClient` with a pool
sized to the concurrency, CONCURRENCY worker tasks over an `asyncio.Queue`, every page parsed
with lexbor, one item (title, price, url) per page written as a JSON line, every `a[href]`
resolved with `urljoin` and deduplicated in a set. It stops when the queue drains (or after
`--timeout` seconds) and prints one JSON line: pages, items, errors, seconds, pages_per_second.

    python bench/bare.py http://127.0.0.1:PORT/ --concurrency 16 --output items.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import IO
from urllib.parse import urldefrag, urljoin

import httpx2
from selectolax.lexbor import LexborHTMLParser


class BareCrawler:
    """Queue + workers + seen-set: the hand-written crawler a framework has to beat."""

    def __init__(self, client: httpx2.AsyncClient, out: IO[str], max_pages: int) -> None:
        self.client = client
        self.out = out
        self.max_pages = max_pages
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.seen: set[str] = set()
        self.pages = 0
        self.items = 0
        self.errors = 0

    def add(self, url: str) -> None:
        url = urldefrag(url)[0]
        if url not in self.seen and len(self.seen) < self.max_pages:
            self.seen.add(url)
            self.queue.put_nowait(url)

    async def worker(self) -> None:
        while True:
            url = await self.queue.get()
            try:
                await self.fetch(url)
            except (httpx2.HTTPError, UnicodeError, ValueError) as exc:
                self.errors += 1
                print(f"bare: {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
            finally:
                self.queue.task_done()

    async def fetch(self, url: str) -> None:
        response = await self.client.get(url)
        self.pages += 1
        if response.status_code != 200:
            self.errors += 1
            return
        tree = LexborHTMLParser(response.text)
        title = tree.css_first("h1")
        price = tree.css_first(".price")
        item = {
            "title": title.text(strip=True) if title is not None else None,
            "price": price.text(strip=True) if price is not None else None,
            "url": url,
        }
        self.out.write(json.dumps(item) + "\n")
        self.items += 1
        for node in tree.css("a[href]"):
            href = node.attributes.get("href")
            if href and not href.startswith(("mailto:", "javascript:", "tel:")):
                self.add(urljoin(url, href.strip()))

    async def run(self, start_url: str, concurrency: int) -> None:
        self.add(start_url)
        async with asyncio.TaskGroup() as group:
            workers = [group.create_task(self.worker()) for _ in range(concurrency)]
            await self.queue.join()
            for task in workers:
                task.cancel()


async def crawl(args: argparse.Namespace, out: IO[str]) -> dict[str, float | int]:
    limits = httpx2.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    started = time.perf_counter()
    async with httpx2.AsyncClient(limits=limits, timeout=30.0) as client:
        crawler = BareCrawler(client, out, args.max_pages)
        async with asyncio.timeout(args.timeout):
            await crawler.run(args.url, args.concurrency)
    seconds = time.perf_counter() - started
    return {
        "pages": crawler.pages,
        "items": crawler.items,
        "errors": crawler.errors,
        "seconds": round(seconds, 4),
        "pages_per_second": round(crawler.pages / seconds, 2) if seconds else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="start URL (the bench site's page 0)")
    parser.add_argument("--concurrency", type=int, default=16, help="worker tasks (default 16)")
    parser.add_argument("--output", required=True, help="JSON-lines file for the items")
    parser.add_argument("--max-pages", type=int, default=1_000_000, help="safety bound on URLs")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after N seconds")
    args = parser.parse_args(argv)
    # Opened outside the loop; writes stay buffered and synchronous, like a feed exporter's.
    with open(args.output, "w", encoding="utf-8") as out:
        report = asyncio.run(crawl(args, out))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
