"""`python -m scrapekit.demo run`: what `make demo` does, end to end.

Starts the demo site, runs the real CLI (`scrapekit crawl demo -O FILE -a base_url=URL`) in the
current project, stops the site, then checks the output: every product must be there, with the
stock count only a logged-in session can see.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from scrapekit.demo import DemoSite


def add_run_command(commands: Any) -> None:
    """Register `run` and its options."""
    parser = commands.add_parser("run", help="serve the site, crawl it with the demo spider, check")
    parser.add_argument("--output", type=Path, default=Path("demo.jsonl"), help="items file")
    parser.add_argument("--products", type=int, default=500, help="number of products")
    parser.add_argument(
        "--session-max-requests",
        type=int,
        default=200,
        help="requests a login session serves before the shop expires it (default 200: the "
        "crawl has to log in again a few times)",
    )
    parser.add_argument(
        "crawl_args", nargs="*", help="extra `scrapekit crawl` arguments (after --)"
    )
    parser.set_defaults(handler=run)


def check_output(path: Path, site: DemoSite) -> list[str]:
    """Problems with the crawl's output: missing products, missing logged-in fields."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        items = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as exc:
        return [f"{path}: cannot read the items ({exc})"]
    by_upc = {item.get("upc"): item for item in items}
    problems = []
    missing = [p for p in site.products if p.upc not in by_upc]
    if missing:
        problems.append(f"{len(missing)} products missing, e.g. {missing[0].path}")
    no_stock = [
        p for p in site.products if p.upc in by_upc and by_upc[p.upc].get("stock") != p.stock
    ]
    if no_stock:
        problems.append(f"{len(no_stock)} products without their logged-in stock count")
    if len(items) != len(by_upc):
        problems.append(f"{len(items) - len(by_upc)} duplicate items")
    return problems


def run(args: argparse.Namespace) -> int:
    """Serve, crawl through the CLI, stop, check; exit 0 only if every product was scraped."""
    site = DemoSite(products=args.products, session_max_requests=args.session_max_requests)
    url = site.start()
    command = ["crawl", "demo", "-O", str(args.output), "-a", f"base_url={url}", *args.crawl_args]
    print(f"demo site at {url}\n$ scrapekit {' '.join(command)}", flush=True)
    try:
        code = subprocess.call([sys.executable, "-m", "scrapekit", *command])
    finally:
        site.stop()
    stats = site.stats
    print(
        f"demo site served {stats.requests} requests, {stats.logins} logins "
        f"({stats.session_expiries} pages answered 'session expired')",
        flush=True,
    )
    if code != 0:
        print(f"the crawl exited with {code}", file=sys.stderr)
        return code
    problems = check_output(args.output, site)
    for problem in problems:
        print(f"{args.output}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{args.output}: all {len(site.products)} products, each with its logged-in stock count")
    return 0
