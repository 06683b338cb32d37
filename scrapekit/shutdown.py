"""SIGINT/SIGTERM handling for a crawl, from its first step to its last.

While the crawl is being set up, a signal aborts it. While it runs, the first signal stops
scheduling (in-flight requests finish) and a second one cancels the workers at once. While
resources close (pipelines writing their last bytes, the cookie jar flushing) signals are
noted and ignored, so output files are always complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

import structlog

log = structlog.get_logger(__name__)


class StopSignals:
    """Counts SIGINT/SIGTERM and acts according to the crawl's phase."""

    def __init__(self) -> None:
        self.count = 0
        self.phase = "setup"
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
        """Resources are closing: signals no longer interrupt anything."""
        self.phase = "closing"

    def _handle(self, name: str) -> None:
        self.count += 1
        if self.phase == "setup":
            log.warning("stopping before the crawl started", signal=name)
            if self._task is not None:
                self._task.cancel()
        elif self.phase == "closing":
            log.warning("closing, please wait", signal=name)
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
        """Route SIGINT/SIGTERM here while the block runs (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._handle, sig.name)
                installed.append(sig)
        try:
            yield self
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
