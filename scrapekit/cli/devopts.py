"""What `fetch`, `shell`, `parse` and `check` share: the --spider/-a/-s/--login options, and
loading the spider and its settings (outside a project too, without --spider)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from scrapekit import log as logsetup
from scrapekit.cli.common import (
    add_spider_and_setting_options,
    load_project_settings,
    load_settings_anywhere,
    spider_loader,
)
from scrapekit.exceptions import UsageError
from scrapekit.settings import Settings
from scrapekit.spider import Spider


def add_options(parser: argparse.ArgumentParser, *, spider_flag: bool = True) -> None:
    """Add -a, -s, --login, --log-level (and --spider NAME unless the command takes NAME)."""
    if spider_flag:
        parser.add_argument(
            "--spider",
            metavar="NAME",
            help="use this spider's settings and its persisted (logged-in) session",
        )
    add_spider_and_setting_options(parser)
    parser.add_argument(
        "--login",
        action="store_true",
        help="log the spider's session in if it is not (as a crawl would) and save the jar; "
        "without it the jar is only read and nothing logs in",
    )
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")


def load(args: argparse.Namespace, name: str | None) -> tuple[type[Spider] | None, Settings]:
    """The spider called `name` (None: no spider) and the settings it would crawl with, with
    logging configured from them; outside a project without a spider, the defaults."""
    cmdline = list(args.settings)
    if args.log_level:
        cmdline.append(f"LOG_LEVEL={args.log_level}")
    if name is None:
        settings = load_settings_anywhere(cmdline)
        spider_cls = None
    else:
        _, settings = load_project_settings(cmdline)
        spider_cls = spider_loader(settings).load(name)
        _, settings = load_project_settings(cmdline, spider_cls=spider_cls)
    logsetup.configure(settings["LOG_LEVEL"], settings["LOG_FORMAT"])
    return spider_cls, settings


def json_option(flag: str, text: str | None) -> dict[str, Any]:
    """A JSON object given on the command line ({} when not given); UsageError otherwise."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{flag} {text!r}: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} {text!r}: expected a JSON object such as '{{\"key\": 1}}'")
    return value


def quiet_stdout() -> None:
    """After a BrokenPipeError: point stdout at /dev/null so exiting does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
