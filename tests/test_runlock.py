"""The run lock from the Python API, and how a finish reason becomes an exit code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import structlog

from scrapekit import Spider, crawl_async, exitcodes, runlock
from scrapekit.cli import EXIT_CODES
from scrapekit.exceptions import CrawlRunning
from scrapekit.settings import Settings
from scrapekit.stats import FAILED, INTERRUPTED


class Idle(Spider):
    name = "idle"

    async def start(self):  # type: ignore[no-untyped-def]
        return
        yield


def settings(state: Path) -> Settings:
    return Settings.load(
        project_file=None, spider_cls=Idle, env={}, overrides={"STATE_DIR": str(state)}
    )


async def test_the_python_api_takes_the_lock_too(tmp_path: Path) -> None:
    """A crawl started from Python while the spider runs stops before opening its state."""
    log = structlog.get_logger()
    async with runlock.hold(settings(tmp_path), "idle", log) as path:
        held = runlock.holder(path)
        assert held is not None
        assert held.pid == os.getpid()
        assert held.alive
        with pytest.raises(CrawlRunning, match=f"pid {os.getpid()}"):
            await crawl_async(Idle, {"STATE_DIR": str(tmp_path)})
        assert not (tmp_path / "idle" / "frontier.db").exists()
    assert runlock.holder(path) is None  # released and emptied
    stats = await crawl_async(Idle, {"STATE_DIR": str(tmp_path)})
    assert stats["finish_reason"] == "finished"
    assert stats["run"]["run"] == 1


@pytest.mark.parametrize("content", ["", "{", '{"pid": "x", "since": 1}', "\x00\x01", "[1]"])
def test_lock_content_that_names_no_pid(tmp_path: Path, content: str) -> None:
    path = tmp_path / "run.lock"
    path.write_text(content)
    held = runlock.holder(path)
    assert held is None if not content else held == runlock.Holder(None, None)
    assert held is None or not held.alive


def test_every_exit_code_has_its_row_in_the_table() -> None:
    """The engine and the CLI map finish reasons with exitcodes; EXIT_CODES explains each code."""
    documented = {code for code, _ in EXIT_CODES}
    reasons = {"finished", *FAILED, *INTERRUPTED, *exitcodes.LIMITS}
    codes = {reason: exitcodes.for_reason(reason) for reason in reasons}
    assert set(codes.values()) | {exitcodes.USAGE, exitcodes.TEMPFAIL} <= documented
    assert {r for r, c in codes.items() if c == 0} == {"finished", *exitcodes.LIMITS}
    assert exitcodes.for_outcome("error", CrawlRunning("x", 1, "p")) == 75
    assert exitcodes.for_outcome("shutdown", KeyboardInterrupt()) == 3
