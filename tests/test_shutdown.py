"""Signal handling around a crawl: the caller's handlers come back afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType
from typing import Any

from scrapekit import Request, Spider, crawl, crawl_async


class Idle(Spider):
    """Nothing to crawl: the crawl sets up, runs and closes at once."""

    name = "idle"

    async def start(self) -> AsyncIterator[Request]:
        return
        yield


def quiet(tmp_path: Path) -> dict[str, Any]:
    return {"LOG_LEVEL": "ERROR", "STATE_DIR": str(tmp_path / "state")}


def test_signal_module_handler_is_restored(tmp_path: Path) -> None:
    """A handler set with signal.signal before crawl() is the handler again afterwards."""
    seen: list[int] = []

    def mine(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        crawl(Idle, quiet(tmp_path))
        assert signal.getsignal(signal.SIGTERM) is mine
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_loop_signal_handler_is_restored(tmp_path: Path) -> None:
    """A handler set with loop.add_signal_handler before crawl_async() still runs afterwards."""
    loop = asyncio.get_running_loop()
    got = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, got.set)
    try:
        await crawl_async(Idle, quiet(tmp_path))
        # Checked first, so that a regression fails here instead of killing the test run.
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(got.wait(), timeout=5)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
