"""`scrapekit session show|clear NAME`: look at or delete a persisted login session.

NAME is the session's name: SESSION_NAME, which defaults to the spider's name. Cookie values
are hidden unless `--values` is given: they are the credentials of the login.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from scrapekit import state
from scrapekit.cli.common import load_project_settings
from scrapekit.exceptions import UsageError
from scrapekit.session.cookiejar import Cookie
from scrapekit.session.cookiestore import remove_jar
from scrapekit.settings import Settings


def register(commands: Any) -> None:
    """Add the `session` subcommand and its actions."""
    parser = commands.add_parser("session", help="show or clear a persisted login session")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="list the session's cookies (values hidden)")
    show.add_argument("name", help="the session name (SESSION_NAME; by default the spider's)")
    show.add_argument("--values", action="store_true", help="also print cookie values")
    show.set_defaults(run=run_show)
    clear = actions.add_parser("clear", help="delete the session's cookie jar (log out)")
    clear.add_argument("name", help="the session name (SESSION_NAME; by default the spider's)")
    clear.set_defaults(run=run_clear)


def _known(settings: Settings) -> list[str]:
    root = state.state_root(settings)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{state.SESSION_DB}"))


def _expiry(cookie: Cookie, now: float) -> str:
    if cookie.expires is None:
        return "session"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(cookie.expires))
    return stamp if cookie.expires > now else f"{stamp} (expired)"


def _flags(cookie: Cookie) -> str:
    flags = [
        name
        for name, on in (
            ("secure", cookie.secure),
            ("httponly", cookie.http_only),
            ("host-only", cookie.host_only),
        )
        if on
    ]
    if cookie.same_site:
        flags.append(f"samesite={cookie.same_site}")
    return ",".join(flags) or "-"


async def _load(settings: Settings, name: str) -> list[Cookie]:
    """The jar's cookies, read only: showing a session never purges or rewrites it."""
    async with state.cookie_store(settings, name, read_only=True) as store:
        return await store.load()


def _name(args: argparse.Namespace) -> str:
    try:
        return state.check_name(args.name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def run_show(args: argparse.Namespace) -> int:
    """Print one line per cookie: domain, path, name, expiry, flags (and value with --values)."""
    _name(args)
    _, settings = load_project_settings()
    path = state.jar_path(settings, args.name)
    if not path.exists():
        known = _known(settings)
        hint = f"saved sessions: {', '.join(known)}" if known else "no session is saved yet"
        raise UsageError(f"no saved session {args.name!r} at {path}; {hint}")
    cookies = sorted(asyncio.run(_load(settings, args.name)), key=lambda c: c.key)
    now = time.time()
    header = ("DOMAIN", "PATH", "NAME", "EXPIRES", "FLAGS", *(["VALUE"] if args.values else []))
    rows: list[tuple[str, ...]] = [header]
    for cookie in cookies:
        cells = [cookie.domain, cookie.path, cookie.name, _expiry(cookie, now), _flags(cookie)]
        rows.append((*cells, cookie.value) if args.values else tuple(cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"{len(cookies)} cookies in {path}")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    """Delete the jar (and its WAL files); the next crawl logs in afresh."""
    _name(args)
    _, settings = load_project_settings()
    path = state.jar_path(settings, args.name)
    if remove_jar(path):
        print(f"cleared session {args.name!r} ({path})")
    else:
        print(f"no saved session {args.name!r} at {path}; nothing to clear")
    return 0
