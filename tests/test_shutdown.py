"""Signal handling around a crawl: the caller's handlers come back afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections import UserDict
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

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


async def test_hidden_loop_handlers_are_reported_not_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A loop that does not show its handlers (as uvloop): a WARNING says the caller's loop
    handler is gone, instead of a silent loss; the signal is not left ignored either."""
    loop = asyncio.get_running_loop()
    shown = loop._signal_handlers  # type: ignore[attr-defined]
    # The loop still works with a mapping that is not a dict, but scrapekit cannot read it.
    loop._signal_handlers = UserDict(shown)  # type: ignore[attr-defined]
    loop.add_signal_handler(signal.SIGTERM, lambda: None)
    try:
        await crawl_async(Idle, {**quiet(tmp_path), "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        warned = [line for line in lines if line["event"] == "signal handlers not restored"]
        assert len(warned) == 1, lines
        assert warned[0]["level"] == "warning"
        assert warned[0]["signals"] == ["SIGTERM"]
        # Not the loop's no-op trampoline: a SIGTERM would otherwise be ignored for good.
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        loop._signal_handlers = shown  # type: ignore[attr-defined]


async def test_hidden_loop_still_restores_signal_module_handlers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a loop that hides its handlers, a signal.signal handler still comes back, and
    nothing is reported lost."""
    loop = asyncio.get_running_loop()
    shown = loop._signal_handlers  # type: ignore[attr-defined]
    loop._signal_handlers = UserDict(shown)  # type: ignore[attr-defined]

    def mine(signum: int, frame: FrameType | None) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        await crawl_async(Idle, {**quiet(tmp_path), "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"})
        assert signal.getsignal(signal.SIGTERM) is mine
        assert "signal handlers not restored" not in capsys.readouterr().err
    finally:
        signal.signal(signal.SIGTERM, previous)
        loop._signal_handlers = shown  # type: ignore[attr-defined]
