"""Builds the crawl's one httpx.AsyncClient from settings.

Reads CONCURRENCY (pool size), DOWNLOAD_TIMEOUT, HTTP2, REDIRECT_ENABLED, REDIRECT_MAX_TIMES,
USER_AGENT and DEFAULT_REQUEST_HEADERS. A custom transport (any httpx.AsyncBaseTransport)
may be passed in: that is where another HTTP stack plugs in without touching the session.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import httpx

from scrapekit.exceptions import SettingsError

if TYPE_CHECKING:
    from scrapekit.settings import Settings


def build_client(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """A client whose pool holds one connection per worker, so no worker waits for a socket."""
    http2 = bool(settings["HTTP2"])
    if http2 and importlib.util.find_spec("h2") is None:
        raise SettingsError(
            "HTTP2",
            "needs the h2 package: pip install 'scrapekit[http2]'",
            settings.source("HTTP2"),
        )
    concurrency = int(settings["CONCURRENCY"])
    headers = {"User-Agent": str(settings["USER_AGENT"]), **settings["DEFAULT_REQUEST_HEADERS"]}
    return httpx.AsyncClient(
        http1=True,
        http2=http2,
        headers=headers,
        timeout=httpx.Timeout(float(settings["DOWNLOAD_TIMEOUT"])),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        follow_redirects=bool(settings["REDIRECT_ENABLED"]),
        max_redirects=int(settings["REDIRECT_MAX_TIMES"]),
        transport=transport,
    )
