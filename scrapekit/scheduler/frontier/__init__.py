"""Frontier backends behind one interface; `open_frontier` builds one by name, importing lazily."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from scrapekit.scheduler.frontier.base import Entry, Frontier, FrontierStatistics, Lease
from scrapekit.scheduler.frontier.memory import MemoryFrontier

if TYPE_CHECKING:
    from scrapekit.settings import Settings

#: FRONTIER name -> "module:Class". Backends with heavy dependencies (Redis) are imported
#: only when chosen.
BACKENDS = {"memory": "scrapekit.scheduler.frontier.memory:MemoryFrontier"}


def open_frontier(settings: Settings) -> Frontier:
    """The frontier named by the FRONTIER setting (validated against BACKENDS)."""
    module, _, name = BACKENDS[str(settings["FRONTIER"])].partition(":")
    cls: type[Frontier] = getattr(importlib.import_module(module), name)
    return cls()


__all__ = [
    "BACKENDS",
    "Entry",
    "Frontier",
    "FrontierStatistics",
    "Lease",
    "MemoryFrontier",
    "open_frontier",
]
