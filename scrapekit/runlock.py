"""The run lock: one crawl of a spider at a time, `STATE_DIR/<spider>/run.lock`.

An exclusive `flock` on the file, held for the whole run; the file says who holds it (pid and
since when, as JSON). The kernel drops a flock with its process, so a lock left by a process
that was killed (kill -9, an OOM kill, a reboot) is simply free: no stale-lock guessing. A
second crawl of the spider either stops at once with CrawlRunning (exit code 75) or, with
RUN_LOCK_WAIT, waits for the first to end. The engine takes the lock before the frontier
opens, so the Python API is covered too. `holder()` reads the file without locking it (for
`scrapekit status`). Reads STATE_DIR and RUN_LOCK_WAIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapekit import state
from scrapekit.exceptions import CrawlRunning, PathNotWritable

if TYPE_CHECKING:
    from scrapekit.settings import Settings

RUN_LOCK = "run.lock"
_POLL = 0.1  # seconds between attempts while waiting for the lock


@dataclass(frozen=True, slots=True)
class Holder:
    """Who wrote the lock file last: the running crawl, or one that died holding it."""

    pid: int | None
    """None: the file's content cannot be read as a holder."""
    since: float | None
    """Wall-clock time the lock was taken."""

    @property
    def alive(self) -> bool:
        """Whether a process with that pid exists now."""
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # it exists, under another user
        return True


def lock_path(settings: Settings, spider_name: str) -> Path:
    """Where spider `spider_name`'s run lock lives (beside its frontier)."""
    return state.frontier_path(settings, spider_name).with_name(RUN_LOCK)


def holder(path: Path) -> Holder | None:
    """Who holds (or last held) the lock, from the file; None when nobody does (empty, none).

    Reads only: never takes the lock, so it cannot get in the way of a crawl starting.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError:
        return Holder(None, None)
    if not text:
        return None
    return _parse(text)


def _parse(text: str) -> Holder:
    try:
        data: Any = json.loads(text)
        pid, since = data["pid"], data["since"]
        if isinstance(pid, int) and pid > 0 and isinstance(since, int | float):
            return Holder(pid, float(since))
    except (ValueError, TypeError, KeyError):
        pass
    return Holder(None, None)  # corrupt content: whoever holds the lock is unknown


@contextlib.asynccontextmanager
async def hold(settings: Settings, spider_name: str, log: Any) -> AsyncIterator[Path]:
    """Hold the spider's run lock for the block; CrawlRunning if another process holds it
    (unless RUN_LOCK_WAIT: then wait, saying so once)."""
    path = lock_path(settings, spider_name)
    fd = _open(path)
    try:
        waited = False
        while not _try_lock(fd):
            if not settings["RUN_LOCK_WAIT"]:
                held = holder(path)
                raise CrawlRunning(spider_name, held.pid if held else None, str(path))
            if not waited:
                held = holder(path)
                log.info(
                    "waiting for the running crawl to end",
                    pid=held.pid if held else None,
                    lock=str(path),
                )
                waited = True
            await asyncio.sleep(_POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # nobody holds it now (status reads the file)
    finally:
        os.close(fd)  # drops the lock


def _open(path: Path) -> int:
    try:
        state.private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise PathNotWritable(
            "the run lock", str(path), state.problem(exc, path.parent), "STATE_DIR"
        ) from None
    return fd


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
