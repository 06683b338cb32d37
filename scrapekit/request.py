"""Request: what a spider wants fetched, and what to call with the result.

A plain value object. The scheduler stores it, a worker hands it to the session, and the
response carries it back to the callback. `to_record()`/`from_record()` turn it into plain data
(callbacks by name, no pickle) so a durable frontier can store it.
"""

from __future__ import annotations

import base64
import json as jsonlib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import httpx2

from scrapekit._cache import byte_lru_cache
from scrapekit._types import CallbackRef, HeadersLike, ParamsLike
from scrapekit.exceptions import InvalidURL, UnstorableRequest

_SCHEMES = frozenset({"http", "https"})
#: What no host name may hold once percent-decoded (WHATWG URL: forbidden domain code points).
#: Browsers refuse such a URL, so a link or a <base href> to "//%zz/" is malformed, not a host.
_FORBIDDEN_IN_HOST = re.compile(r"[\x00-\x20\x7f#%/:<>?@\[\\\]^|]")


def check_url(url: str) -> str:
    """Return `url` stripped of surrounding blanks, or raise InvalidURL saying what is wrong."""
    if not isinstance(url, str):
        raise InvalidURL(repr(url), f"a URL must be a str, not {type(url).__name__}")
    return _check_url(url)


# Pages repeat the same links (most links a crawl sees are duplicates): checking each distinct
# URL once keeps link following cheap. Failures raise, and exceptions are never cached.
# 16 MiB holds ~65,000 typical URLs; URLs over 8 KiB are checked every time, never kept.
@byte_lru_cache(16 << 20)
def _check_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidURL(url, f"malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        if not scheme:
            raise InvalidURL(url, "no scheme; use an absolute http(s) URL or response.follow()")
        raise InvalidURL(url, f"scheme {scheme!r} is not http or https")
    if not parts.hostname:
        raise InvalidURL(url, "no host")
    if "[" not in parts.netloc and not _valid_host(parts.hostname):  # IPv6 is checked below
        raise InvalidURL(url, f"host {parts.hostname!r} is not a host name (a browser refuses it)")
    try:  # what httpx2 will refuse to send: bad IDNA hosts, control characters
        httpx2.URL(url)
    except (httpx2.InvalidURL, ValueError) as exc:
        raise InvalidURL(url, str(exc)) from None
    return url


def _valid_host(host: str) -> bool:
    try:
        decoded = unquote(host, errors="strict")
    except UnicodeDecodeError:  # percent-escapes that are not UTF-8
        return False
    return _FORBIDDEN_IN_HOST.search(decoded) is None


def shorten_url(url: str, keep: int = 120) -> str:
    """`url` cut to `keep` characters for a log line, saying how long it really was."""
    return url if len(url) <= keep else f"{url[:keep]}... ({len(url)} characters)"


def _headers_dict(headers: HeadersLike | None) -> dict[str, str]:
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(k): str(v) for k, v in items}


def _callback_name(callback: CallbackRef, url: str, field: str) -> str | None:
    """A callback as the name of the spider method it is, for `to_record()`.

    Only a spider's own method can be found again by name in another process (a lambda, a
    function or another object's method cannot): anything else is UnstorableRequest.
    """
    if callback is None or isinstance(callback, str):
        return callback
    from scrapekit.spider import Spider  # the spider module imports this one

    owner = getattr(callback, "__self__", None)
    name = getattr(callback, "__name__", None)
    if (
        not isinstance(owner, Spider)
        or not isinstance(name, str)
        or getattr(owner, name, None) != callback
    ):
        raise UnstorableRequest(
            url,
            field,
            f"{callback!r} is not a spider method; only spider methods can be stored "
            "(pass the method, or its name as a string)",
        )
    return name


class Request:
    """An HTTP request plus crawl instructions (callback, priority, meta).

    `method` defaults to GET, or to POST when `data` or `json` is given. `data` may be a mapping
    (sent as a form), `str` or `bytes`; `json` is serialised to the body. Higher `priority`
    is fetched first. `dont_filter=True` skips the duplicate and off-site filters.
    """

    __slots__ = (
        "body",
        "callback",
        "cb_kwargs",
        "depth",
        "dont_filter",
        "errback",
        "headers",
        "meta",
        "method",
        "priority",
        "url",
    )

    def __init__(
        self,
        url: str,
        method: str | None = None,
        *,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        data: Mapping[str, Any] | Iterable[tuple[str, Any]] | str | bytes | None = None,
        json: Any = None,
        body: bytes | None = None,
        callback: CallbackRef = None,
        errback: CallbackRef = None,
        priority: int = 0,
        meta: dict[str, Any] | None = None,
        cb_kwargs: dict[str, Any] | None = None,
        dont_filter: bool = False,
        depth: int = 0,
    ) -> None:
        url = check_url(url)
        self.headers = _headers_dict(headers)
        if params:
            pairs = params.items() if isinstance(params, Mapping) else params
            query = urlencode(list(pairs), doseq=True)
            base, _, fragment = url.partition("#")
            url = (
                base + ("&" if "?" in base else "?") + query + (f"#{fragment}" if fragment else "")
            )
        payload = body
        if json is not None:
            payload = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
            self.headers.setdefault("Content-Type", "application/json")
        elif data is not None:
            if isinstance(data, bytes):
                payload = data
            elif isinstance(data, str):
                payload = data.encode()
            else:
                pairs = data.items() if isinstance(data, Mapping) else data
                payload = urlencode(list(pairs), doseq=True).encode()
                self.headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        self.url = url
        self.method = (method or ("POST" if payload is not None else "GET")).upper()
        self.body = payload or b""
        self.callback = callback
        self.errback = errback
        self.priority = priority
        self.meta: dict[str, Any] = {} if meta is None else meta
        self.cb_kwargs: dict[str, Any] = {} if cb_kwargs is None else cb_kwargs
        self.dont_filter = dont_filter
        self.depth = depth

    def __repr__(self) -> str:
        return f"<{self.method} {self.url}>"

    def replace(self, **changes: Any) -> Request:
        """Return a copy with some attributes changed (url, method, headers, body, meta, ...)."""
        new = Request.__new__(Request)
        for name in Request.__slots__:
            setattr(new, name, changes.pop(name) if name in changes else getattr(self, name))
        if changes:
            raise TypeError(f"Request has no attribute(s) {', '.join(sorted(changes))}")
        new.url = check_url(new.url)
        new.meta = dict(new.meta)
        new.headers = dict(new.headers)
        return new

    def to_record(self) -> dict[str, Any]:
        """Plain JSON-safe data for storage; callbacks are kept by spider-method name."""
        return {
            "url": self.url,
            "method": self.method,
            "headers": self.headers,
            "body": base64.b64encode(self.body).decode() if self.body else "",
            "callback": _callback_name(self.callback, self.url, "callback"),
            "errback": _callback_name(self.errback, self.url, "errback"),
            "priority": self.priority,
            "meta": self.meta,
            "cb_kwargs": self.cb_kwargs,
            "dont_filter": self.dont_filter,
            "depth": self.depth,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Request:
        """Rebuild a request from `to_record()` output; callbacks stay names until resolved."""
        return cls(
            record["url"],
            record["method"],
            headers=record.get("headers"),
            body=base64.b64decode(record["body"]) if record.get("body") else None,
            callback=record.get("callback"),
            errback=record.get("errback"),
            priority=record.get("priority", 0),
            meta=dict(record.get("meta") or {}),
            cb_kwargs=dict(record.get("cb_kwargs") or {}),
            dont_filter=record.get("dont_filter", False),
            depth=record.get("depth", 0),
        )
