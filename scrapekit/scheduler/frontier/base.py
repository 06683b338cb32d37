"""The Frontier interface: pending requests in per-host queues, leases, and seen fingerprints.

The scheduler calls it; backends implement it (in memory now; SQLite and Redis beside it).

Shape. Each pending request belongs to one host queue (its rate-limit key), ordered by
priority, first in first out among equals. `lease(now)` hands out the best request among the
hosts whose gate is open, or says when the next one opens; a host that waits costs nothing
until then. A lease ends in exactly one of `commit` (done; with the page's new requests),
`retry` (done for now; back in its queue after a not-before time) or `release` (not done;
back where it was).

Who knows what. The rate limiter (politeness/ratelimit.py) owns rates, tokens, delays and
concurrency slots, and answers "grant, or ask again in so many seconds". The frontier does
not call it. The scheduler asks the limiter about each leased request; on a refusal it hands
the lease back and tells the frontier how long that host's gate stays shut (`close_gate`, or
until `open_gate` when only the host's concurrency slots are full). So the frontier never
needs the limiter to answer "is this host open": it keeps each host's gate as data, which
also makes the cost of a throttled host one refusal per gate opening, not one per request.
Two kinds of host gates are kept apart on purpose:

- a *pause* (`pause`: Retry-After, a robots.txt hold) is crawl state: a durable backend
  stores it, so a restart still honours it;
- a *closed gate* (`close_gate`/`open_gate`) is the limiter's passing answer: it is lost
  with the process, with the limiter's own state.

Durability. Every method is async so a backend may do I/O; the in-memory one never
suspends. Calls take effect in the order they are made, even when they suspend: the
scheduler shuts a host's gate before it hands the refused lease back, so an `open_gate` from
a slot freed meanwhile comes after it. A write (`push`, `commit`, `retry`, `pause`) takes
effect when it returns: a durable backend makes each atomic and durable by then, and may
share one transaction among writes made together (group commit; they still take effect in
call order, and if that transaction fails, each of them fails as if alone). A lease made
while a write is still on its way does not wait for it. A durable backend (SQLite) keeps
leases in memory: a lease expires with the process, so its request is pending again in the
next run. A shared backend (Redis) gives leases a visibility timeout.
Times (`now`, `until`, `not_before`) are the caller's clock (`time.monotonic()`); a backend
that persists them converts them to wall-clock times when it stores them.

Items (the outbox). `commit` also takes the page's items: a durable backend appends them to
its outbox in the same transaction as the acknowledgement, numbered by `seq` in commit order,
and hands them to the sink given to `deliver_to` once the transaction is done. The outbox
reader (pipelines/outbox.py) takes them from there to the pipelines; the feeds record how far
they durably wrote (`record_marks`), which deletes the rows every feed has passed. After a
crash the rows still in the outbox are read back (`outbox_rows`) and delivered again. The
memory backend numbers the items and hands them on at once; it keeps nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from scrapekit._resource import AsyncResource
from scrapekit.request import Request
from scrapekit.scheduler.frontier.runs import NOT_DURABLE, RunProgress, RunStart

if TYPE_CHECKING:
    from scrapekit.settings import Settings


@dataclass(frozen=True, slots=True)
class Entry:
    """A request the scheduler admitted, as it goes into the frontier."""

    request: Request
    fingerprint: bytes | None
    """What the duplicate check compares; None (dont_filter) queues it whatever was seen."""
    key: str
    """The host queue (rate-limit key) it waits in."""
    record: str | None = None
    """`Frontier.encode(request)`, made at admission so an unstorable request is dropped
    alone; None: the backend encodes it (raising for the whole batch), or keeps objects."""


@dataclass(frozen=True, slots=True, eq=False)
class Lease:
    """A request handed out by `lease()`, in flight until committed, retried or released."""

    id: int
    request: Request
    key: str


@dataclass(frozen=True, slots=True)
class Fetched:
    """A page fetched for good, as a durable frontier remembers it for later runs (RECRAWL_AFTER).

    Its validators let a revisit ask "changed since?" (If-None-Match, If-Modified-Since).
    """

    fingerprint: bytes
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class PageItem:
    """An item a page produced, as it goes into the outbox."""

    id: str
    """Stable across a refetch of the page: its fingerprint (hex) and the item's index."""
    item: Any
    record: str | None = None
    """`Frontier.encode_item(item)`, made before the commit so an unstorable item is dropped
    alone; None: the backend keeps the object (memory) or encodes it itself."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A committed item on its way to the pipelines: the callback's object, or (replayed
    from the file after a crash) its stored dict."""

    seq: int
    id: str
    item: Any


