"""SIGINT/SIGTERM handling for a crawl, from its first step to its last (CLOSE_TIMEOUT).

While the crawl is being set up, a signal aborts it. While it runs, the first signal stops
scheduling (in-flight requests finish) and a second one cancels the workers at once. While
resources close (pipelines writing their last bytes, the cookie jar flushing) the first signal
is noted, and the next one abandons closing; closing is also abandoned once it has taken
CLOSE_TIMEOUT seconds. Abandoning cancels the crawl's task: an awaiting close stops there
(an overwritten feed then keeps its previous file), a blocking one cannot be interrupted.

The exit stack then runs the closers that remain, and any of them may hang too, so abandoning
is not a one-off: every further signal cancels again, and once CLOSE_TIMEOUT has passed the
task is cancelled again every RECANCEL_SECONDS until closing ends. CLOSE_TIMEOUT is thus a
deadline for the whole close, not for the first closer that overruns it.

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

#: After CLOSE_TIMEOUT, how often a closer still awaiting is cancelled again.
RECANCEL_SECONDS = 0.05


class StopSignals:
    """Counts SIGINT/SIGTERM and acts according to the crawl's phase."""

    def __init__(self, *, close_timeout: float = 0.0) -> None:
        self.count = 0
        self.phase = "setup"
        self.abandoned: str | None = None
        """Why closing was abandoned: "signal" or "timeout" (None: it was not)."""
        self._close_timeout = close_timeout
        self._closing_signals = 0
        self._closed = False
        self._cancels = 0  # how many times we cancelled the task: each must be taken back
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
            self._timer = loop.call_later(self._close_timeout, self._deadline)

    def closed(self) -> None:
        """Closing finished: no time limit any more."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def forgive(self, exc: BaseException) -> bool:
        """Whether `exc` is the cancellation that abandoning the close caused; if so, take
        every one of those cancellations back, so the task is not left cancelling."""
        if self.abandoned is None or not isinstance(exc, asyncio.CancelledError):
            return False
        if self._task is not None:
            for _ in range(self._cancels):
                self._task.uncancel()
        self._cancels = 0
        return True

    def _deadline(self) -> None:
        """CLOSE_TIMEOUT has passed: abandon, and keep cancelling whichever closer awaits."""
        self._abandon("timeout")
        if not self._closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(RECANCEL_SECONDS, self._deadline)

    def _abandon(self, why: str) -> None:
        if self._task is None or self._closed:
            return
        if self.abandoned is None:
            self.abandoned = why
            log.error(
                "close abandoned",
                reason=why,
                close_timeout=self._close_timeout,
                hint="output closed so far is kept; an overwritten feed keeps its previous file",
            )
        elif why == "signal":
            log.warning("close abandoned again", reason=why)
        # Again for the closers the exit stack runs after the abandoned one: they may hang too.
        self._cancels += 1
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
        inspectable = _loop_handlers(loop) is not None
        previous: dict[signal.Signals, tuple[Any, asyncio.Handle | None, bool]] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            handler, loop_handle = signal.getsignal(sig), _loop_handler(loop, sig)
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._handle, sig.name)
                # The loop routes every signal it handles through one Python-level handler:
                # finding it there before means the caller had a loop handler, even when the
                # loop does not show which.
                via_loop = handler is not None and handler is signal.getsignal(sig)
                previous[sig] = (handler, loop_handle, via_loop)
        try:
            yield self
        finally:
            self.closed()
            lost: list[str] = []
            for sig, (handler, loop_handle, via_loop) in previous.items():
                loop.remove_signal_handler(sig)  # resets the signal to its default, not the old one
                restore = _callback_of(loop_handle) if loop_handle is not None else None
                if restore is not None:
                    loop.add_signal_handler(sig, restore[0], *restore[1])
                elif loop_handle is not None or (via_loop and not inspectable):
                    lost.append(sig.name)
                elif handler is not None and not via_loop:
                    signal.signal(sig, handler)
            if lost:
                log.warning(
                    "signal handlers not restored",
                    signals=lost,
                    reason=f"{type(loop).__name__} does not show its signal handlers",
                    hint="handlers added with loop.add_signal_handler before the crawl are "
                    "gone; add them again after it",
                )


def _loop_handlers(loop: asyncio.AbstractEventLoop) -> dict[Any, Any] | None:
    """The handlers set with loop.add_signal_handler, or None if the loop does not show them.

    asyncio has no public getter for them; its Unix loops keep them in `_signal_handlers`
    (uvloop, for one, does not).
    """
    handlers = getattr(loop, "_signal_handlers", None)
    return handlers if isinstance(handlers, dict) else None


def _loop_handler(loop: asyncio.AbstractEventLoop, sig: signal.Signals) -> asyncio.Handle | None:
    """The handler the caller set with loop.add_signal_handler, if any (and if it can tell)."""
    handle = (_loop_handlers(loop) or {}).get(sig)
    return handle if isinstance(handle, asyncio.Handle) else None


def _callback_of(handle: asyncio.Handle) -> tuple[Callable[..., object], tuple[Any, ...]] | None:
    """A handle's callback and arguments (re-adding needs both), or None if it hides them."""
    callback, args = getattr(handle, "_callback", None), getattr(handle, "_args", None)
    if not callable(callback) or not isinstance(args, tuple | list):
        return None
    return callback, tuple(args)
