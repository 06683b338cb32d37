"""What the selector layer costs: a parse callback's extraction, raw selectolax vs `css()`.

(Not named selectors.py: a script's folder comes first on sys.path, and that name would hide
the standard library's `selectors`, which asyncio imports.)

    .venv/bin/python bench/selector_cost.py                 # 200 bench-site pages, 15 rounds
    .venv/bin/python bench/selector_cost.py --pages 50 --rounds 5

Every variant starts from the page's bytes, as a callback does in a crawl: a fresh `Response`
(decode, lexbor parse on first use), then the bench spider's extraction (title, price, every
link's href). The pages are bench/site.py's, rendered in-process (no HTTP). Variants:

- `raw`: selectolax itself, on `response.tree` (what `css()` returned before the layer);
- `nodes`: the same code through `response.css()`/`css_first()` (Selectors acting as nodes);
- `scrapy`: Scrapy's idioms (``h1::text``, ``.price::text``, ``a::attr(href)``, `.get()`,
  `.getall()`);
- `engine`: selectolax again, making the calls `css()`/`css_first()` make underneath (one CSS
  engine shared by every page, `tags()` for a bare tag name): what the layer's own Python
  costs is `nodes` over `engine`.

Rounds run the variants one after the other (raw, nodes, scrapy, engine, raw, ...), each over
every page, so drift in the machine's speed hits all variants alike. The headline is the median,
over rounds, of each variant's round time over raw's in the same round (with the range); best
rounds are shown too.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from results import median_range
from selectolax.lexbor import LexborCSSSelector

from scrapekit import Response

HEADERS = {"content-type": "text/html; charset=utf-8"}


def build_site(count: int) -> dict[str, bytes]:
    """bench/site.py's pages (loaded by path: `import site` is the standard library's)."""
    spec = importlib.util.spec_from_file_location("bench_site", Path(__file__).parent / "site.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pages: dict[str, bytes] = module.build_site(count)
    return pages


def raw(response: Response) -> tuple[Any, ...]:
    tree = response.tree
    title = tree.css_first("h1")
    price = tree.css_first(".price")
    hrefs = [a.attributes.get("href") for a in tree.css("a")]
    return (
        title.text(strip=True) if title is not None else None,
        price.text(strip=True) if price is not None else None,
        hrefs,
    )


def nodes(response: Response) -> tuple[Any, ...]:
    title = response.css_first("h1")
    price = response.css_first(".price")
    hrefs = [a.attributes.get("href") for a in response.css("a")]
    return (
        title.text(strip=True) if title is not None else None,
        price.text(strip=True) if price is not None else None,
        hrefs,
    )


def scrapy(response: Response) -> tuple[Any, ...]:
    title = response.css("h1::text").get()
    price = response.css(".price::text").get()
    hrefs = response.css("a::attr(href)").getall()
    return (
        title.strip() if title is not None else None,
        price.strip() if price is not None else None,
        hrefs,
    )


ENGINE = LexborCSSSelector()  # one for every page, as scrapekit/_css.py keeps one per thread


def engine(response: Response) -> tuple[Any, ...]:
    tree = response.tree
    root = tree.root
    assert root is not None
    title = ENGINE.find_first("h1", root)
    price = ENGINE.find_first(".price", root)
    hrefs = [a.attributes.get("href") for a in tree.tags("a")]
    return (
        title[0].text(strip=True) if title else None,
        price[0].text(strip=True) if price else None,
        hrefs,
    )


VARIANTS: dict[str, Callable[[Response], tuple[Any, ...]]] = {
    "raw": raw,
    "nodes": nodes,
    "scrapy": scrapy,
    "engine": engine,
}


def one_round(pages: list[tuple[str, bytes]], extract: Callable[[Response], Any]) -> float:
    """µs per page for one pass of `extract` over every page."""
    start = time.perf_counter_ns()
    for url, body in pages:
        extract(Response(url, headers=HEADERS, body=body))
    return (time.perf_counter_ns() - start) / 1000 / len(pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200, help="bench-site pages per round")
    parser.add_argument("--rounds", type=int, default=100, help="counted rounds per variant")
    args = parser.parse_args(argv)
    site = build_site(args.pages)
    pages = [(f"http://127.0.0.1:8000{path}", body) for path, body in site.items()]
    for url, body in pages[:20]:  # every variant extracts the same values
        results = {
            name: f(Response(url, headers=HEADERS, body=body)) for name, f in VARIANTS.items()
        }
        if len({repr(r) for r in results.values()}) != 1:
            print(f"variants disagree on {url}: {results}", file=sys.stderr)
            return 1
    for extract in VARIANTS.values():  # warm-up: caches, selector parsing, page faults
        one_round(pages, extract)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    gc.collect()
    for _ in range(args.rounds):
        for name, extract in VARIANTS.items():
            times[name].append(one_round(pages, extract))
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(pages)} pages x {args.rounds} rounds, µs per page, load average {load}\n")
    print("| variant | median (range) | best round | to raw: paired median (range) | best/best |")
    print("|---|---|---|---|---|")
    best_raw = min(times["raw"])
    paired = {
        name: [t / r for t, r in zip(times[name], times["raw"], strict=True)] for name in VARIANTS
    }
    for name in VARIANTS:
        print(
            f"| {name} | {median_range(times[name], '.1f')} | {min(times[name]):.1f} | "
            f"{median_range(paired[name], '.3f')} | {min(times[name]) / best_raw:.3f} |"
        )
    print()
    for name in ("nodes", "scrapy"):
        glue = [t / e for t, e in zip(times[name], times["engine"], strict=True)]
        print(f"{name} over engine, paired median (range): {median_range(glue, '.3f')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
