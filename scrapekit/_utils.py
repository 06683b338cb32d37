"""Small private helpers shared by more than one stage: URL origins, default ports, regexes."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx2

from scrapekit._cache import byte_lru_cache

__all__ = ["DEFAULT_PORTS", "Origin", "compile_regex", "origin_key", "origin_of"]

#: The port a URL of each scheme uses when it names none.
DEFAULT_PORTS = {"http": 80, "https": 443}

#: (scheme, host, port): the host lower-case and IDNA-encoded, the port always filled in.
Origin = tuple[str, str, int]


def origin_key(url: httpx2.URL) -> Origin:
    """The URL's origin, for comparing: httpx2 leaves a default port out, so it is put back."""
    scheme = url.scheme
    return scheme, url.raw_host.decode("ascii"), url.port or DEFAULT_PORTS.get(scheme, 0)


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL: lower-case, IDNA host, default port left out."""
    parts = urlsplit(url)
    return _origin(f"{parts.scheme}://{parts.netloc}/")


# Cached: it runs for every request, and a crawl sees few distinct origins (1 MiB of them).
@byte_lru_cache(1 << 20)
def _origin(root: str) -> str:
    scheme, host, port = origin_key(httpx2.URL(root))
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return (
        f"{scheme}://{host}"
        if port == DEFAULT_PORTS.get(scheme, 0)
        else f"{scheme}://{host}:{port}"
    )


def compile_regex(pattern: str | re.Pattern[str], what: str) -> re.Pattern[str]:
    """`pattern` compiled; a bad one raises `re.error` naming `what` and the pattern.

    Python's message ("unterminated character set at position 4") names neither, and the
    traceback ends in the re module, far from the spider line that passed it.
    """
    if isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise re.error(
            f"{what} {pattern!r} is not a valid regular expression: {exc.msg} at position "
            f"{exc.pos} (escape literal characters such as ( [ . ? with a backslash)"
        ) from None
