"""SIGINT/SIGTERM handling for a crawl, from its first step to its last (CLOSE_TIMEOUT).

While the crawl is being set up, a signal aborts it. While it runs, the first signal stops
scheduling (in-flight requests finish) and a second one cancels the workers at once. While
resources close (pipelines writing their last bytes, the cookie jar flushing) the first signal
is noted, and the next one abandons closing; closing is also abandoned once it has taken
CLOSE_TIMEOUT seconds. Abandoning cancels the crawl's task: an awaiting close stops there
(an overwritten feed then keeps its previous file), a blocking one cannot be interrupted.
The handlers the caller had (signal.signal or loop.add_signal_handler) are restored at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class StopSignals:
    """Counts SIGINT/SIGTERM and acts according to the crawl's phase."""

    def __init__(self, *, close_timeout: float = 0.0) -> None:
        self.count = 0
        self.phase = "setup"
        self.abandoned: str | None = None
        """Why closing was abandoned: "signal" or "timeout" (None: it was not)."""
        self._close_timeout = close_timeout
        self._closing_signals = 0
        self._timer: asyncio.TimerHandle | None = None
        self._task = asyncio.current_task()
        self._graceful: Callable[[], None] | None = None
        self._immediate: Callable[[], None] | None = None

    def running(self, graceful: Callable[[], None], immediate: Callable[[], None]) -> None:
        """The crawl runs: the first signal calls `graceful`, a later one `immediate`."""
        self.phase = "running"
        self._graceful, self._immediate = graceful, immediate
        if self.count:  # a signal came while the crawl was being set up
            graceful()

    def closing(self) -> None:
        """Resources are closing: signals no longer interrupt the crawl, only the closing, and
        closing gets CLOSE_TIMEOUT seconds."""
        self.phase = "closing"
        if self._close_timeout > 0 and self._task is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._close_timeout, self._abandon, "timeout")

    def closed(self) -> None:
        """Closing finished: no time limit any more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _abandon(self, why: str) -> None:
        if self.abandoned is not None or self._task is None:
            return
        self.abandoned = why
        log.error(
            "close abandoned",
            reason=why,
            close_timeout=self._close_timeout,
            hint="output closed so far is kept; an overwritten feed keeps its previous file",
        )
        self._task.cancel()

    def _handle(self, name: str) -> None:
        self.count += 1
        if self.phase == "setup":
            log.warning("stopping before the crawl started", signal=name)
            if self._task is not None:
                self._task.cancel()
        elif self.phase == "closing":
            self._closing_signals += 1
            if self._closing_signals == 1:
                log.warning(
                    "closing, please wait",
                    signal=name,
                    hint="signal again to abandon closing (feeds may not be complete)",
                )
            else:
                self._abandon("signal")
        elif self.count == 1 and self._graceful is not None:
            log.warning(
                "shutting down",
                signal=name,
                hint="in-flight requests finish; signal again to stop now",
            )
            self._graceful()
        elif self._immediate is not None:
            log.warning("stopping now", signal=name)
            self._immediate()

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Route SIGINT/SIGTERM here while the block runs (main thread only), then give them
        back to whatever handled them before."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        loop = asyncio.get_running_loop()
        previous: dict[signal.Signals, tuple[Any, asyncio.Handle | None]] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            before = (signal.getsignal(sig), _loop_handler(loop, sig))
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._handle, sig.name)
                previous[sig] = before
        try:
            yield self
        finally:
            self.closed()
            for sig, (handler, loop_handle) in previous.items():
                loop.remove_signal_handler(sig)  # resets the signal to its default, not the old one
                if loop_handle is not None:
                    callback, args = _callback_of(loop_handle)
                    loop.add_signal_handler(sig, callback, *args)
                elif handler is not None:
                    signal.signal(sig, handler)


def _loop_handler(loop: asyncio.AbstractEventLoop, sig: signal.Signals) -> asyncio.Handle | None:
    """The handler the caller set with loop.add_signal_handler, if any.

    asyncio has no public getter for it; the Unix loops keep them in `_signal_handlers`.
    """
    handlers = getattr(loop, "_signal_handlers", None)
    if not isinstance(handlers, dict):
        return None
    handle = handlers.get(sig)
    return handle if isinstance(handle, asyncio.Handle) else None


def _callback_of(handle: asyncio.Handle) -> tuple[Callable[..., object], tuple[Any, ...]]:
    # Handles keep their callback and arguments privately; re-adding needs both.
    return handle._callback, tuple(handle._args)  # type: ignore[attr-defined]
