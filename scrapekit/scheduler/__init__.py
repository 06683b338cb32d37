"""The scheduler stage: filters, fingerprints and frontier backends behind `Scheduler`."""

from __future__ import annotations

from scrapekit.scheduler.filters import DepthFilter, OffsiteFilter, UrlLengthFilter
from scrapekit.scheduler.fingerprint import canonicalize_url, fingerprint
from scrapekit.scheduler.frontier import Frontier, MemoryFrontier
from scrapekit.scheduler.scheduler import Scheduler, SchedulerStatistics

__all__ = [
    "DepthFilter",
    "Frontier",
    "MemoryFrontier",
    "OffsiteFilter",
    "Scheduler",
    "SchedulerStatistics",
    "UrlLengthFilter",
    "canonicalize_url",
    "fingerprint",
]
