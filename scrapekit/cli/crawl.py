"""`scrapekit crawl NAME [-o|-O FILE]... [-a K=V]... [-s K=V]... [--log-level L] [--log-format F]
[--fresh] [--no-cache] [--wait] [--max-pages N] [--max-items N] [--max-duration D]`.

`runspider` shares the run options and the run itself (`add_run_options`, `run_crawl`)."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Any

from scrapekit import exitcodes, runlog
from scrapekit.cli.common import (
    add_spider_and_setting_options,
    load_project_settings,
    spider_arguments,
    spider_loader,
)
from scrapekit.engine import crawl
from scrapekit.exceptions import UsageError
from scrapekit.log import scrub_text
from scrapekit.scheduler.frontier.runs import NOT_DURABLE, RunStart
from scrapekit.settings import Settings, validators
from scrapekit.spider import Spider
from scrapekit.stats import FAILED


def register(commands: Any) -> None:
    """Add the `crawl` subcommand."""
    parser = commands.add_parser("crawl", help="run a spider")
    parser.add_argument("name", help="the spider's name (see `scrapekit list`)")
    add_run_options(parser)
    parser.set_defaults(run=run)


class _FeedAction(argparse.Action):
    """-o and -O append (flag, FILE) to one list, in the order given."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        feeds = [*(getattr(namespace, self.dest, None) or []), (self.const, str(values))]
        setattr(namespace, self.dest, feeds)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a crawl run, shared by `crawl` and `runspider`."""
    parser.add_argument(
        "-o",
        "--output",
        dest="feeds",
        action=_FeedAction,
        const="-o",
        default=[],
        metavar="FILE",
        help="append items to FILE (.jsonl, .json or .csv; may be repeated; {spider}, {time} "
        "and {run} in FILE are filled in)",
    )
    parser.add_argument(
        "-O",
        "--overwrite-output",
        dest="feeds",
        action=_FeedAction,
        const="-O",
        default=[],
        metavar="FILE",
        help="write items to FILE, replacing it (may be repeated, and mixed with -o)",
    )
    add_spider_and_setting_options(parser)
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--log-format", choices=["auto", "console", "json"], help="log renderer (default: auto)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="discard the unfinished crawl's state (not the login) and start over (FRESH)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="neither replay nor store responses in this run (HTTPCACHE_ENABLED=false)",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if the spider is already running, wait for it to end instead of exiting 75",
    )
    limits = parser.add_argument_group(
        "limits", "end the run cleanly (exit 0); the next run of the crawl continues it"
    )
    limits.add_argument("--max-pages", metavar="N", help="stop after N pages")
    limits.add_argument("--max-items", metavar="N", help="stop after N items")
    limits.add_argument(
        "--max-duration", metavar="D", help="stop after D: seconds, or 90s, 30m, 2h"
    )


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `30m`, `2h` or `1d`; UsageError (one line) for anything else."""
    seconds = validators.parse_duration(text)
    if not seconds:
        raise UsageError(
            f"--max-duration {text!r}: expected a duration above 0 such as 90, 90s, 30m or 2h"
        )
    return seconds


def _count(flag: str, text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"{flag} {text!r}: expected a whole number >= 1")
    return int(text)


def _limits(args: argparse.Namespace) -> list[str]:
    """The -s settings behind the flags: the limits, --fresh, --wait, --no-cache."""
    cmdline = []
    if args.max_pages is not None:
        cmdline.append(f"CLOSESPIDER_PAGECOUNT={_count('--max-pages', args.max_pages)}")
    if args.max_items is not None:
        cmdline.append(f"CLOSESPIDER_ITEMCOUNT={_count('--max-items', args.max_items)}")
    if args.max_duration is not None:
        cmdline.append(f"CLOSESPIDER_TIMEOUT={parse_duration(args.max_duration)}")
    if args.fresh:
        cmdline.append("FRESH=true")
    if args.wait:
        cmdline.append("RUN_LOCK_WAIT=true")
    if args.no_cache:
        cmdline.append("HTTPCACHE_ENABLED=false")
    return cmdline