@dataclass(frozen=True, slots=True)
class FeedMark:
    """How far one feed has durably written: kept by a durable frontier across runs."""

    key: str
    """The feed's resolved target path."""
    seq: int
    """The last item seq in the file."""
    offset: int
    """The file's size after that item was flushed and fsynced."""
    state: str
    """What the feed needs to continue the file (JSON text the feed owns)."""


#: What `deliver_to` takes: called with each commit's items, in seq order, as it succeeds.
OutboxSink = Callable[[Sequence[OutboxItem]], None]


@dataclass(frozen=True, slots=True)
class FrontierStatistics:
    """What a frontier reports at the end of a crawl."""

    backend: str
    pending: int
    """Requests queued, leased ones excluded."""
    leased: int
    waiting: int
    """Pending requests held back until a known time: not-before, paused or closed hosts."""
    hosts: int
    """Host queues with pending requests or a gate set."""
    paused_hosts: int
    seen: int
    pushed: int
    not_due: int = 0
    """Requests skipped because an earlier run fetched them less than RECRAWL_AFTER ago."""


class Frontier(AsyncResource, ABC):
    """Per-host queues of pending requests, their leases, and the fingerprints already seen."""

    _sink: OutboxSink | None = None

    @classmethod
    def from_settings(cls, settings: Settings, spider_name: str) -> Self:
        """The backend for a crawl of spider `spider_name` (a durable one finds its file)."""
        return cls()

    def encode(self, request: Request) -> str | None:
        """The request as this backend stores it, or None when it keeps the object itself.

        Raises UnstorableRequest naming the field a durable backend cannot store (a callback
        that is not a spider method, meta that is not JSON): the scheduler drops that request
        alone. The memory backend keeps anything.
        """
        return None

    def seen_before(self, fingerprint: bytes) -> bool:
        """Whether `fingerprint` is sure to be a duplicate: a hint, False when unsure.

        The scheduler drops a request this says was seen before encoding it, counted as a
        duplicate; `push` still decides for the rest. A durable backend answers from a bounded
        memory of recent fingerprints, sparing the encoding and the file most duplicate
        links; the memory backend answers False (its push is as cheap as the check).
        """
        return False

    @abstractmethod
    async def push(self, entries: Sequence[Entry], *, start: int | None = None) -> int:
        """Queue each entry unless its fingerprint was seen, and record the fingerprints.

        Return how many were queued (the rest were duplicates, or, with RECRAWL_AFTER, pages an
        earlier run fetched too recently: counted in `not_due`). Recording and queueing are one
        step, so a crash can never leave a URL marked seen but not queued. `start`: how many
        of start()'s outputs have been read, these entries included; a durable backend
        stores it in the same step, so a resumed crawl skips exactly those.
        """

    @property
    def remembers_fetches(self) -> bool:
        """Whether `commit(fetched=...)` is kept for later runs (RECRAWL_AFTER is on here)."""
        return False

    @property
    def not_due(self) -> int:
        """Requests kept out so far because an earlier run fetched them too recently."""
        return 0

    # -- runs: what a durable backend records of each run (runs.py); nothing in memory -------

    def run_start(self) -> RunStart:
        """What opening decided: a new crawl or the unfinished one resumed, and where."""
        return NOT_DURABLE

    async def record_start(self, stored: int, done: bool) -> None:
        """start()'s outputs read so far (all stored), and whether it was read to the end."""

    async def record_run(self, progress: RunProgress) -> None:
        """The running run's counters, for `scrapekit status` in another process."""

    async def end_run(self, progress: RunProgress, finish_reason: str, exit_code: int) -> None:
        """The run ended: its last counters, how it ended and the process's exit code."""

    @abstractmethod
    async def lease(self, now: float) -> Lease | float:
        """Take the best request of the hosts whose gate is open at `now`.

        Best is the highest priority, then the earliest queued (across hosts too). A host's
        gate is open when it is not paused and not closed, and only its requests whose
        not-before time has come can go. With nothing to hand out, return the time at which
        something next may be (`math.inf`: nothing will by time alone; a push, a commit or
        `open_gate` may change that).
        """

    def encode_item(self, item: Any) -> str | None:
        """The item as this backend stores it in the outbox, or None when it keeps the object.

        Raises ValueError or TypeError for an item that cannot be stored (the caller drops it
        alone). The memory backend keeps anything.
        """
        return None

    @abstractmethod
    async def commit(
        self,
        lease: Lease | None,
        new: Sequence[Entry],
        items: Sequence[PageItem] = (),
        *,
        fetched: Fetched | None = None,
        start: int | None = None,
    ) -> int:
        """A leased request is done (fetched, or failed for good); queue what it produced.

        The new entries are queued as by `push`; return how many were. The items go to the
        outbox, in order, and then to the `deliver_to` sink. A durable backend commits the
        acknowledgement, the new requests and the items together, so a page's outcome is
        never half saved; a failed commit leaves none of them (and the lease held).
        `lease=None` commits what start() produced (no acknowledgement). `fetched` (a page
        fetched, with its validators) is remembered by a durable backend for RECRAWL_AFTER
        in later runs; the memory backend ignores it. `start` (with `lease=None`): how many of
        start()'s outputs are now stored, recorded in the same step, as by `push`.
        """

    def deliver_to(self, sink: OutboxSink | None) -> None:
        """Hand each commit's items to `sink` once committed (None: keep them undelivered)."""
        self._sink = sink

    def _deliver(self, items: Sequence[OutboxItem]) -> None:
        if self._sink is not None and items:
            self._sink(items)

    @property
    def durable(self) -> bool:
        """Whether the outbox and the feed marks outlive the process (worth syncing feeds)."""
        return False

    @property
    def last_seq(self) -> int:
        """The seq of the last item committed (0: none yet)."""
        return 0

    async def outbox_pending(self) -> int:
        """Rows in the outbox that not every feed has durably passed (memory: none)."""
        return 0

    async def outbox_rows(self, after: int, upto: int, limit: int) -> list[OutboxItem]:
        """Stored items with `after` < seq <= `upto`, in seq order, at most `limit`; each item
        is the dict that was stored (memory: none)."""
        return []

    async def feed_marks(self) -> Mapping[str, FeedMark]:
        """The feeds' marks of an unfinished crawl, by key (empty for a new crawl)."""
        return {}

    async def record_marks(self, marks: Sequence[FeedMark], delivered: int) -> None:
        """Record the feeds' marks, and delete the outbox rows up to `delivered` (every feed
        and the pipeline chain passed them), in one transaction (memory: nothing to keep)."""

    @abstractmethod
    async def retry(self, lease: Lease, not_before: float) -> None:
        """End this attempt and queue the request again, not to be leased before `not_before`.

        The request is stored as it is now (its meta counts the attempts), in one step with
        the acknowledgement.
        """

    @abstractmethod
    async def release(self, lease: Lease) -> None:
        """Hand back a leased request that did not run: it goes back to its place in its queue.

        Used when the host's gate turned out shut, and when the crawl stops at once.
        """

    @abstractmethod
    async def pause(self, key: str, until: float) -> None:
        """Lease nothing from host `key` before `until` (Retry-After); never shortens a pause.

        Crawl state: a durable backend keeps it across runs.
        """

    @abstractmethod
    async def close_gate(self, key: str, until: float) -> None:
        """The limiter refused host `key`: lease nothing from it before `until`.

        `math.inf` shuts it until `open_gate(key)` (its concurrency slots are full). This is the
        limiter's passing answer, replaced by the next one, and not kept across runs.
        """

    @abstractmethod
    async def open_gate(self, key: str) -> None:
        """One of host `key`'s slots freed: a gate closed until further notice opens.

        A gate closed until a known time stays closed until then, and a pause holds.
        """

    @abstractmethod
    def __len__(self) -> int:
        """The number of pending requests (leased ones excluded)."""

    @property
    @abstractmethod
    def waiting(self) -> int:
        """Pending requests held back until a known time (not-before, paused or closed host).

        What is pending and not waiting can go as soon as a worker and a slot are free: the
        scheduler reads start() lazily against that number only, so a throttled host's
        backlog never stops the other hosts' requests from being read.
        """

    @property
    @abstractmethod
    def leased(self) -> int:
        """The number of requests leased and not yet committed, retried or released."""

    @abstractmethod
    def statistics(self) -> FrontierStatistics:
        """A snapshot of the frontier's counters."""

    async def aclose(self) -> None:
        """Release the backend's resources. Pending requests are kept if the backend persists."""
