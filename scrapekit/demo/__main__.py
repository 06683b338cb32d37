"""`python -m scrapekit.demo COMMAND`: serve the demo site (more commands register beside `serve`).

`serve` prints the base URL as its first stdout line (and writes it to `--url-file`), then serves
until SIGINT or SIGTERM and exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from scrapekit.demo import DemoSite
from scrapekit.demo.run import add_run_command
from scrapekit.demo.sessions import DEMO_SECRET


def add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `serve` and its options."""
    parser = commands.add_parser("serve", help="serve the demo site until SIGINT/SIGTERM")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--url-file", type=Path, help="also write the base URL to this file")
    parser.add_argument("--products", type=int, default=500, help="number of products")
    parser.add_argument("--per-page", type=int, default=20, help="products per listing page")
    parser.add_argument(
        "--session-max-requests", type=int, help="requests a session serves before expiring"
    )
    parser.add_argument("--session-max-age", type=float, help="seconds before a session expires")
    parser.add_argument(
        "--require-login", action="store_true", help="catalogue pages redirect to /login"
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every reply")
    parser.add_argument("--username", default="demo", help="the login's username")
    parser.add_argument("--password", default="demo", help="the login's password")
    parser.add_argument(
        "--secret",
        default=DEMO_SECRET,
        help="signs session cookies: sites with the same secret accept each other's logins"
        " (default: the published demo secret)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Run the site until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    site = DemoSite(
        products=args.products,
        per_page=args.per_page,
        session_max_requests=args.session_max_requests,
        session_max_age=args.session_max_age,
        require_login=args.require_login,
        delay=args.delay,
        username=args.username,
        password=args.password,
        port=args.port,
        verbose=args.verbose,
        secret=args.secret,
    )
    try:
        with site:
            print(site.url, flush=True)
            if args.url_file is not None:
                _write_atomically(args.url_file, site.url + "\n")
            while not stop.wait(0.5):  # a timeout keeps signals prompt on every platform
                pass
    except OSError as exc:  # e.g. the port is taken
        print(f"scrapekit.demo: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _write_atomically(path: Path, text: str) -> None:
    """A reader polling `path` sees either no file or the whole URL, never half of it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    """The `python -m scrapekit.demo` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m scrapekit.demo", description="The scrapekit demo bookshop."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_command(commands)
    add_run_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the chosen subcommand; returns the exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
