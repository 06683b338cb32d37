"""The state folder: `STATE_DIR/<name>/` under the project, owner-only, holding a crawl's state.

Today it holds the persisted login session (`session.db`); durable frontiers will live beside it.
`check_writable` finds, before the first request, a state folder, jar or STATS_FILE that
could not be written. Reads STATE_DIR, SESSION_NAME, COOKIES_* and STATS_FILE.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from scrapekit.exceptions import PathNotWritable, SettingsError
from scrapekit.project import find_project

if TYPE_CHECKING:
    from scrapekit.session.cookiestore import CookieStore
    from scrapekit.settings import Settings

SESSION_DB = "session.db"
log = structlog.get_logger(__name__)


def state_root(settings: Settings) -> Path:
    """STATE_DIR, resolved against the project root (or the working directory outside one)."""
    folder = Path(settings["STATE_DIR"]).expanduser()
    if folder.is_absolute():
        return folder
    return (find_project() or Path.cwd()) / folder


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def check_name(name: str) -> str:
    """`name` if it is safe as a folder name under STATE_DIR (no "/" or ".."), else ValueError."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(
            f"{name!r} is not a valid session name: use letters, digits, '.', '_' and '-'"
        )
    return name


def session_name(settings: Settings, spider_name: str) -> str:
    """SESSION_NAME, or the spider's name: spiders naming one session share its login."""
    name = str(settings["SESSION_NAME"])
    if not name:
        return check_name(spider_name) if _SAFE_NAME.match(spider_name) else "spider"
    try:
        return check_name(name)
    except ValueError as exc:
        raise SettingsError("SESSION_NAME", str(exc), settings.source("SESSION_NAME")) from None


def jar_path(settings: Settings, name: str) -> Path:
    """Where the persisted cookie jar of session `name` lives."""
    return state_root(settings) / name / SESSION_DB


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) readable by the owner only (0700), and return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o700)
        log.warning("state folder permissions tightened", path=str(path), was=oct(mode))
    return path


def cookie_store(settings: Settings, name: str) -> CookieStore:
    """The persisted jar of session `name` (COOKIES_PERSIST), or one that forgets at exit."""
    from scrapekit.session.cookiestore import MemoryCookieStore, SqliteCookieStore

    if not settings["COOKIES_ENABLED"] or not settings["COOKIES_PERSIST"]:
        return MemoryCookieStore()
    path = jar_path(settings, name)
    private_dir(path.parent)
    return SqliteCookieStore(path, name=name)


def check_writable(settings: Settings, name: str) -> None:
    """Raise PathNotWritable if the crawl could not write its state, jar or STATS_FILE.

    Checked before the first request, so an unwritable path is one line at start (exit
    code 2), not a traceback after the crawl. Nothing is created here.
    """
    if stats_file := str(settings["STATS_FILE"]):
        path = Path(stats_file).expanduser()
        if path.is_dir():
            raise PathNotWritable("STATS_FILE", str(path), "it is a folder", "STATS_FILE")
        _check_folder(path.parent, "STATS_FILE", str(path), "STATS_FILE")
    if settings["COOKIES_ENABLED"] and settings["COOKIES_PERSIST"]:
        jar = jar_path(settings, name)
        _check_folder(jar.parent, "the cookie jar", str(jar), "STATE_DIR")
        if jar.exists() and not os.access(jar, os.R_OK | os.W_OK):
            raise PathNotWritable(
                "the cookie jar", str(jar), "it is not readable and writable", "STATE_DIR"
            )


def _check_folder(folder: Path, what: str, path: str, setting: str) -> None:
    """The nearest existing folder at or above `folder` must be a writable folder."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PathNotWritable(what, path, f"{existing} is not a folder", setting)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PathNotWritable(what, path, f"folder {existing} is not writable", setting)
