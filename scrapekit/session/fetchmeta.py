"""The request meta keys the fetch itself reads, checked before anything is sent.

Part of stage 5 (session). `meta["download_timeout"]` and `meta["max_response_bytes"]` come
from spider code or from `scrapekit parse --meta`; a value the fetch cannot use (text, a
negative number, null, NaN) would otherwise fail deep in asyncio or httpx2 as a worker
error with a traceback. The session fails that request alone (`BadRequestMeta`, not retried)
and `parse` refuses the option, both naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple


class MetaProblem(NamedTuple):
    """A meta key whose value the fetch cannot use."""

    key: str
    expected: str
    value: Any


#: Each key the fetch reads: what it must be, whether a whole number, and its least value.
_FETCH_META: dict[str, tuple[str, bool, float]] = {
    "download_timeout": ("a number of seconds > 0", False, 1e-9),
    "max_response_bytes": ("a whole number of bytes >= 0 (0: no limit)", True, 0),
}


def fetch_meta_problem(meta: Mapping[str, Any], *, none_ok: bool = True) -> MetaProblem | None:
    """The first key of `meta` the fetch reads whose value it cannot use, or None.

    None means no limit to the session (`max_response_bytes: None` reads a whole body);
    `none_ok=False` refuses it, for a command line that wants a bound spelt out.
    """
    for key, (expected, whole, least) in _FETCH_META.items():
        if key not in meta:
            continue
        value = meta[key]
        if value is None and none_ok:
            continue
        number = not isinstance(value, bool) and isinstance(value, int if whole else int | float)
        if not number or not least <= value < math.inf:  # null, NaN and Infinity too
            return MetaProblem(key, expected, value)
    return None
