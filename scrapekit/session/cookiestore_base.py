"""The cookie-store interface and what needs nothing but it: the memory store and the write-behind.

Part of stage 5 (session). The jar (`cookiejar.py`) is the only thing the per-request path
touches; a `CookieSync` copies its changes to a `CookieStore` at most every
COOKIES_FLUSH_SECONDS (passed in as `interval`), right after a login (`flush()`) and once more
when the crawl closes. Import these names from `scrapekit.session.cookiestore`, which adds the
SQLite backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import structlog

from scrapekit._resource import AsyncResource
from scrapekit.session.cookiejar import Cookie

# One logger name for the cookie store, whichever of its two files logs.
log = structlog.get_logger("scrapekit.session.cookiestore")

CookieKey = tuple[str, str, str]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CookieStoreStatistics:
    """What a cookie store reports at the end of a crawl."""

    backend: str
    loaded: int
    saved: int
    deleted: int
    flushes: int


class CookieStore(AsyncResource, ABC):
    """Where a session's cookies outlive the process. scrapekit calls it; backends implement it.

    One `CookieSync` uses a store at a time, and never on the per-request path.
    """

    backend: ClassVar[str]
    #: A read-only store loads and never writes: `save` and `clear` raise SessionError, and
    #: `load` leaves expired cookies where they are. `CookieSync` never saves to one.
    read_only: bool = False

    def __init__(self) -> None:
        self._loaded = self._saved = self._deleted = self._flushes = 0

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the cookies are kept, for log lines: a file path, or "memory"."""

    @abstractmethod
    async def load(self) -> list[Cookie]:
        """Return every stored cookie that has not expired; expired ones are deleted on the way
        (a read-only store skips them instead).

        Raises:
            CookieJarCorrupt: the stored jar cannot be read; it is left as it was.
        """

    @abstractmethod
    async def save(self, upserts: Sequence[Cookie], deletes: Sequence[CookieKey]) -> None:
        """Write `upserts` and remove the cookies keyed (domain, path, name) in `deletes`.

        All of it commits in one transaction or none of it does. Deletes are applied before
        upserts; among writers of one cookie, the last to commit wins. Deleting a cookie that
        is not stored is not an error.

        Raises:
            SessionError: the backend could not write (busy, disk full); nothing was written.
        """

    @abstractmethod
    async def clear(self) -> int:
        """Delete every stored cookie and return how many there were."""

    async def aclose(self) -> None:
        """Release the backend's resources; everything saved stays saved."""

    def statistics(self) -> CookieStoreStatistics:
        """A snapshot of the counters; `flushes` counts successful non-empty saves."""
        return CookieStoreStatistics(
            self.backend, self._loaded, self._saved, self._deleted, self._flushes
        )

    def _count_save(self, upserts: int, deletes: int) -> None:
        self._saved += upserts
        self._deleted += deletes
        self._flushes += 1


class MemoryCookieStore(CookieStore):
    """Keeps cookies for this process only (used when cookie persistence is off)."""

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._cookies: dict[CookieKey, Cookie] = {}

    @property
    def location(self) -> str:
        return "memory"

    async def load(self) -> list[Cookie]:
        now = time.time()
        for key in [
            k for k, c in self._cookies.items() if c.expires is not None and c.expires <= now
        ]:
            del self._cookies[key]
        self._loaded += len(self._cookies)
        return [dataclasses.replace(c) for c in self._cookies.values()]

    async def save(self, upserts: Sequence[Cookie], deletes: Sequence[CookieKey]) -> None:
        if not upserts and not deletes:
            return
        for key in deletes:
            self._cookies.pop(key, None)
        for cookie in upserts:
            # A copy: a later change to the jar's object is not stored until it is saved.
            self._cookies[cookie.key] = dataclasses.replace(cookie)
        self._count_save(len(upserts), len(deletes))

    async def clear(self) -> int:
        count = len(self._cookies)
        self._cookies.clear()
        return count


# -- write-behind ----------------------------------------------------------------------------


class CookieJarLike(Protocol):
    """What `CookieSync` needs from the in-memory jar (`scrapekit.session.cookiejar.CookieJar`)."""

    @property
    def dirty(self) -> bool:
        """Whether changes were recorded since the last `drain_changes()`."""

    def add(self, cookie: Cookie, /) -> object:
        """Insert a cookie without recording it as a change."""

    def drain_changes(self) -> tuple[Sequence[Cookie], Sequence[CookieKey]]:
        """Return and forget the recorded changes: (cookies set, keys deleted)."""

    def purge_expired(self) -> object:
        """Drop the expired cookies, recording them as deleted."""


@dataclass(frozen=True, slots=True)
class CookieSyncStatistics:
    """What the write-behind reports at the end of a crawl; `failures` counts failed saves."""

    loaded: int
    saved: int
    deleted: int
    flushes: int
    failures: int
    enabled: bool = True
    """False with COOKIES_ENABLED false: the jar is not synced at all (every count is 0)."""


