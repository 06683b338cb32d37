"""`scrapekit shell [URL] [--spider NAME] [-c CODE] [-a K=V]... [-s K=V]... [--login]`: an
interactive Python shell on a page, as the crawler (with --spider: the logged-in crawl) sees it.

IPython when it is installed, else the standard `code.interact`. The shell's names are listed
by `shelp()`. The session lives on an event loop this command runs between the shell's lines,
so `fetch()` and `run()` are plain calls, not awaits. `-c CODE` evaluates CODE (an expression:
its value is printed, as Scrapy's `shell -c` does; statements: run) and exits, for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import code
import sys
import traceback
from collections.abc import Coroutine
from typing import Any, TypeVar

from scrapekit import exitcodes
from scrapekit.cli import devopts
from scrapekit.cli.common import spider_arguments
from scrapekit.devsession import DevSession, open_dev_session
from scrapekit.exceptions import FetchError
from scrapekit.log import error_line, scrub_text
from scrapekit.request import Request
from scrapekit.response import Response
from scrapekit.spiderloader import type_name

T = TypeVar("T")

HELP = """\
scrapekit shell: what is available
  response    the last page fetched (a scrapekit Response: .css(), .css_first(), .text, ...)
  request     the Request that fetched it
  session     the session (headers, auth, cookies) every fetch goes through
  spider      the spider ({spider}); settings: its settings
  fetch(url_or_request)   fetch a page and make it `response`
  run(coroutine)          await something on the session's loop: run(session.get(url))
  shelp()     this list
"""


def register(commands: Any) -> None:
    """Add the `shell` subcommand."""
    parser = commands.add_parser(
        "shell",
        help="open a Python shell on a page, as the crawler sees it",
        description="Open an interactive Python shell (IPython if installed) with the page "
        "fetched through the session a crawl would use (robots.txt is not consulted).",
    )
    parser.add_argument("url", nargs="?", help="the URL to fetch first (optional)")
    parser.add_argument(
        "-c", dest="code", metavar="CODE", help="evaluate CODE, print the result and exit"
    )
    devopts.add_options(parser)
    parser.set_defaults(run=run)


class ShellState:
    """The shell's names, kept current as `fetch()` replaces the response."""

    def __init__(self, loop: asyncio.AbstractEventLoop, dev: DevSession) -> None:
        self.loop = loop
        self.dev = dev
        self.namespace: dict[str, Any] = {
            "request": None,
            "response": None,
            "session": dev.session,
            "spider": dev.spider,
            "settings": dev.settings,
            "fetch": self.fetch,
            "run": self.run,
            "shelp": self.shelp,
        }

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the session's event loop and return its result."""
        return self.loop.run_until_complete(coroutine)

    def fetch(self, target: str | Request) -> Response:
        """Fetch a URL or Request and make it the shell's `response` (and `request`)."""
        request = target if isinstance(target, Request) else Request(target)
        response = self.run(self.dev.fetch(request))
        self.namespace.update(request=request, response=response)
        return response

    def shelp(self) -> None:
        """Print what the shell offers."""
        print(HELP.format(spider=self.dev.spider.name))


def run(args: argparse.Namespace) -> int:
    """Open the session, fetch URL, then evaluate -c CODE or start the interactive shell."""
    spider_cls, settings = devopts.load(args, args.spider)
    kwargs = spider_arguments(args.spider_args)
    loop = asyncio.new_event_loop()
    try:
        opened = open_dev_session(settings, spider_cls, login=args.login, spider_kwargs=kwargs)
        dev = loop.run_until_complete(opened.__aenter__())
        try:
            shell = ShellState(loop, dev)
            if args.url:
                try:
                    shell.fetch(args.url)
                except FetchError as exc:
                    print(f"scrapekit: fetch failed: {error_line(exc)}", file=sys.stderr)
                    return exitcodes.FAILED_RUN
            if args.code is not None:
                return evaluate(args.code, shell.namespace)
            interact(shell)
            return exitcodes.OK
        finally:
            loop.run_until_complete(opened.__aexit__(None, None, None))
    finally:
        loop.close()


def evaluate(source: str, namespace: dict[str, Any]) -> int:
    """Print an expression's value, or run statements.

    CODE that is not Python is a usage error (exit 2); CODE that raises prints one line, the
    error and CODE's line, and exits 1: scrapekit's own frames would only hide the message.
    """
    expression = True
    try:
        compiled = compile(source, "<-c>", "eval")
    except SyntaxError:
        expression = False
        try:
            compiled = compile(source, "<-c>", "exec")
        except SyntaxError as exc:
            print(
                f"scrapekit: shell -c: CODE is not valid Python: {exc.msg} (line {exc.lineno}); "
                "quote CODE for the shell, e.g. -c 'response.css(\"title::text\").get()'",
                file=sys.stderr,
            )
            return exitcodes.USAGE
    try:
        if expression:
            print(eval(compiled, namespace))
        else:
            exec(compiled, namespace)
    except Exception as exc:
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<-c>"]
        where = f" (CODE line {lines[-1]})" if lines else ""
        message = scrub_text(f"{type_name(exc)}: {exc}")
        print(f"scrapekit: shell -c raised {message}{where}", file=sys.stderr)
        return exitcodes.FAILED_RUN
    return exitcodes.OK


def interact(shell: ShellState) -> None:
    """IPython when installed, else the standard interactive console."""
    banner = HELP.format(spider=shell.dev.spider.name)
    try:
        from IPython.terminal.embed import InteractiveShellEmbed  # type: ignore[import-not-found]
    except ImportError:
        code.interact(banner=banner, local=shell.namespace, exitmsg="")
        return
    InteractiveShellEmbed(banner1=banner, user_ns=shell.namespace)()
