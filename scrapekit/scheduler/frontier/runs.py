"""Runs of a crawl in the frontier file: the `runs` table, how far start() was stored, status.

A crawl is the work of one spider from an empty frontier to the end; a run is one process
working on it. A crawl is unfinished while its frontier holds pending requests or undelivered
items (see `UNFINISHED`) or its start() was not read to the end, and the next run resumes it:
it keeps the pending requests and the seen fingerprints, and skips the start() outputs already
stored (`crawl_state.start_stored`, written in the same transaction as the start requests
pushed), or does not call start() at all once it finished. A finished crawl makes the next
run a new crawl: `seen` is emptied. `fresh` discards an unfinished crawl's requests,
fingerprints, pauses, undelivered items and the fetch times its runs recorded (RECRAWL_AFTER).

The functions here are plain statements over a `sqlite3.Connection`: the frontier runs them in
aiosqlite's thread (inside its transactions), the `runs` and `status` commands over a read-only
connection of their own.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

#: The tables this module owns, created with the frontier file or added to a version-1 file.
SCHEMA = (
    # One row per process that opened the frontier. ended/finish_reason/exit_code stay NULL
    # while it runs; a row left open by a process that died is closed by the next run.
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY, crawl INTEGER NOT NULL, resumed INTEGER NOT NULL,
        pid INTEGER NOT NULL, started REAL NOT NULL, updated REAL NOT NULL, ended REAL,
        finish_reason TEXT, exit_code INTEGER, pages INTEGER NOT NULL DEFAULT 0,
        items INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,
        in_flight INTEGER NOT NULL DEFAULT 0, pending INTEGER NOT NULL DEFAULT 0)""",
    # One row: the crawl's number and how far its start() was stored.
    """CREATE TABLE IF NOT EXISTS crawl_state (
        id INTEGER PRIMARY KEY CHECK (id = 1), crawl INTEGER NOT NULL,
        start_stored INTEGER NOT NULL, start_done INTEGER NOT NULL)""",
)
TABLES = frozenset({"runs", "crawl_state"})

#: Queries counting what keeps a crawl unfinished: pending requests, undelivered items.
UNFINISHED = ("SELECT count(*) FROM requests", "SELECT count(*) FROM outbox")

#: finish_reason of a run whose process died without recording its end (kill -9, a reboot).
DIED = "died"


@dataclass(frozen=True, slots=True)
class RunStart:
    """What opening the frontier decided: a new crawl, or the unfinished one resumed."""

    run: int | None
    """This run's id in the `runs` table (None: the frontier keeps no runs)."""
    crawl: int | None
    """The crawl's number: a new crawl gets the next one, a resumed one keeps its own."""
    resumed: bool
    pending: int
    """Requests pending when the run began (a resumed crawl's leftovers)."""
    start_stored: int
    """start() outputs already stored by earlier runs: a resumed run skips that many."""
    start_done: bool
    """start() was read to the end by an earlier run: a resumed run does not call it."""
    state: str | None
    """Where the crawl's state lives (the frontier file); None: in memory, lost at exit."""
    first_run: int | None = None
    """The id of the crawl's first run (this one for a new crawl): feed paths' `{run}`."""
    crawl_started: float | None = None
    """When the crawl's first run began (wall clock): feed paths' `{time}`."""


#: What a frontier that keeps no runs reports (memory).
NOT_DURABLE = RunStart(None, None, False, 0, 0, False, None)


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A running run's counters, written to its row periodically and at its end."""

    pages: int
    items: int
    errors: int
    in_flight: int
    pending: int


@dataclass(frozen=True, slots=True)
class RunRow:
    """One row of the `runs` table, as `scrapekit runs` shows it."""

    id: int
    crawl: int
    resumed: bool
    pid: int
    started: float
    updated: float
    ended: float | None
    finish_reason: str | None
    exit_code: int | None
    pages: int
    items: int
    errors: int
    in_flight: int
    pending: int


def _count(conn: sqlite3.Connection, sql: str, args: tuple[object, ...] = ()) -> int:
    return int(conn.execute(sql, args).fetchone()[0] or 0)


def left(conn: sqlite3.Connection) -> int:
    """How much keeps the crawl unfinished (pending requests, undelivered rows)."""
    return sum(_count(conn, sql) for sql in UNFINISHED)


def _state(conn: sqlite3.Connection) -> tuple[int, int, bool]:
    """(crawl, start_stored, start_done); crawl 0 before the first run."""
    row = conn.execute("SELECT crawl, start_stored, start_done FROM crawl_state").fetchone()
    return (0, 0, False) if row is None else (int(row[0]), int(row[1]), bool(row[2]))


def unfinished(conn: sqlite3.Connection) -> bool:
    """Whether a run has begun the current crawl and it is not done."""
    crawl, _, start_done = _state(conn)
    return bool(left(conn)) or (crawl > 0 and not start_done)


