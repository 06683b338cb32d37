"""SQLite frontier, page writes: pushes and page outcomes, many in a few statements.

A push and a page's commit are the frontier's hot writes: delete the leased row, append the
page's items to the outbox, keep the new requests whose fingerprints the file has not seen,
queue them. Run one write at a time, a group commit of a dozen pages would be some seventy
statement steps, and aiosqlite's thread gives up the GIL and must win it back from the busy
event loop around every step (measured: a 0.5 ms batch took 5 ms in the thread). So the
group commit hands consecutive page writes to `write_pages`, which runs them as one set of
multi-row statements, a handful of steps for the whole batch, with the same outcome, write by
write, as running them one after the other: the first write to bring a new fingerprint
queues it, later copies are duplicates.

A write that remembers a fetch or asks for revisits (RECRAWL_AFTER) reads the fetch history
that earlier writes change, so it runs alone (`insert`), in its place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from scrapekit.scheduler.frontier import recrawl, runs
from scrapekit.scheduler.frontier.recrawl import Revisits

#: (id, fingerprint, key, priority, record) of a request to queue.
Row = tuple[int, bytes | None, str, int, str]
#: (id, key, priority) of a request queued.
Queued = tuple[int, str, int]
#: (seq, item_id, record) of an outbox row.
ItemRow = tuple[int, str, str]
#: What a page write gives back: the rows queued, new fingerprints, rows kept out as not due.
Written = tuple[list[Queued], int, int]
#: (fingerprint, fetched at, ETag, Last-Modified) of a page fetched, for RECRAWL_AFTER.
Fetch = tuple[bytes, float, str | None, str | None]

#: Bound variables per statement: SQLite before 3.32 allows 999.
_VARIABLES = 999


@dataclass(slots=True)
class PageWrite:
    """A push, or a page's outcome (`done`: its leased row), as one write of a group commit.

    Attributes:
        rows: the requests to queue unless their fingerprints were seen.
        done: the leased row the page was, deleted.
        items: the page's items, appended to the outbox.
        revisits: RECRAWL_AFTER's view of the rows (see recrawl.py).
        fetched: the page's fetch, remembered for RECRAWL_AFTER.
        start: how many outputs of start() are stored once this write is (runs.py).
    """

    rows: list[Row]
    done: int | None = None
    items: list[ItemRow] = field(default_factory=list)
    revisits: Revisits | None = None
    fetched: Fetch | None = None
    start: int | None = None

    @property
    def alone(self) -> bool:
        """Whether it reads what earlier writes change (the fetch history) and must run alone."""
        return self.revisits is not None or self.fetched is not None

    def __call__(self, conn: sqlite3.Connection) -> Written:
        return write_pages(conn, [self])[0]


def write_pages(conn: sqlite3.Connection, writes: Sequence[PageWrite]) -> list[Written]:
    """Run `writes` in order (in the caller's transaction); each one's outcome."""
    results: list[Written] = []
    merged: list[PageWrite] = []
    for write in writes:
        if write.alone:
            results.extend(_merged(conn, merged))
            merged = []
            results.append(insert(conn, write))
        else:
            merged.append(write)
    results.extend(_merged(conn, merged))
    for write in writes:
        if write.start is not None:
            runs.record_start(conn, write.start, done=False)
    return results


def _merged(conn: sqlite3.Connection, writes: list[PageWrite]) -> list[Written]:
    """Writes without revisits, as one statement of each kind (a few, for long batches)."""
    if not writes:
        return []
    _outbox(conn, [item for w in writes for item in w.items])
    new = _unseen(conn, [r[1] for w in writes for r in w.rows if r[1] is not None])
    results: list[Written] = [(*_keep_new(w.rows, new), 0) for w in writes]
    _insert_rows(conn, "seen (fingerprint)", "(?)", [(f,) for f in new.order])
    _queue(conn, [row for w in writes for row in w.rows if row[0] in new.rows])
    # Last: a row is always queued before it is done (ids are never reused), so this is the
    # order the writes one at a time would have, even for a row queued in this batch.
    done = [w.done for w in writes if w.done is not None]
    for chunk in _chunks(done, 1):
        conn.execute(f"DELETE FROM requests WHERE id IN ({_marks(len(chunk))})", chunk)
    return results


def insert(conn: sqlite3.Connection, write: PageWrite) -> Written:
    """One write on its own: delete its leased row (remembering its fetch); queue the rows not
    seen yet; append its items to the outbox.

    With `revisits` (RECRAWL_AFTER), a row an earlier run fetched too recently is kept out,
    and one fetched long enough ago is queued as a conditional revisit.
    """
    if write.done is not None:
        conn.execute("DELETE FROM requests WHERE id = ?", (write.done,))
    if write.fetched is not None:
        conn.execute(recrawl.REMEMBER, write.fetched)
    _outbox(conn, write.items)
    new = _unseen(conn, [r[1] for r in write.rows if r[1] is not None])
    kept, fresh = _keep_new(write.rows, new)
    _insert_rows(conn, "seen (fingerprint)", "(?)", [(f,) for f in new.order])
    rows = [r for r in write.rows if r[0] in new.rows]
    not_due = 0
    if write.revisits is not None:
        rows, not_due = _due(conn, rows, write.revisits)
        kept = [(r[0], r[2], r[3]) for r in rows]
    _queue(conn, rows)
    return kept, fresh, not_due


class _Unseen:
    """The fingerprints the file has not seen, in first-seen order; rows claim them in turn."""

    __slots__ = ("left", "order", "rows")

    def __init__(self, order: list[bytes]) -> None:
        self.order = order
        self.left = set(order)  # not claimed by a row yet
        self.rows: set[int] = set()  # ids of the rows to queue


def _unseen(conn: sqlite3.Connection, fingerprints: list[bytes]) -> _Unseen:
    """The fingerprints (in order, once each) that the seen table does not hold."""
    known: set[bytes] = set()
    for chunk in _chunks(fingerprints, 1):
        sql = f"SELECT fingerprint FROM seen WHERE fingerprint IN ({_marks(len(chunk))})"
        known.update(f for (f,) in conn.execute(sql, chunk))
    order = list(dict.fromkeys(f for f in fingerprints if f not in known))
    return _Unseen(order)


def _keep_new(rows: list[Row], new: _Unseen) -> tuple[list[Queued], int]:
    """The rows of one write to queue (a new fingerprint's first row; rows without one), and
    how many new fingerprints the write brought."""
    queued: list[Queued] = []
    fresh = 0
    for row_id, fingerprint, key, priority, _ in rows:
        if fingerprint is not None:
            if fingerprint not in new.left:
                continue  # seen before, or brought by an earlier row
            new.left.discard(fingerprint)
            fresh += 1
        new.rows.add(row_id)
        queued.append((row_id, key, priority))
    return queued, fresh


def _due(conn: sqlite3.Connection, rows: list[Row], revisits: Revisits) -> tuple[list[Row], int]:
    """The rows RECRAWL_AFTER lets through (revisits rewritten), and how many it kept out."""
    eligible = [r[1] for r in rows if r[0] in revisits.rows and r[1] is not None]
    if not eligible:
        return rows, 0
    known = recrawl.history(conn, eligible)
    if not known:
        return rows, 0
    kept: list[Row] = []
    for row in rows:
        past = known.get(row[1]) if row[0] in revisits.rows and row[1] is not None else None
        if past is None:
            kept.append(row)
        elif past[0] <= revisits.cutoff:
            kept.append((row[0], row[1], row[2], row[3], recrawl.revisit(row[4], *past)))
    return kept, len(rows) - len(kept)


def _outbox(conn: sqlite3.Connection, items: list[ItemRow]) -> None:
    _insert_rows(conn, "outbox (seq, item_id, record)", "(?, ?, ?)", items)


def _queue(conn: sqlite3.Connection, rows: list[Row]) -> None:
    values = [(r[0], r[2], r[3], r[4]) for r in rows]
    columns = "requests (id, key, priority, not_before, record)"
    _insert_rows(conn, columns, "(?, ?, ?, 0, ?)", values)


def _insert_rows(
    conn: sqlite3.Connection, table: str, row: str, values: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT the rows with as few statements (one step each) as the variable limit allows."""
    if not values:
        return
    width = len(values[0])
    for chunk in _chunks(values, width):
        args = [v for value in chunk for v in value]
        conn.execute(f"INSERT INTO {table} VALUES {', '.join([row] * len(chunk))}", args)


def _chunks(values: Sequence[Any], width: int) -> Iterator[Sequence[Any]]:
    size = _VARIABLES // width
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _marks(count: int) -> str:
    return ", ".join(["?"] * count)
