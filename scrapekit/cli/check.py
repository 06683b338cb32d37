"""`scrapekit check [NAME] [-l] [-a K=V]... [-s K=V]... [--login]`: run the spider contracts in
callback docstrings (`scrapekit/contracts.py`) against the live site, print a pass/fail table.

Every spider of the project without NAME. Pages are fetched through each spider's persisted
session as `scrapekit fetch --spider` does: read-only, no login unless `--login` (a contract
on a page behind the login then needs a session the crawl already logged in, or --login).
Exit 0 when every contract passed (a spider without contracts is listed as such), 1 when one
failed.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from scrapekit import exitcodes
from scrapekit.cli import devopts
from scrapekit.cli.common import load_project_settings, spider_arguments, spider_loader
from scrapekit.contracts import Outcome, run_contracts, spider_contracts
from scrapekit.devsession import open_dev_session
from scrapekit.settings import Settings
from scrapekit.spider import Spider

HEADER = ("SPIDER", "CALLBACK", "CONTRACT", "RESULT", "DETAIL")


def register(commands: Any) -> None:
    """Add the `check` subcommand."""
    parser = commands.add_parser(
        "check",
        help="run the contracts in the spiders' callback docstrings against the site",
        description="Check each callback with an @url contract: fetch the page, run the "
        "callback, judge @returns and @scrapes. Exit 1 if a contract fails.",
    )
    parser.add_argument("name", nargs="?", help="the spider to check (default: all)")
    parser.add_argument(
        "-l", "--list", action="store_true", help="list the contracts without running them"
    )
    devopts.add_options(parser, spider_flag=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check one spider or all of them; print the table and a summary line."""
    if args.name is not None:
        names = [args.name]
    else:
        _, settings = load_project_settings(list(args.settings))
        names = spider_loader(settings).list()
    kwargs = spider_arguments(args.spider_args)
    rows: list[tuple[str, ...]] = []
    failed = passed = 0
    for name in names:
        spider_cls, settings = devopts.load(args, name)
        assert spider_cls is not None
        if args.list:
            rows += _listing(name, spider_cls(**kwargs))
            continue
        outcomes = asyncio.run(_check(spider_cls, settings, args.login, kwargs))
        if outcomes is None:
            rows.append((name, "-", "-", "none", "no contracts in its docstrings"))
            continue
        for outcome in outcomes:
            result = "ok" if outcome.passed else "FAIL"
            rows.append((name, outcome.callback, outcome.contract, result, outcome.detail))
            passed += outcome.passed
            failed += not outcome.passed
    _print_table(rows)
    if args.list:
        return exitcodes.OK
    spiders = f"{len(names)} spider{'s' if len(names) != 1 else ''}"
    print(f"checked {spiders}: {passed} passed, {failed} failed")
    return exitcodes.FAILED_RUN if failed else exitcodes.OK


async def _check(
    spider_cls: type[Spider], settings: Settings, login: bool, kwargs: dict[str, str]
) -> list[Outcome] | None:
    """The outcomes of every contract of the spider; None when it has none."""
    async with open_dev_session(settings, spider_cls, login=login, spider_kwargs=kwargs) as dev:
        callbacks = spider_contracts(dev.spider)
        if not callbacks:
            return None
        outcomes: list[Outcome] = []
        for prepared in callbacks:
            outcomes += await run_contracts(dev, prepared)
        return outcomes


def _listing(name: str, spider: Spider) -> list[tuple[str, ...]]:
    callbacks = spider_contracts(spider)
    if not callbacks:
        return [(name, "-", "-", "", "no contracts in its docstrings")]
    return [
        (name, prepared.callback, str(contract), "", prepared.problem or "")
        for prepared in callbacks
        for contract in prepared.contracts
    ]


def _print_table(rows: list[tuple[str, ...]]) -> None:
    table = [HEADER, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