def begin(conn: sqlite3.Connection, *, fresh: bool, pid: int, wall: float, path: str) -> RunStart:
    """Record a new run (inside the caller's transaction): resume the crawl, or begin one.

    The caller holds the run lock, so a row still open belongs to a process that died.
    """
    conn.execute("UPDATE runs SET ended = updated, finish_reason = ? WHERE ended IS NULL", (DIED,))
    crawl, stored, done = _state(conn)
    resume = not fresh and unfinished(conn)
    if resume and crawl == 0:  # a version-1 file's unfinished crawl: its start() is read again
        crawl = 1
        conn.execute("INSERT INTO crawl_state VALUES (1, 1, 0, 0)")
    if not resume:
        if fresh and unfinished(conn):
            # The abandoned crawl's fetches go with its items (RECRAWL_AFTER would keep its
            # pages out of the new crawl, and the items they yielded are discarded).
            conn.execute(
                "DELETE FROM fetched WHERE fetched_at >= "
                "(SELECT min(started) FROM runs WHERE crawl = ?)",
                (crawl,),
            )
        if fresh:
            conn.execute("DELETE FROM requests")
            conn.execute("DELETE FROM pauses")
            conn.execute("DELETE FROM outbox")  # the abandoned crawl's undelivered items
        conn.execute("DELETE FROM seen")
        conn.execute("DELETE FROM feeds")  # a new crawl's feeds start where the files end
        crawl, stored, done = crawl + 1, 0, False
        conn.execute(
            "INSERT INTO crawl_state (id, crawl, start_stored, start_done) VALUES (1, ?, 0, 0) "
            "ON CONFLICT (id) DO UPDATE SET crawl = excluded.crawl, start_stored = 0, "
            "start_done = 0",
            (crawl,),
        )
    pending = _count(conn, "SELECT count(*) FROM requests")
    cursor = conn.execute(
        "INSERT INTO runs (crawl, resumed, pid, started, updated, pending) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (crawl, int(resume), pid, wall, wall, pending),
    )
    assert cursor.lastrowid is not None
    first, started = conn.execute(
        "SELECT id, started FROM runs WHERE crawl = ? ORDER BY id LIMIT 1", (crawl,)
    ).fetchone()
    return RunStart(
        cursor.lastrowid, crawl, resume, pending, stored, done, path, int(first), float(started)
    )


def record_start(conn: sqlite3.Connection, stored: int, done: bool) -> None:
    """How many start() outputs are stored, and whether start() was read to the end."""
    conn.execute(
        "UPDATE crawl_state SET start_stored = max(start_stored, ?), start_done = start_done OR ?",
        (stored, int(done)),
    )


def progress(conn: sqlite3.Connection, run: int, counts: RunProgress, wall: float) -> None:
    """Write a running run's counters (`status` reads them from another process)."""
    conn.execute(
        "UPDATE runs SET pages = ?, items = ?, errors = ?, in_flight = ?, pending = ?, "
        "updated = ? WHERE id = ?",
        (counts.pages, counts.items, counts.errors, counts.in_flight, counts.pending, wall, run),
    )


def end(
    conn: sqlite3.Connection,
    run: int,
    counts: RunProgress,
    wall: float,
    finish_reason: str,
    exit_code: int,
) -> None:
    """Write the run's last counters, its end, how it ended and its exit code."""
    progress(conn, run, counts, wall)
    conn.execute(
        "UPDATE runs SET ended = ?, finish_reason = ?, exit_code = ? WHERE id = ?",
        (wall, finish_reason, exit_code, run),
    )


# -- reading, for `scrapekit runs` and `scrapekit status` -------------------------------------

_COLUMNS = (
    "id, crawl, resumed, pid, started, updated, ended, finish_reason, exit_code, pages, "
    "items, errors, in_flight, pending"
)


def all_runs(conn: sqlite3.Connection) -> list[RunRow]:
    """Every recorded run, oldest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM runs ORDER BY id").fetchall()
    return [_row(r) for r in rows]


def _row(r: tuple[Any, ...]) -> RunRow:
    ended = None if r[6] is None else float(r[6])
    exit_code = None if r[8] is None else int(r[8])
    head = (int(r[0]), int(r[1]), bool(r[2]), int(r[3]), float(r[4]), float(r[5]))
    return RunRow(*head, ended, r[7], exit_code, *(int(v) for v in r[9:]))


@dataclass(frozen=True, slots=True)
class CrawlStatus:
    """The crawl now, as the frontier file says."""

    crawl: int
    unfinished: bool
    pending: int
    waiting: int
    """Pending requests whose not-before time (a retry's backoff) has not come."""
    done: int
    """Pages fetched by the runs of this crawl."""
    seen: int
    start_stored: int
    start_done: bool
    paused: list[tuple[str, float]]
    """(host, until as wall-clock time) of each host paused now."""
    last: RunRow | None
    """The latest run."""


def crawl_status(conn: sqlite3.Connection, wall: float) -> CrawlStatus:
    """Read the crawl's state; changes nothing."""
    crawl, stored, done = _state(conn)
    history = all_runs(conn)
    return CrawlStatus(
        crawl=crawl,
        unfinished=unfinished(conn),
        pending=_count(conn, "SELECT count(*) FROM requests"),
        waiting=_count(conn, "SELECT count(*) FROM requests WHERE not_before > ?", (wall,)),
        done=sum(run.pages for run in history if run.crawl == crawl),
        seen=_count(conn, "SELECT count(*) FROM seen"),
        start_stored=stored,
        start_done=done,
        paused=[
            (str(key), float(until))
            for key, until in conn.execute(
                "SELECT key, until FROM pauses WHERE until > ? ORDER BY key", (wall,)
            )
        ],
        last=history[-1] if history else None,
    )
