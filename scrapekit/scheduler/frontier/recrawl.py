"""RECRAWL_AFTER: which pages an earlier run fetched are due again, and how a revisit asks.

A durable frontier remembers, per fingerprint, when a page was last fetched for good and its
`ETag` and `Last-Modified` (the `fetched` table). In a new run, a link to such a page is kept
out while that fetch is younger than RECRAWL_AFTER (counted as not due); once it is older, the
request is queued as a revisit: it asks the server "changed since?" with `If-None-Match` /
`If-Modified-Since`, and carries `meta["recrawl"]` so the worker treats a 304 as unchanged.

Start requests (depth 0) and `dont_filter` requests are never kept out: the crawl grows from
them, and a site's listing pages must be read again to find what is new.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

#: The meta key a revisit carries: {"fetched_at": wall seconds, "etag": ..., "last_modified": ...}.
META_KEY = "recrawl"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Revisits:
    """What a push needs to apply RECRAWL_AFTER: the cut-off and which rows it applies to."""

    cutoff: float
    """Wall-clock time: a page fetched after it is not due yet."""
    rows: frozenset[int]
    """Ids of the rows it applies to (neither start requests nor dont_filter)."""


def history(
    conn: sqlite3.Connection, fingerprints: Iterable[bytes]
) -> dict[bytes, tuple[float, str | None, str | None]]:
    """fingerprint -> (fetched_at, etag, last_modified) for those an earlier fetch recorded."""
    wanted = list(fingerprints)
    found: dict[bytes, tuple[float, str | None, str | None]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        sql = (
            "SELECT fingerprint, fetched_at, etag, last_modified FROM fetched "
            f"WHERE fingerprint IN ({', '.join(['?'] * len(chunk))})"
        )
        for fingerprint, fetched_at, etag, last_modified in conn.execute(sql, chunk):
            found[fingerprint] = (float(fetched_at), etag, last_modified)
    return found


def revisit(record: str, fetched_at: float, etag: str | None, last_modified: str | None) -> str:
    """The stored request, made a conditional revisit of a page fetched at `fetched_at`."""
    data = json.loads(record)
    headers = dict(data.get("headers") or {})
    present = {name.lower() for name in headers}
    if etag and "if-none-match" not in present:
        headers["If-None-Match"] = etag
    if last_modified and "if-modified-since" not in present:
        headers["If-Modified-Since"] = last_modified
    data["headers"] = headers
    meta = dict(data.get("meta") or {})
    meta[META_KEY] = {"fetched_at": fetched_at, "etag": etag, "last_modified": last_modified}
    data["meta"] = meta
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


REMEMBER = (
    "INSERT INTO fetched (fingerprint, fetched_at, etag, last_modified) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (fingerprint) DO UPDATE SET fetched_at = excluded.fetched_at, "
    "etag = excluded.etag, last_modified = excluded.last_modified"
)
