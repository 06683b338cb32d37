"""Session: the one shared HTTP identity of a crawl, and its only way onto the network.

Stage 5 of the flow. Every worker and the spider's own code (`await self.session.get(...)`)
fetch through one Session, so they share one connection pool, one set of headers and auth and
one cookie jar. It is also the one place where httpx's exceptions become scrapekit's
`FetchError` tree, with the request attached. Reads MAX_RESPONSE_BYTES, WARN_RESPONSE_BYTES and
the client settings (see `client.py`); `meta["download_timeout"]` overrides DOWNLOAD_TIMEOUT
for one request.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from scrapekit.exceptions import (
    DecodingError,
    FetchError,
    FetchTimeout,
    InvalidURL,
    ResponseTooLarge,
    TooManyRedirects,
    TransportError,
)
from scrapekit.request import Request
from scrapekit.response import Response
from scrapekit.session.client import build_client

if TYPE_CHECKING:
    from scrapekit.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    """Traffic through the session."""

    requests: int
    bytes_received: int
    errors: Mapping[str, int]


class Session:
    """Owns the crawl's httpx.AsyncClient; `fetch()` turns a Request into a Response."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_response_bytes: int = 0,
        warn_response_bytes: int = 0,
    ) -> None:
        self._client = client
        self._max_bytes = max_response_bytes
        self._warn_bytes = warn_response_bytes
        self._requests = 0
        self._bytes = 0
        self._errors: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> Session:
        """A session with a client built from settings."""
        return cls(
            build_client(settings, transport=transport),
            max_response_bytes=int(settings["MAX_RESPONSE_BYTES"]),
            warn_response_bytes=int(settings["WARN_RESPONSE_BYTES"]),
        )

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._client.aclose()

    # -- persisted identity ------------------------------------------------------------------

    @property
    def headers(self) -> httpx.Headers:
        """Headers sent with every request of the crawl; changes apply to all later requests."""
        return self._client.headers

    @property
    def cookies(self) -> httpx.Cookies:
        """The session's cookies."""
        return self._client.cookies

    # -- fetching ----------------------------------------------------------------------------

    async def fetch(self, request: Request) -> Response:
        """Send a request and read its whole body.

        Raises a `FetchError` subclass carrying the request (and the response when one came).
        """
        timeout = request.meta.get("download_timeout")
        self._requests += 1
        started = time.perf_counter()
        try:
            http_request = self._client.build_request(
                request.method,
                request.url,
                headers=request.headers or None,
                content=request.body or None,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout),
            )
            http_response = await self._client.send(http_request, stream=True)
            try:
                body = await self._read_body(http_response, request)
            finally:
                await http_response.aclose()
        except FetchError as exc:
            self._errors[exc.reason] += 1
            raise
        except httpx.HTTPError as exc:
            error = _translate(exc, request)
            self._errors[error.reason] += 1
            raise error from exc
        self._bytes += len(body)
        return Response(
            str(http_response.url) if http_response.history else request.url,
            status=http_response.status_code,
            headers=http_response.headers,
            body=body,
            request=request,
            elapsed=time.perf_counter() - started,
            http_version=http_response.http_version,
        )

    async def _read_body(self, response: httpx.Response, request: Request) -> bytes:
        """The decoded body, cut off at MAX_RESPONSE_BYTES (checked after decompression)."""
        limit = self._max_bytes
        declared = response.headers.get("content-length")
        if limit and declared and declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(
                f"{request.url}: Content-Length {declared} is over MAX_RESPONSE_BYTES={limit}",
                request=request,
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if limit and size > limit:
                raise ResponseTooLarge(
                    f"{request.url}: body passed MAX_RESPONSE_BYTES={limit} (cut off while "
                    "reading; raise MAX_RESPONSE_BYTES to accept it)",
                    request=request,
                )
            chunks.append(chunk)
        if self._warn_bytes and size > self._warn_bytes:
            log.warning("large response", url=request.url, bytes=size, limit=self._warn_bytes)
        return b"".join(chunks)

    async def request(self, method: str, url: str, **kwargs: Any) -> Response:
        """Fetch outside the crawl queue (e.g. to log in), through the same client and cookies.

        Takes Request's keyword arguments (headers, params, data, json, meta ...).
        """
        return await self.fetch(Request(url, method, **kwargs))

    async def get(self, url: str, **kwargs: Any) -> Response:
        """`request("GET", url, ...)`."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response:
        """`request("POST", url, ...)`."""
        return await self.request("POST", url, **kwargs)

    def statistics(self) -> SessionStatistics:
        """A snapshot of the session's counters."""
        return SessionStatistics(
            requests=self._requests, bytes_received=self._bytes, errors=dict(self._errors)
        )


def _translate(exc: httpx.HTTPError, request: Request) -> FetchError:
    """The scrapekit error for an httpx error; the only place this mapping lives."""
    detail = (
        f"{request.url}: {type(exc).__name__}: {exc}" if str(exc) else f"{request.url}: {exc!r}"
    )
    if isinstance(exc, httpx.TimeoutException):
        return FetchTimeout(detail, request=request)
    if isinstance(exc, httpx.TooManyRedirects):
        return TooManyRedirects(
            f"{request.url}: too many redirects (REDIRECT_MAX_TIMES) or a redirect loop",
            request=request,
        )
    if isinstance(exc, httpx.DecodingError):
        return DecodingError(detail, request=request)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        error = InvalidURL(request.url, str(exc))
        error.request = request
        return error
    if isinstance(exc, httpx.TransportError):
        return TransportError(detail, request=request)
    return FetchError(detail, request=request)
