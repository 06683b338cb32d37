"""`scrapekit fetch URL [--spider NAME] [--headers [--values]] [-a K=V]... [-s K=V]... [--login]`:
print a page as the crawler gets it.

The body goes to stdout decoded as the crawler decodes it (a body that is not text: its raw
bytes); `--headers` prints the status line and response headers instead, Set-Cookie values
hidden unless `--values`. Any status is printed (exit 0); a fetch that fails (unreachable,
timeout, too large) is one line and exit 1. See `scrapekit/devsession.py` for the session
(`--spider`, `--login`) and robots.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from http import HTTPStatus
from typing import Any

from scrapekit import exitcodes
from scrapekit.cli import devopts
from scrapekit.cli.common import spider_arguments
from scrapekit.devsession import open_dev_session
from scrapekit.exceptions import FetchError
from scrapekit.log import error_line
from scrapekit.response import Response

#: Media types printed decoded; anything else is written as raw bytes.
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def register(commands: Any) -> None:
    """Add the `fetch` subcommand."""
    parser = commands.add_parser(
        "fetch",
        help="print a page as the crawler gets it",
        description="Fetch URL through the session a crawl would use and print the body "
        "(robots.txt is not consulted: you asked for this URL).",
    )
    parser.add_argument("url", help="the URL to fetch")
    parser.add_argument(
        "--headers", action="store_true", help="print the response headers instead of the body"
    )
    parser.add_argument(
        "--values", action="store_true", help="with --headers: show Set-Cookie values too"
    )
    devopts.add_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fetch the URL and print it; exit 1 with one line if the fetch failed."""
    spider_cls, settings = devopts.load(args, args.spider)
    kwargs = spider_arguments(args.spider_args)

    async def fetch() -> Response:
        async with open_dev_session(
            settings, spider_cls, login=args.login, spider_kwargs=kwargs
        ) as dev:
            return await dev.fetch(args.url)

    try:
        response = asyncio.run(fetch())
    except FetchError as exc:
        print(f"scrapekit: fetch failed: {error_line(exc)}", file=sys.stderr)
        return exitcodes.FAILED_RUN
    try:
        write(response, headers=args.headers, values=args.values)
    except BrokenPipeError:  # `scrapekit fetch URL | head`: the reader has all it wanted
        devopts.quiet_stdout()
    return exitcodes.OK


def write(response: Response, *, headers: bool, values: bool) -> None:
    """The headers, or the body: decoded when it is text, else its raw bytes."""
    ctype = response.content_type
    if headers:
        sys.stdout.write(header_lines(response, values=values))
    elif ctype.startswith(TEXT_TYPES) or ctype.endswith(("+json", "+xml")) or not ctype:
        sys.stdout.write(response.text)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(response.body)
    sys.stdout.flush()


def header_lines(response: Response, *, values: bool = False) -> str:
    """The status line and headers, one per line, Set-Cookie values hidden unless `values`."""
    try:
        phrase = " " + HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    lines = [f"{response.http_version} {response.status}{phrase}"]
    for raw_name, raw_value in response.headers.raw:  # as the server spelled them
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name.lower() == "set-cookie" and not values:
            cookie, sep, attributes = value.partition(";")
            value = f"{cookie.partition('=')[0]}=<hidden>{sep}{attributes}"
        lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n"
