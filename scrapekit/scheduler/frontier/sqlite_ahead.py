"""SQLite frontier, the read-ahead: each host's next ready rows, a few hundred at a time in RAM.

Reading the file for every lease puts a thread hop on every page. So a host that is leased
from keeps `ahead`: its best ready rows that are not leased, in order, read in one query (as
JSON text, decoded only when leased). It is always a prefix of what the file holds for the
host, so a lease from it is the lease the file would give:

- a row pushed or released that ranks before the last row held (or any row, when `complete`
  says the file has no more) goes into `ahead` in its place, so a better push still wins;
- a leased row is not in it; a retried one comes back only through a read (when it is due);
- a pause or a closed gate leaves it as it is: the host just is not offered meanwhile.

Memory stays bounded: at most PER_HOST rows per host and about CAP in all (a few hundred
rows per host: a refill is a read queued behind the group commit in flight, and every worker
leasing from the host waits for it, so refills must be rare); a read that would
pass CAP drops the read-ahead of the hosts that read longest ago (their heads stay known, so
nothing is lost but the read). The rows stay rows until their commit: a crash loses only
the copy.
"""

from __future__ import annotations

import asyncio
import bisect

from scrapekit.scheduler.frontier.hosts import Host, Place

#: Rows read ahead per host by one query.
PER_HOST = 256
#: Rows read ahead across all hosts, about (a read always keeps two).
CAP = 4096

#: (rank, id, record) of a ready row: rank is -priority, id the order of arrival.
Ahead = tuple[int, int, str]


class RowHost(Host):
    """One host's counts, best ready row and read-ahead; its requests are rows in the file."""

    __slots__ = ("ahead", "complete", "due", "head", "later", "leased", "pending", "reading")

    head: Place | None  # (rank, id) of the best ready row that is not leased

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.pending = 0  # rows not leased, ready or later
        self.later = 0  # rows whose not-before time has not come
        self.due: float | None = None  # the earliest not-before among them (monotonic)
        self.head = None
        self.leased: set[int] = set()
        self.ahead: list[Ahead] = []  # its best ready rows not leased, in order; [0] is head
        self.complete = False  # `ahead` holds all of them
        self.reading: asyncio.Event | None = None  # set when the read under way has landed

    def next_due(self) -> float | None:
        return self.due if self.later else None

    def counts(self) -> tuple[int, int]:
        return self.pending - self.later, self.later

    def holds(self) -> bool:
        return bool(self.pending or self.leased)

    def can_take(self) -> bool:
        """Whether a lease can come from `ahead` with the next head still known after it."""
        return len(self.ahead) > 1 or (self.complete and bool(self.ahead))


class ReadAhead:
    """The read-ahead rows of all hosts: keeps each host's `ahead` a prefix, and the total
    bounded."""

    def __init__(self, per_host: int = PER_HOST, cap: int = CAP) -> None:
        self.per_host = per_host
        self.cap = cap
        self.rows = 0  # rows held, all hosts
        self._holding: dict[str, RowHost] = {}  # hosts holding rows, oldest read first

    def join(self, host: RowHost, place: Place, record: str) -> None:
        """A ready row joined the host (pushed or released): count it, and hold it if it
        belongs in the prefix."""
        host.pending += 1
        if host.head is None or place < host.head:
            host.head = place
        ahead = host.ahead
        if not (host.complete or (ahead and place < ahead[-1][:2])):
            return  # it ranks after rows the file holds and `ahead` does not
        bisect.insort(ahead, (*place, record))
        self.rows += 1
        self._holding.setdefault(host.key, host)
        if len(ahead) > self.per_host or self.rows > self.cap:
            ahead.pop()
            self.rows -= 1
            host.complete = False
            if not ahead:
                self._holding.pop(host.key, None)

    def take(self, host: RowHost) -> Ahead:
        """The host's head row, taken out (`can_take()` must be true); the next is its head."""
        ahead = host.ahead
        row = ahead.pop(0)
        self.rows -= 1
        if ahead:
            host.head = ahead[0][:2]
        else:
            host.head = None  # complete: it had no other
            self._holding.pop(host.key, None)
        return row

    def fill(self, host: RowHost, rows: list[Ahead], complete: bool) -> None:
        """The host's best ready rows as the file has them now (`complete`: all of them)."""
        self.drop(host)
        room = max(self.cap - self.rows, 2)
        for key in list(self._holding):  # oldest read first
            if room >= len(rows):
                break
            self.drop(self._holding[key])
            room = max(self.cap - self.rows, 2)
        if len(rows) > room:
            rows, complete = rows[:room], False
        host.ahead = rows
        host.complete = complete
        self.rows += len(rows)
        if rows:
            self._holding[host.key] = host
            host.head = rows[0][:2]
        elif complete:
            host.head = None
        # else (no rows and not complete: only leases taken meanwhile): keep the head known

    def drop(self, host: RowHost) -> None:
        """Forget the host's read-ahead (its head stays known)."""
        if self._holding.pop(host.key, None) is not None:
            self.rows -= len(host.ahead)
        host.ahead = []
        host.complete = False
