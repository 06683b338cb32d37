"""`scrapekit runs NAME`: every recorded run of a spider's crawls, oldest first.

Reads the frontier file without the run lock and changes nothing, so it works while a crawl
runs; with FRONTIER = "memory" there is nothing to read.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from scrapekit.cli.runstate import SpiderState, duration, read, spider_state, table, when
from scrapekit.scheduler.frontier.runs import RunRow, all_runs


def register(commands: Any) -> None:
    """Add the `runs` subcommand."""
    parser = commands.add_parser("runs", help="list the recorded runs of a spider's crawls")
    parser.add_argument("name", help="the spider's name (see `scrapekit list`)")
    parser.set_defaults(run=run)


def ended_as(row: RunRow, where: SpiderState) -> str:
    """How the run ended, or that it is running (its process holds the run lock)."""
    if row.ended is not None:
        return row.finish_reason or "-"
    held = where.holder()
    if held is not None and held.pid == row.pid and held.alive:
        return "running"
    return "died"  # no end recorded and its process is gone: the next run records it so


def run(args: argparse.Namespace) -> int:
    """Print one line per run: id, crawl, new or resumed, start, duration, end, counts."""
    where = spider_state(args.name)
    if not where.durable:
        print(f"spider {args.name!r} keeps no durable state (FRONTIER = memory): no runs recorded")
        return 0
    history = read(where.path, all_runs) if where.path.exists() else None
    if history is None:
        print(f"spider {args.name!r} has no runs yet (no state in {where.path})")
        return 0
    now = time.time()
    rows: list[tuple[str, ...]] = [
        ("RUN", "CRAWL", "KIND", "STARTED", "DURATION", "ENDED AS", "PAGES", "ITEMS",
         "ERRORS", "EXIT"),
    ]  # fmt: skip
    for row in history:
        how = ended_as(row, where)
        end = row.ended if row.ended is not None else (now if how == "running" else row.updated)
        exit_code = "-" if row.exit_code is None else str(row.exit_code)
        kind = "resumed" if row.resumed else "new"
        cells = [str(row.id), str(row.crawl), kind, when(row.started)]
        cells += [duration(end - row.started), how, str(row.pages), str(row.items)]
        rows.append((*cells, str(row.errors), exit_code))
    print(table(rows))
    print(f"{len(history)} runs in {where.path}")
    return 0
