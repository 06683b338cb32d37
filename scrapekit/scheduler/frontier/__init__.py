"""Frontier backends behind one interface; `open_frontier` builds one by name, importing lazily."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from scrapekit.scheduler.frontier.base import Entry, Frontier, FrontierStatistics, Lease
from scrapekit.scheduler.frontier.memory import MemoryFrontier

if TYPE_CHECKING:
    from scrapekit.settings import Settings

#: FRONTIER name -> "module:Class", the one list of backends (the FRONTIER validator reads it).
#: A backend is imported only when chosen, and built by `Frontier.from_settings`.
BACKENDS = {
    "memory": "scrapekit.scheduler.frontier.memory:MemoryFrontier",
    "sqlite": "scrapekit.scheduler.frontier.sqlite:SqliteFrontier",
}


def open_frontier(settings: Settings, spider_name: str) -> Frontier:
    """The frontier named by the FRONTIER setting (validated against BACKENDS) for a spider."""
    module, _, name = BACKENDS[str(settings["FRONTIER"])].partition(":")
    cls: type[Frontier] = getattr(importlib.import_module(module), name)
    return cls.from_settings(settings, spider_name)


__all__ = [
    "BACKENDS",
    "Entry",
    "Frontier",
    "FrontierStatistics",
    "Lease",
    "MemoryFrontier",
    "open_frontier",
]
