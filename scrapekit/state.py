"""The state folder: `STATE_DIR/<name>/` under the project, owner-only, holding a crawl's state.

It holds the persisted login session (`session.db`), the SQLite frontier (`frontier.db`,
FRONTIER = "sqlite") and the HTTP cache (`httpcache.db`, HTTPCACHE_ENABLED): separate files,
so clearing one keeps the others.
`check_writable` finds, before the first request, a state folder, jar or STATS_FILE that
could not be written (the SQLite frontier checks its own file as it opens it). Reads
STATE_DIR, SESSION_NAME, COOKIES_* and STATS_FILE.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from scrapekit.exceptions import ConfigError, PathNotWritable, SettingsError
from scrapekit.project import find_project

if TYPE_CHECKING:
    from scrapekit.session.cookiestore import CookieStore
    from scrapekit.settings import Settings

SESSION_DB = "session.db"
FRONTIER_DB = "frontier.db"
HTTPCACHE_DB = "httpcache.db"
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


def frontier_path(settings: Settings, spider_name: str) -> Path:
    """Where the durable frontier of spider `spider_name` lives."""
    try:
        name = check_name(spider_name)
    except ValueError:
        raise ConfigError(
            f"spider name {spider_name!r} cannot name its state folder under STATE_DIR: "
            "use letters, digits, '.', '_' and '-'"
        ) from None
    return state_root(settings) / name / FRONTIER_DB


def httpcache_path(settings: Settings, spider_name: str) -> Path:
    """Where the HTTP cache of spider `spider_name` lives (beside its frontier)."""
    return frontier_path(settings, spider_name).with_name(HTTPCACHE_DB)


def private_file(path: Path) -> bool:
    """Create `path` owner-only (0600) in an owner-only folder, or tighten an existing one.

    Blocking (run it in a thread). Return whether an existing file had to be tightened.
    """
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path)) from None
        if mode & 0o077:
            os.chmod(path, 0o600)
            return True
        return False
    os.close(fd)
    os.chmod(path, 0o600)  # the umask filters os.open's mode
    return False


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) readable by the owner only (0700), and return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o700)
        log.warning("state folder permissions tightened", path=str(path), was=oct(mode))
    return path


def cookie_store(settings: Settings, name: str, *, read_only: bool = False) -> CookieStore:
    """The persisted jar of session `name` (COOKIES_PERSIST), or one that forgets at exit.

    `read_only`: the persisted jar is only read, and nothing is created if it is missing.
    """
    from scrapekit.session.cookiestore import MemoryCookieStore, SqliteCookieStore

    if not settings["COOKIES_ENABLED"] or not settings["COOKIES_PERSIST"]:
        return MemoryCookieStore()
    path = jar_path(settings, name)
    if read_only:
        return SqliteCookieStore(path, name=name, read_only=True)
    private_dir(path.parent)
    return SqliteCookieStore(path, name=name)


def check_writable(settings: Settings, name: str) -> None:
    """Raise PathNotWritable if the crawl could not write its state, jar or STATS_FILE.

    Checked before the first request, so an unwritable path is one line at start (exit
    code 2), not a traceback after the crawl. Permission bits cannot tell (root passes every
    `os.access` check, and /proc refuses root too), so the folders are created as the crawl
    would create them, and a temporary file is written and removed in each.
    """
    if stats_file := str(settings["STATS_FILE"]):
        path = Path(stats_file).expanduser()
        if path.is_dir():
            raise PathNotWritable("STATS_FILE", str(path), "it is a folder", "STATS_FILE")
        _try_folder(path.parent, "STATS_FILE", str(path), "STATS_FILE", private=False)
    if settings["COOKIES_ENABLED"] and settings["COOKIES_PERSIST"]:
        jar = jar_path(settings, name)
        _try_folder(jar.parent, "the cookie jar", str(jar), "STATE_DIR", private=True)
        if jar.exists() and not os.access(jar, os.R_OK | os.W_OK):
            raise PathNotWritable(
                "the cookie jar", str(jar), "it is not readable and writable", "STATE_DIR"
            )


def _try_folder(folder: Path, what: str, path: str, setting: str, *, private: bool) -> None:
    """Create `folder` (owner-only if `private`) and write a temporary file in it; any
    OSError becomes PathNotWritable naming `what`, `path` and the `setting` to change."""
    try:
        if private:
            private_dir(folder)
        else:
            folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise PathNotWritable(what, path, problem(exc, folder), setting) from None


def problem(exc: OSError, folder: Path) -> str:
    """What an OSError says about `folder`, in words (the errno name, not a traceback)."""
    where = Path(exc.filename) if exc.filename else folder
    if isinstance(exc, IsADirectoryError) and where != folder:
        return f"{where} is a folder, not a file"
    if isinstance(exc, FileExistsError | NotADirectoryError) or (
        where.exists() and not where.is_dir()
    ):
        return f"{_existing(where)} is not a folder"
    reason = exc.strerror or type(exc).__name__
    return f"cannot create or write in folder {where} ({reason})"


def _existing(path: Path) -> Path:
    """The nearest existing path at or above `path`."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
