"""`scrapekit status NAME`: a spider's crawl now, from its frontier file and run lock.

Says whether the crawl is new, running, unfinished (the next `scrapekit crawl` resumes it) or
finished, and what its frontier holds: pending, in flight, done, paused hosts, seen. Reads the
file without the run lock and changes nothing, so it works while a crawl runs.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from scrapekit.cli.runstate import SpiderState, read, spider_state, when
from scrapekit.scheduler.frontier.runs import CrawlStatus, crawl_status


def register(commands: Any) -> None:
    """Add the `status` subcommand."""
    parser = commands.add_parser("status", help="show a spider's crawl now")
    parser.add_argument("name", help="the spider's name (see `scrapekit list`)")
    parser.set_defaults(run=run)


def _lock_line(where: SpiderState) -> tuple[str, bool]:
    """The run lock in words, and whether a live process holds it."""
    held = where.holder()
    if held is None:
        return "free", False
    if held.pid is None:
        return f"unreadable content in {where.lock} (ignored: the next crawl rewrites it)", False
    if held.alive:
        return f"held by pid {held.pid} since {when(held.since)} (running)", True
    return f"left by pid {held.pid} since {when(held.since)} (not running; taken over next)", False


def _phase(status: CrawlStatus, running: bool) -> str:
    if running:
        return "running"
    if status.last is None:
        return "new (no run yet)"
    if status.unfinished:
        return "unfinished (the next `scrapekit crawl` resumes it)"
    return "finished (the next `scrapekit crawl` begins a new crawl)"


def run(args: argparse.Namespace) -> int:
    """Print the crawl's state, one `name: value` line each."""
    where = spider_state(args.name)
    if not where.durable:
        print(f"spider {args.name!r} keeps no durable state (FRONTIER = memory)")
        return 0
    now = time.time()
    status = read(where.path, lambda conn: crawl_status(conn, now)) if where.path.exists() else None
    if status is None:
        print(f"spider {args.name!r}: new, no state yet (it will live in {where.path})")
        return 0
    lock, running = _lock_line(where)
    last = status.last
    in_flight = last.in_flight if running and last is not None and last.ended is None else 0
    start = (
        "read to the end"
        if status.start_done
        else f"{status.start_stored} outputs stored, not read to the end"
    )
    paused = ", ".join(f"{key} until {when(until)}" for key, until in status.paused) or "none"
    lines = [
        ("state", str(where.path)),
        ("crawl", f"{status.crawl}: {_phase(status, running)}"),
        ("pending", f"{status.pending} ({status.waiting} waiting for a retry's time)"),
        ("in flight", str(in_flight)),
        ("done", f"{status.done} pages"),
        ("seen", str(status.seen)),
        ("start()", start),
        ("paused", paused),
        ("run lock", lock),
    ]
    if last is not None:
        how = "running" if running and last.ended is None else (last.finish_reason or "died")
        lines.append(
            (
                "last run",
                f"{last.id} ({'resumed' if last.resumed else 'new'}), started "
                f"{when(last.started)}, {how}: {last.pages} pages, {last.items} items, "
                f"{last.errors} errors",
            )
        )
    for name, value in lines:
        print(f"{name + ':':<10} {value}")
    return 0
