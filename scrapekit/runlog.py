"""A run as the engine sees it: its lock and state, first log line, row, end, and start().

The frontier records runs (scheduler/frontier/runs.py); this module is what the engine calls:
`run_state` takes the run lock (runlock.py) and opens the frontier, `announce` logs the first
line of a crawl (new or resumed, and where its state lives),
`Recorder` writes the run's counters every few seconds while it runs (so `scrapekit status`
in another process sees live numbers), `end` writes how it ended, and `start_outputs` reads
start() so that a resumed crawl skips what earlier runs already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from scrapekit import exitcodes, runlock
from scrapekit.callbacks import run_callback
from scrapekit.scheduler.frontier import Frontier, open_frontier
from scrapekit.scheduler.frontier.runs import RunProgress, RunStart

if TYPE_CHECKING:
    from scrapekit.scheduler import Scheduler
    from scrapekit.settings import Settings
    from scrapekit.spider import Spider
    from scrapekit.stats import CrawlStats

#: Seconds between writes of a running run's counters to its row.
UPDATE_INTERVAL = 1.0


@contextlib.asynccontextmanager
async def run_state(settings: Settings, spider_name: str, log: Any) -> AsyncIterator[Frontier]:
    """Hold the spider's run lock, then open its frontier (new or resumed run) and say which.

    The lock comes first: no other process may open the frontier file meanwhile.
    """
    async with (
        runlock.hold(settings, spider_name, log),
        open_frontier(settings, spider_name) as frontier,
    ):
        announce(frontier.run_start(), log)
        yield frontier


def announce(run: RunStart, log: Any) -> None:
    """The crawl's first line: "new run N" or "resumed run N with P pending", and the state."""
    if run.run is None:
        log.info("new run", state="memory (FRONTIER = memory: nothing is kept after the run)")
    elif run.resumed:
        log.info(
            f"resumed run {run.run} with {run.pending} pending",
            run=run.run, crawl=run.crawl, pending=run.pending, state=run.state,
            start="read to the end" if run.start_done else f"{run.start_stored} outputs stored",
        )  # fmt: skip
    else:
        log.info(f"new run {run.run}", run=run.run, crawl=run.crawl, state=run.state)


def progress(stats: CrawlStats, scheduler: Scheduler | None) -> RunProgress:
    """The run's counters now."""
    return RunProgress(
        pages=stats.pages,
        items=stats.items,
        errors=stats.error_count,
        in_flight=scheduler.in_flight if scheduler is not None else 0,
        pending=scheduler.pending if scheduler is not None else 0,
    )


class Recorder:
    """Writes the running run's counters to its row every UPDATE_INTERVAL seconds."""

    def __init__(self, frontier: Frontier, stats: CrawlStats, scheduler: Scheduler) -> None:
        self._frontier = frontier
        self._stats = stats
        self._scheduler = scheduler
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Recorder:
        if self._frontier.run_start().run is not None:
            self._task = asyncio.create_task(self._run(), name="scrapekit-run-row")
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(UPDATE_INTERVAL)
            # A failed write is not worth a crawl: the row is written again at the end.
            with contextlib.suppress(Exception):
                await self._frontier.record_run(progress(self._stats, self._scheduler))


async def end(
    frontier: Frontier,
    stats: CrawlStats,
    scheduler: Scheduler | None,
    error: BaseException | None,
    settings: Settings,
    log: Any,
) -> None:
    """Say if the run stopped early at a limit; write its end: counters, finish reason and
    exit code (also when it failed)."""
    if error is None and (
        early := stopped_early(stats.finish_reason, settings, frontier.run_start())
    ):
        log.info("crawl stopped early", reason=stats.finish_reason, detail=early)
    code = exitcodes.for_outcome(stats.finish_reason, error)
    try:
        await frontier.end_run(progress(stats, scheduler), stats.finish_reason, code)
    except Exception as exc:  # the crawl's own outcome matters more than its record
        log.error("run end not recorded", error=str(exc))


def stopped_early(finish_reason: str, settings: Settings, run: RunStart) -> str | None:
    """What a run that stopped at a limit says about it; None for any other run."""
    setting = exitcodes.LIMITS.get(finish_reason)
    if setting is None:
        return None
    text = f"stopped early: {setting}={settings[setting]} reached"
    if run.run is None:
        return text + "; FRONTIER = memory keeps nothing, so the next run starts over"
    return text + "; run the same command again to continue"


async def start_outputs(
    spider: Spider, scheduler: Scheduler, run: RunStart, room: int
) -> AsyncIterator[Any]:
    """start()'s outputs, minus those earlier runs of this crawl stored (none once it finished).

    Each output yielded sets `scheduler.start_read`, stored with the start request pushed for
    it or recorded once its item is committed; reading to the end is recorded too. So start()
    must be deterministic for a resume to skip the right ones. Read lazily: the next output
    only when fewer than `room` requests could go soon (see `Scheduler.wait_for_room`); stops
    once the scheduler is closed.
    """
    if run.start_done:
        return
    position = 0
    async for output in run_callback(spider.start):
        position += 1
        if position <= run.start_stored:
            continue
        scheduler.start_read = position
        yield output
        if not await scheduler.wait_for_room(room):
            return
    await scheduler.frontier.record_start(position, done=True)