def cmdline_settings(args: argparse.Namespace) -> list[str]:
    """The cmdline layer of a run: `-s` and the flags that stand for settings."""
    cmdline = list(args.settings) + _limits(args)
    if args.log_level:
        cmdline.append(f"LOG_LEVEL={args.log_level}")
    if args.log_format:
        cmdline.append(f"LOG_FORMAT={args.log_format}")
    return cmdline


def add_feeds(settings: Settings, feeds: list[tuple[str, str]]) -> None:
    """Add the -o/-O files to the feeds already configured (settings.toml, custom_settings).

    Paths are made absolute but not resolved: the format follows the name given, even for a
    symlink. The same file twice on one command line is a usage error.
    """
    if not feeds:
        return
    merged = dict(settings["FEEDS"])
    given: dict[str, str] = {}
    for flag, feed in feeds:
        path = os.path.abspath(feed)
        if path in given:
            raise UsageError(f"{flag} {feed}: this run already writes that file ({given[path]})")
        given[path] = f"{flag} {feed}"
        merged[path] = {"overwrite": flag == "-O"}
    settings.set("FEEDS", merged, priority="cmdline", source=", ".join(given.values()))
    settings.validate()


#: Allocations (net) between two collections of the youngest generation; CPython's default is
#: 700. See `_collect_less`.
GC_THRESHOLD = 10_000


def _collect_less() -> None:
    """Run the cyclic garbage collector less often in this process, which is the crawl's.

    A crawl makes and drops a few hundred objects a page (requests for every link, the HTTP
    stack's coroutines, the page's commit), and many live a few milliseconds: a page's commit
    to a durable frontier waits for its group commit. With the default threshold such
    short-lived objects are caught alive by a collection every few pages and pushed into older
    generations, which then need collecting too (a 2,000-page crawl of a local site ran some
    250 collections with the SQLite frontier, 45 with the memory one). Raising the threshold
    made such a crawl 3 % (memory frontier) to 6 % (SQLite) faster. Reference counting still
    frees at once whatever is not in a reference cycle; only cyclic garbage waits longer, for
    at most GC_THRESHOLD allocations. Only the CLI does this;
    `scrapekit.crawl()` leaves its caller's process as it is. A lower threshold set by the
    environment (a sitecustomize) is raised; a higher one is kept.
    """
    young, older, oldest = gc.get_threshold()
    if 0 < young < GC_THRESHOLD:  # 0: collection is off, and stays off
        gc.set_threshold(GC_THRESHOLD, older, oldest)


def run_crawl(
    spider_cls: type[Spider], settings: Settings, args: argparse.Namespace, **spider_kwargs: Any
) -> int:
    """Run one crawl with the run options in `args`; print the failure or early stop; the exit
    code (3 if a signal stopped it)."""
    add_feeds(settings, args.feeds)
    _collect_less()
    stats = crawl(spider_cls, settings, **spider_kwargs)
    reason = stats["finish_reason"]
    if reason in FAILED:
        # The summary's one-line `error`, so cron's mail and the log say the same thing.
        detail = stats.get("error") or str(reason).replace("_", " ")
        print(f"scrapekit: crawl failed: {scrub_text(str(detail))}", file=sys.stderr)
    elif early := runlog.stopped_early(str(reason), settings, _run_of(stats)):
        print(f"scrapekit: {early}", file=sys.stderr)
    return exitcodes.for_reason(str(reason))


def run(args: argparse.Namespace) -> int:
    """Load the project, find the spider, run the crawl."""
    cmdline = cmdline_settings(args)
    spider_kwargs = spider_arguments(args.spider_args)
    _root, settings = load_project_settings(cmdline)
    spider_cls = spider_loader(settings).load(args.name)
    _, settings = load_project_settings(cmdline, spider_cls=spider_cls)
    return run_crawl(spider_cls, settings, args, **spider_kwargs)


def _run_of(stats: dict[str, Any]) -> RunStart:
    run = stats.get("run")
    if not isinstance(run, dict) or run.get("run") is None:
        return NOT_DURABLE
    return RunStart(**run)
