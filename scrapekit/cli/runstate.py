"""What `scrapekit runs` and `scrapekit status` share: a spider's frontier file, read only.

Opened read-only, without the run lock, so both work while a crawl runs (WAL: a reader never
blocks the writer) and change nothing. A file that is not a scrapekit frontier, or is
corrupt, is one line naming it and the fix (FrontierCorrupt, exit code 2).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from scrapekit import state
from scrapekit.cli.common import load_project_settings, spider_loader
from scrapekit.exceptions import FrontierCorrupt
from scrapekit.runlock import Holder, holder, lock_path
from scrapekit.scheduler.frontier.runs import TABLES
from scrapekit.scheduler.frontier.sqlite_schema import SCHEMA_VERSION

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SpiderState:
    """Where a spider's crawl state lives, and whether it keeps any."""

    spider: str
    durable: bool
    """False with FRONTIER = "memory": nothing outlives a run."""
    path: Path
    lock: Path

    def holder(self) -> Holder | None:
        return holder(self.lock)


def spider_state(name: str) -> SpiderState:
    """The spider's state paths, from the project's settings with the spider's own layer."""
    _, settings = load_project_settings()
    spider_cls = spider_loader(settings).load(name)  # SpiderNotFound: one line, close matches
    _, settings = load_project_settings(spider_cls=spider_cls)
    return SpiderState(
        spider=name,
        durable=settings["FRONTIER"] == "sqlite",
        path=state.frontier_path(settings, name),
        lock=lock_path(settings, name),
    )


def read(path: Path, work: Callable[[sqlite3.Connection], T]) -> T | None:
    """Run `work` over the frontier file opened read-only; FrontierCorrupt if it is not one.

    None when the file is still empty (a crawl is creating it).
    """
    if path.is_dir():  # SQLite would only say "disk I/O error"
        raise FrontierCorrupt(
            str(path), "a folder, not a file", fix="remove it (a crawl creates the file)"
        )
    try:
        with _read_only(path) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if version == 0 and not tables:
                return None
            if version > SCHEMA_VERSION:
                raise FrontierCorrupt(
                    str(path),
                    f"from a newer scrapekit (schema version {version}, this one reads "
                    f"{SCHEMA_VERSION})",
                    fix="upgrade scrapekit",
                )
            if version != SCHEMA_VERSION or not TABLES.issubset(tables):
                if version == 1 and "requests" in tables:
                    raise FrontierCorrupt(
                        str(path),
                        "from an older scrapekit that kept no runs",
                        fix="run the crawl once to upgrade it",
                    )
                raise FrontierCorrupt(str(path), "not a scrapekit frontier (wrong schema)")
            return work(conn)
    except sqlite3.Error as exc:
        reason = " ".join(str(exc).split())
        raise FrontierCorrupt(str(path), f"corrupt or unreadable ({reason})") from None


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    try:
        conn.execute("BEGIN")  # one snapshot for every query
        yield conn
    finally:
        conn.close()


def when(wall: float | None) -> str:
    """A wall-clock time as the commands show it (UTC)."""
    if wall is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall))


def duration(seconds: float) -> str:
    """ "42s", "12m05s", "3h02m"."""
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows as left-aligned columns, the first row being the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
