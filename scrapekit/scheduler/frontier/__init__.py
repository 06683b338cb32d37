"""Frontier backends behind one interface; `open_frontier` picks one by name."""

from __future__ import annotations

from scrapekit.scheduler.frontier.base import Frontier, FrontierStatistics
from scrapekit.scheduler.frontier.memory import MemoryFrontier

__all__ = ["Frontier", "FrontierStatistics", "MemoryFrontier"]
