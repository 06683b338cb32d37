"""The session stage: the one shared, logged-in HTTP identity of a crawl."""

from __future__ import annotations

from scrapekit.session.client import build_client
from scrapekit.session.session import Session, SessionStatistics

__all__ = ["Session", "SessionStatistics", "build_client"]
