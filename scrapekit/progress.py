"""Progress while a crawl runs: a live line on a terminal, a periodic `progress` event otherwise.

Reads PROGRESS (the live line, only when logs go to a terminal) and LOG_STATS_INTERVAL (the
periodic event under cron; 0 switches it off).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from scrapekit.log import TerminalWriter
    from scrapekit.scheduler import Scheduler
    from scrapekit.stats import CrawlStats

LIVE_REFRESH_SECONDS = 0.5


class ProgressReporter:
    """Reports crawl progress until cancelled."""

    def __init__(
        self,
        stats: CrawlStats,
        scheduler: Scheduler,
        writer: TerminalWriter,
        *,
        live: bool,
        interval: float,
    ) -> None:
        self._stats = stats
        self._scheduler = scheduler
        self._writer = writer
        self._live = live
        self._interval = interval
        self._log = structlog.get_logger("scrapekit.progress")

    def line(self) -> str:
        """The one-line summary shown on a terminal."""
        stats = self._stats
        minutes, seconds = divmod(int(stats.elapsed), 60)
        return (
            f"pages {stats.pages} | items {stats.items} | errors {stats.error_count} | "
            f"queue {self._scheduler.pending} | {stats.rate():.1f} pages/s | "
            f"{minutes:02d}:{seconds:02d}"
        )

    async def run(self) -> None:
        """Redraw the live line, or log `progress` every LOG_STATS_INTERVAL seconds."""
        if self._live:
            try:
                while True:
                    self._writer.set_status(self.line())
                    await asyncio.sleep(LIVE_REFRESH_SECONDS)
            finally:
                self._writer.set_status("")
        elif self._interval > 0:
            while True:
                await asyncio.sleep(self._interval)
                stats = self._stats
                self._log.info(
                    "progress",
                    pages=stats.pages,
                    items=stats.items,
                    errors=stats.error_count,
                    queue=self._scheduler.pending,
                    pages_per_second=round(stats.rate(), 2),
                    elapsed=round(stats.elapsed, 1),
                )
