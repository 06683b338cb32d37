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
        return _storable(_encoder.encode(record))
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        pass
    for field in ("meta", "cb_kwargs", "headers"):  # find the culprit only on failure
        _check(request.url, field, record[field])
    raise UnstorableRequest(request.url, "the request", "is not JSON-compatible")


def decode(text: str) -> Request:
    """A request from `encode()`'s text; callbacks stay method names until a worker resolves."""
    return Request.from_record(json.loads(text))


def _storable(text: str) -> str:
    # json.dumps passes a lone surrogate (json.loads('"\\ud800"') makes one, so hostile JSON
    # can), but SQLite binds text as UTF-8 and would fail the whole transaction on it.
    text.encode("utf-8")
    return text


def _check(url: str, field: str, value: dict[str, Any]) -> None:
    for key, item in value.items():
        try:
            _storable(_encoder.encode({key: item}))
        except UnicodeEncodeError:
            raise UnstorableRequest(
                url,
                f"{field}[{key!r}]",
                "holds text that is not UTF-8 (a lone surrogate, as hostile JSON can give)",
            ) from None
        except (TypeError, ValueError) as exc:
            raise UnstorableRequest(
                url, f"{field}[{key!r}]", f"holds {type(item).__name__}, not JSON data ({exc})"
            ) from None
