"""Requests as JSON text, the form durable frontiers store them in (never pickle).

`Request.to_record()` names callbacks by spider method; here meta and cb_kwargs must be JSON
too. A request that cannot be stored raises `UnstorableRequest` naming the field, so the
scheduler drops it alone (counted as "unstorable request") and the crawl goes on.
"""

from __future__ import annotations

import json
from typing import Any

from scrapekit.exceptions import UnstorableRequest
from scrapekit.request import Request

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode(request: Request) -> str:
    """The request as JSON text; UnstorableRequest names the field that is not storable."""
    record = request.to_record()
    try:
        return _encoder.encode(record)
    except (TypeError, ValueError):
        pass
    for field in ("meta", "cb_kwargs", "headers"):  # find the culprit only on failure
        _check(request.url, field, record[field])
    raise UnstorableRequest(request.url, "the request", "is not JSON-compatible")


def decode(text: str) -> Request:
    """A request from `encode()`'s text; callbacks stay method names until a worker resolves."""
    return Request.from_record(json.loads(text))


def _check(url: str, field: str, value: dict[str, Any]) -> None:
    for key, item in value.items():
        try:
            _encoder.encode({key: item})
        except (TypeError, ValueError) as exc:
            raise UnstorableRequest(
                url, f"{field}[{key!r}]", f"holds {type(item).__name__}, not JSON data ({exc})"
            ) from None
