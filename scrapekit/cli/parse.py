"""`scrapekit parse URL [--spider NAME] [-c CALLBACK] [--depth N] [--meta JSON] [--cb-kwargs JSON]
[-a K=V]... [-s K=V]... [--login]`: run one callback on one URL, print what it yields.

Each item and request the callback yields is one JSON line on stdout:
`{"type": "item", "depth": 1, "item": {...}}` and
`{"type": "request", "depth": 1, "method": "GET", "url": "...", "callback": "parse_product"}`.
With `--depth N` the yielded requests are fetched in turn with their own callbacks, N levels
in all (each URL once). Pages are fetched through the spider's session as `scrapekit fetch`
does (persisted login, no robots.txt); an HTTP error status the spider does not accept
(HTTPERROR_ALLOWED_CODES, meta["handle_httpstatus_list"]) skips the callback, as in a crawl.
Exit 0 when every page was fetched and parsed; 1 when a fetch failed, a status was not
accepted or a callback raised (each said on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any
from urllib.parse import urlsplit

from scrapekit import exitcodes
from scrapekit.cli import devopts
from scrapekit.cli.common import load_project_settings, spider_arguments, spider_loader
from scrapekit.devsession import DevSession, open_dev_session
from scrapekit.exceptions import UsageError
from scrapekit.items import to_dict
from scrapekit.request import Request
from scrapekit.session.fetchmeta import fetch_meta_problem
from scrapekit.spider import Spider
from scrapekit.spiders import CrawlSpider


def register(commands: Any) -> None:
    """Add the `parse` subcommand."""
    parser = commands.add_parser(
        "parse",
        help="run a spider's callback on one URL and print its items and requests",
        description="Fetch URL through the spider's session, run one callback on it and print "
        "each item and request it yields as a JSON line.",
    )
    parser.add_argument("url", help="the URL to parse")
    parser.add_argument(
        "-c",
        "--callback",
        metavar="CALLBACK",
        help="the spider method to call (default: what the crawl would call: parse, or a "
        "CrawlSpider's rule matching URL)",
    )
    parser.add_argument(
        "--depth",
        type=int,
        default=1,
        metavar="N",
        help="follow the yielded requests N-1 levels deep with their own callbacks (default 1)",
    )
    parser.add_argument("--meta", metavar="JSON", help="the request's meta, a JSON object")
    parser.add_argument(
        "--cb-kwargs", metavar="JSON", help="keyword arguments for the callback, a JSON object"
    )
    devopts.add_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Find the spider, fetch and parse level by level, print JSON lines."""
    if args.depth < 1:
        raise UsageError(f"--depth {args.depth}: expected a whole number >= 1")
    name = args.spider or _spider_for(args.url, args)
    spider_cls, settings = devopts.load(args, name)
    assert spider_cls is not None
    kwargs = spider_arguments(args.spider_args)
    meta = _check_meta(devopts.json_option("--meta", args.meta))
    cb_kwargs = devopts.json_option("--cb-kwargs", args.cb_kwargs)

    async def parse() -> int:
        async with open_dev_session(
            settings, spider_cls, login=args.login, spider_kwargs=kwargs
        ) as dev:
            if args.callback is not None:
                _check_callback(dev.spider, args.callback)
                request = Request(args.url, callback=args.callback)
            else:
                request = first_request(dev.spider, args.url)
            request.meta.update(meta)
            request.cb_kwargs.update(cb_kwargs)
            return await crawl_levels(dev, request, args.depth)

    try:
        errors = asyncio.run(parse())
    except BrokenPipeError:  # `scrapekit parse ... | head`: the reader has all it wanted
        devopts.quiet_stdout()
        return exitcodes.OK
    return exitcodes.FAILED_RUN if errors else exitcodes.OK


def _check_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta`, once the keys the fetch reads have values it can use; UsageError otherwise."""
    problem = fetch_meta_problem(meta, none_ok=False)  # null is no limit: spell one out here
    if problem is not None:
        key = problem.key
        raise UsageError(
            f"--meta: {key!r} must be {problem.expected}, got {json.dumps(problem.value)}; "
            f"e.g. --meta '{{\"{key}\": 10}}'"
        )
    return meta


def _spider_for(url: str, args: argparse.Namespace) -> str:
    """The one project spider whose allowed_domains cover the URL's host (as Scrapy picks)."""
    _, settings = load_project_settings(list(args.settings))
    loader = spider_loader(settings)
    host = (urlsplit(url).hostname or "").lower()
    matches = [
        name
        for name in loader.list()
        if any(
            host == domain.lower() or host.endswith("." + domain.lower())
            for domain in loader.load(name).allowed_domains
        )
    ]
    if len(matches) == 1:
        return matches[0]
    which = f"spiders {', '.join(matches)} all allow" if matches else "no spider allows"
    raise UsageError(f"{which} {host!r} (allowed_domains); name one with --spider NAME")


def first_request(spider: Spider, url: str) -> Request:
    """The request for URL with the callback the crawl would use: a CrawlSpider's matching
    rule (or its start-page parsing), else the spider's default callback."""
    if isinstance(spider, CrawlSpider):
        return spider.request_for(url)
    return Request(url)


def _check_callback(spider: Spider, name: str) -> None:
    try:
        spider.resolve_callback(name)
    except AttributeError:
        methods = sorted(
            n for n in dir(spider) if n.startswith("parse") and callable(getattr(spider, n))
        )
        raise UsageError(
            f"-c {name}: spider {spider.name!r} has no method {name!r} "
            f"(its parse methods: {', '.join(methods) or 'none'})"
        ) from None


async def crawl_levels(dev: DevSession, first: Request, depth: int) -> int:
    """Fetch and parse `first`, then what it yields, `depth` levels; return the error count."""
    errors = 0
    level_requests = [first]
    seen = {first.url}
    for level in range(1, depth + 1):
        following: list[Request] = []
        for request in level_requests:
            page = await dev.parse(request)
            if page.error is not None:
                errors += 1
                print(f"scrapekit: {page.error}", file=sys.stderr)
            for output in page.outputs:
                if isinstance(output, Request):
                    emit(request_line(dev.spider, output, level))
                    if level < depth and output.url not in seen:
                        seen.add(output.url)
                        following.append(output)
                else:
                    emit({"type": "item", "depth": level, "item": to_dict(output)})
        level_requests = following
    return errors


def request_line(spider: Spider, request: Request, depth: int) -> dict[str, Any]:
    """The JSON line of a yielded request, naming the callback the crawl would run."""
    return {
        "type": "request",
        "depth": depth,
        "method": request.method,
        "url": request.url,
        "callback": callback_name(spider, request),
    }


def callback_name(spider: Spider, request: Request) -> str:
    """The name of what parses `request` (a CrawlSpider names the rule's callback)."""
    if isinstance(spider, CrawlSpider):
        return spider.callback_name(request)
    callback = request.callback
    if callback is None:
        callback = spider.resolve_callback(None)
    return callback if isinstance(callback, str) else getattr(callback, "__name__", repr(callback))


def emit(line: dict[str, Any]) -> None:
    """One JSON line on stdout, flushed (a long --depth run shows progress)."""
    print(json.dumps(line, ensure_ascii=False, default=str), flush=True)
