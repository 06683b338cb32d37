"""The state folder: `STATE_DIR/<name>/` under the project, owner-only, holding a crawl's state.

Today it holds the persisted login session (`session.db`); durable frontiers will live beside it.
Reads STATE_DIR and SESSION_NAME.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from scrapekit.exceptions import SettingsError
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
