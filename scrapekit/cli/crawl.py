"""`scrapekit crawl NAME [-o|-O FILE] [-a K=V]... [-s K=V]... [--log-level L] [--log-format F]`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from scrapekit.cli.common import load_project_settings, spider_loader
from scrapekit.engine import crawl
from scrapekit.exceptions import UsageError
from scrapekit.log import scrub_text
from scrapekit.stats import FAILED, INTERRUPTED


def register(commands: Any) -> None:
    """Add the `crawl` subcommand."""
    parser = commands.add_parser("crawl", help="run a spider")
    parser.add_argument("name", help="the spider's name (see `scrapekit list`)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "-o", "--output", metavar="FILE", help="append items to FILE (.jsonl, .json or .csv)"
    )
    output.add_argument(
        "-O", "--overwrite-output", metavar="FILE", help="write items to FILE, replacing it"
    )
    parser.add_argument(
        "-a",
        dest="spider_args",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a spider argument (may be repeated)",
    )
    parser.add_argument(
        "-s",
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting (may be repeated)",
    )
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--log-format", choices=["auto", "console", "json"], help="log renderer (default: auto)"
    )
    parser.set_defaults(run=run)


def _spider_kwargs(pairs: list[str]) -> dict[str, str]:
    kwargs = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-a {pair!r}: expected NAME=VALUE")
        kwargs[name.strip()] = value
    return kwargs


def run(args: argparse.Namespace) -> int:
    """Load the project, find the spider, run the crawl; exit 3 if a signal stopped it."""
    cmdline = list(args.settings)
    if args.log_level:
        cmdline.append(f"LOG_LEVEL={args.log_level}")
    if args.log_format:
        cmdline.append(f"LOG_FORMAT={args.log_format}")
    spider_kwargs = _spider_kwargs(args.spider_args)
    _root, settings = load_project_settings(cmdline)
    spider_cls = spider_loader(settings).load(args.name)
    _, settings = load_project_settings(cmdline, spider_cls=spider_cls)
    if feed := args.output or args.overwrite_output:
        # -o/-O add a feed to those already configured (settings.toml, custom_settings).
        feeds = dict(settings["FEEDS"])
        # Absolute but not resolved: the format follows the name given, even for a symlink.
        feeds[os.path.abspath(feed)] = {"overwrite": bool(args.overwrite_output)}
        flag = "-O" if args.overwrite_output else "-o"
        settings.set("FEEDS", feeds, priority="cmdline", source=f"{flag} {feed}")
        settings.validate()
    stats = crawl(spider_cls, settings, **spider_kwargs)
    reason = stats["finish_reason"]
    if reason in FAILED:
        # The summary's one-line `error`, so cron's mail and the log say the same thing.
        detail = stats.get("error") or str(reason).replace("_", " ")
        print(f"scrapekit: crawl failed: {scrub_text(str(detail))}", file=sys.stderr)
        return 1
    return 3 if reason in INTERRUPTED else 0