class CookieSync(AsyncResource):
    """Write-behind from the in-memory jar to a store; it owns the store and closes it.

    Entering loads the store into the jar and starts a background flusher that saves the
    jar's changes at most every `interval` seconds, and only when there are any. A failed
    save is logged (`cookie flush failed`) and its changes are kept for the next try: it
    never stops the crawl. Closing stops the flusher and flushes a last time, even when the
    task that closes it is cancelled meanwhile.

    Not `enabled` (COOKIES_ENABLED false), it loads nothing, saves nothing and says so in its
    statistics: a cookie a spider sets in a jar the session never uses is not a saved one.
    With a read-only store it loads and then only forgets the jar's changes: the persisted
    jar stays as it was (how `scrapekit fetch/shell --spider` look through a crawl's login).
    """

    def __init__(
        self,
        jar: CookieJarLike,
        store: CookieStore,
        *,
        interval: float = 1.0,
        enabled: bool = True,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self.jar = jar
        self.store = store
        self.interval = interval
        self.enabled = enabled
        self.loaded = 0
        self._saved = self._deleted = self._flushes = self._failures = 0
        # Drained from the jar but not committed yet (None = delete).
        self._pending: dict[CookieKey, Cookie | None] = {}
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> CookieSync:
        if not self.enabled:
            return self
        try:
            cookies = await self.store.load()
        except BaseException:
            await self.store.aclose()
            raise
        for cookie in cookies:
            self.jar.add(cookie)
        self.loaded = len(cookies)
        if self.store.read_only:
            return self
        self._task = asyncio.create_task(self._flusher(), name="scrapekit cookie flusher")
        return self

    async def flush(self) -> int:
        """Save the jar's changes now; return how many cookies were written or deleted.

        Returns 0 when there was nothing to save, or when saving failed: the failure is
        logged and the changes are tried again at the next flush.

        Raises:
            RuntimeError: `aclose()` has begun (it flushes a last time itself).
        """
        if self._closed:
            raise RuntimeError("cookie sync is closed")
        async with self._lock:
            if self._closed:  # closed while this call waited for the flusher
                raise RuntimeError("cookie sync is closed")
            if not self.enabled or self.store.read_only:
                self.jar.drain_changes()  # nothing to save them to; keep the change log small
                return 0
            return await run_to_completion(self._flush())

    async def aclose(self) -> None:
        """Stop the flusher, flush a last time and close the store."""
        if self._closed:
            return
        self._closed = True
        await run_to_completion(self._close())

    def statistics(self) -> CookieSyncStatistics:
        """A snapshot of the counters; `flushes` counts successful non-empty saves."""
        return CookieSyncStatistics(
            self.loaded, self._saved, self._deleted, self._flushes, self._failures, self.enabled
        )

    async def _flush(self) -> int:
        self.jar.purge_expired()
        upserts, deletes = self.jar.drain_changes()
        for key in deletes:
            self._pending[key] = None
        for cookie in upserts:
            self._pending[cookie.key] = cookie
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        saves = [c for c in batch.values() if c is not None]
        removals = [k for k, c in batch.items() if c is None]
        try:
            await self.store.save(saves, removals)
        except BaseException as exc:
            # Kept for the next try (rewriting what did commit is harmless); anything newer
            # is still in the jar's change log and is merged on top of it then.
            self._pending = batch
            if not isinstance(exc, Exception):
                raise
            self._failures += 1  # whatever the backend raised, the crawl goes on
            error = f"{type(exc).__name__}: {exc}"
            log.warning("cookie flush failed", path=self.store.location, error=error)
            return 0
        self._saved += len(saves)
        self._deleted += len(removals)
        self._flushes += 1
        return len(batch)

    async def _flusher(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            if self._stopping.is_set():
                return
            if self.jar.dirty or self._pending:
                async with self._lock:
                    await self._flush()

    async def _close(self) -> None:
        try:
            if self._task is not None:
                # Stopped, not cancelled, so a save in progress finishes instead of tearing.
                self._stopping.set()
                await self._task
                async with self._lock:
                    await self._flush()
            elif self.store.read_only:
                self.jar.drain_changes()
        finally:
            self._task = None
            async with self._lock:
                await self.store.aclose()


async def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` to its end even if the caller is cancelled, then re-raise the cancellation.

    A half-done transaction on a shared connection, or a final flush that never happened,
    is worse than a shutdown that takes a few milliseconds longer.
    """
    task = asyncio.ensure_future(coro)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():  # the work itself was cancelled (the loop is shutting down)
                raise
            cancelled = exc
            continue
        if cancelled is not None:
            raise cancelled
        return result
