"""Session: the one shared HTTP identity of a crawl, and its only way onto the network.

Stage 5 of the flow. Every worker and the spider's own code (`await session.get(...)`) fetch
through one Session, so they share one connection pool, one set of headers and auth, and one
cookie jar. The session follows redirects itself, hop by hop, so the jar sees every Set-Cookie
(`redirects.py`), and credentials stay with their origin (`credentials.py`). A request lost on
a stale keep-alive connection is sent again (`keepalive.py`). The session keeps the identity
(headers, auth, cookies), fetches, and is the one place where httpx2's exceptions become
scrapekit's `FetchError` tree, with the request attached. Reads MAX_RESPONSE_BYTES,
WARN_RESPONSE_BYTES, REDIRECT_ENABLED, REDIRECT_MAX_TIMES, COOKIES_ENABLED,
PERSIST_SESSION_COOKIES and CONCURRENCY (the pool size), and the client settings (see
`client.py`; PROXY is named, without its credentials, in the errors it causes, and a proxy
that refuses the credentials or cannot be reached raises ProxyFailed: see `proxy.py`);
`meta["download_timeout"]` overrides DOWNLOAD_TIMEOUT for one request,
`meta["max_response_bytes"]` MAX_RESPONSE_BYTES, and `meta["truncate_body"]` keeps the first
that many bytes of a larger body instead of failing with ResponseTooLarge. The HTTP cache
(httpcache/) is not here but in front of it, for the crawl's pages only: what the session
fetches for the login lifecycle or the spider's own code is always fetched for real.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2
import structlog

from scrapekit._resource import AsyncResource
from scrapekit.exceptions import (
    BadRequestMeta,
    DecodingError,
    FetchError,
    FetchTimeout,
    InvalidURL,
    ProxyFailed,
    TooManyRedirects,
    TransportError,
)
from scrapekit.log import hide_userinfo
from scrapekit.request import Request
from scrapekit.response import Response
from scrapekit.session.body import read_body
from scrapekit.session.client import build_client
from scrapekit.session.cookiejar import CookieJar
from scrapekit.session.credentials import CredentialScope
from scrapekit.session.fetchmeta import fetch_meta_problem
from scrapekit.session.forms import FormValue, form_request
from scrapekit.session.keepalive import KeepAliveSender
from scrapekit.session.proxy import PROXY_AUTH_REQUIRED, auth_refused, proxy_failure
from scrapekit.session.redirects import RedirectCheck, RedirectFollower

if TYPE_CHECKING:
    from scrapekit.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    """Traffic through the session."""

    requests: int
    redirects: int
    stale_resends: int
    """Requests sent again because a pooled connection had closed before answering."""
    bytes_received: int
    cookies: int
    errors: Mapping[str, int]
    proxy: str | None = None
    """The PROXY requests go through, its credentials hidden; None: none."""


class Session(AsyncResource):
    """Owns the crawl's one httpx2.AsyncClient and cookie jar; fetch() makes Responses."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        jar: CookieJar | None = None,
        max_response_bytes: int = 0,
        warn_response_bytes: int = 0,
        follow_redirects: bool = True,
        max_redirects: int = 20,
        timeout: float | None = None,
        cookies_enabled: bool = True,
        pool_size: int = 100,
        fresh_client: Callable[[], httpx2.AsyncClient] | None = None,
        proxy: str | None = None,
    ) -> None:
        self._client = client
        #: The proxy the client goes through, as errors and statistics show it (no password).
        self._proxy = hide_userinfo(proxy) if proxy else None
        self._cookies_enabled = cookies_enabled and jar is not None
        # With cookies off, user code may still read `cookies`: it gets a jar the session
        # never reads from nor writes to.
        self._jar = jar if jar is not None else CookieJar()
        self._max_bytes = max_response_bytes
        self._warn_bytes = warn_response_bytes
        self._timeout = timeout
        self._scope = CredentialScope()
        #: `fresh_client` builds the client a request lost on a stale pooled connection is sent
        #: again through (one new connection per request); without it the pool is tried again.
        self._sender = KeepAliveSender(client, fresh_client=fresh_client, pool_size=pool_size)
        self._redirects = RedirectFollower(
            client,
            self._sender,
            self._scope,
            jar=self._jar if self._cookies_enabled else None,
            follow=follow_redirects,
            max_redirects=max_redirects,
        )
        self._requests = 0
        self._bytes = 0
        self._errors: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None
    ) -> Session:
        """A session with a client and a cookie jar built from settings."""
        enabled = bool(settings["COOKIES_ENABLED"])
        return cls(
            build_client(settings, transport=transport),
            jar=CookieJar(persist_session_cookies=bool(settings["PERSIST_SESSION_COOKIES"])),
            cookies_enabled=enabled,
            pool_size=int(settings["CONCURRENCY"]),
            # A custom transport is the caller's stack: no second client is built around it.
            fresh_client=None
            if transport is not None
            else functools.partial(build_client, settings, keepalive=False),
            max_response_bytes=int(settings["MAX_RESPONSE_BYTES"]),
            warn_response_bytes=int(settings["WARN_RESPONSE_BYTES"]),
            follow_redirects=bool(settings["REDIRECT_ENABLED"]),
            max_redirects=int(settings["REDIRECT_MAX_TIMES"]),
            timeout=float(settings["DOWNLOAD_TIMEOUT"]),
            proxy=str(settings["PROXY"]) or None,
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        try:
            await self._client.aclose()
        finally:
            await self._sender.aclose()

    # -- persisted identity ------------------------------------------------------------------

    @property
    def headers(self) -> httpx2.Headers:
        """Headers sent with every request of the crawl; changes apply to all later requests."""
        return self._client.headers

    @property
    def auth(self) -> httpx2.Auth | None:
        """Credentials for every request: set a (user, password) tuple or any httpx2.Auth."""
        return self._client.auth

    @auth.setter
    def auth(self, value: httpx2.Auth | tuple[str, str] | None) -> None:
        self._client.auth = value  # type: ignore[assignment]  # httpx2 accepts None to unset

    @property
    def auth_domain(self) -> str | None:
        """Where credentials go: None, the origin of the first request sent with them (the
        default); a domain, it and its subdomains; "", every host. Never https to http."""
        return self._scope.domain

    @auth_domain.setter
    def auth_domain(self, value: str | None) -> None:
        self._scope.domain = value

    @property
    def cookies(self) -> CookieJar:
        """The session's cookie jar (one the session never uses when COOKIES_ENABLED is false)."""
        return self._jar

    @property
    def redirect_check(self) -> RedirectCheck | None:
        """Set by the engine so a redirect hop passes the same checks (off-site, URL length,
        robots.txt) as a link to its target would."""
        return self._redirects.check

    @redirect_check.setter
    def redirect_check(self, check: RedirectCheck | None) -> None:
        self._redirects.check = check

    # -- fetching ----------------------------------------------------------------------------

    async def fetch(self, request: Request) -> Response:
        """Send a request, following redirects hop by hop, and read the final body.

        Raises a `FetchError` subclass carrying the request (and the response when one came).
        """
        meta = request.meta
        if meta and (problem := fetch_meta_problem(meta)) is not None:
            self._errors[BadRequestMeta.reason] += 1
            raise BadRequestMeta(
                f"{request.url}: meta[{problem.key!r}] must be {problem.expected}, "
                f"got {problem.value!r}",
                request=request,
            )
        timeout = meta.get("download_timeout", self._timeout)
        self._requests += 1
        started = time.perf_counter()
        try:
            # DOWNLOAD_TIMEOUT bounds the whole fetch too (redirects and body included), so a
            # server dripping one byte at a time cannot hold a worker forever.
            async with asyncio.timeout(timeout):
                http_request = self._client.build_request(
                    request.method,
                    request.url,
                    headers=request.headers or None,
                    content=request.body or None,
                    timeout=httpx2.USE_CLIENT_DEFAULT
                    if "download_timeout" not in request.meta
                    else httpx2.Timeout(timeout),
                )
                http_response, chain = await self._redirects.send(http_request, request)
                if self._proxy is not None and http_response.status_code == PROXY_AUTH_REQUIRED:
                    # The proxy's answer, not the site's: no page ever gets through this way.
                    await http_response.aclose()
                    raise auth_refused(self._proxy)
                try:
                    body = await read_body(
                        http_response,
                        request,
                        int(request.meta.get("max_response_bytes", self._max_bytes) or 0),
                        truncate=bool(request.meta.get("truncate_body")),
                    )
                    if self._warn_bytes and len(body) > self._warn_bytes:
                        log.warning(
                            "large response", url=request.url, bytes=len(body),
                            limit=self._warn_bytes,
                        )  # fmt: skip
                finally:
                    await http_response.aclose()
        except TimeoutError as exc:
            self._errors[FetchTimeout.reason] += 1
            way = f" through proxy {self._proxy} (PROXY)" if self._proxy is not None else ""
            raise FetchTimeout(
                f"{request.url}: no complete response{way} within {timeout} s (DOWNLOAD_TIMEOUT)",
                request=request,
            ) from exc
        except FetchError as exc:
            if exc.request is None:  # raised below with no request at hand: attached here, once
                exc.request = request
            self._errors[exc.reason] += 1
            raise
        except ProxyFailed:
            self._errors["proxy"] += 1
            raise
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            if failed := proxy_failure(exc, self._proxy, request.url):
                self._errors["proxy"] += 1
                raise failed from exc
            error = _translate(exc, request, self._proxy)
            self._errors[error.reason] += 1
            raise error from exc
        self._bytes += len(body)
        return Response(
            str(http_response.url) if chain else request.url,
            status=http_response.status_code,
            headers=http_response.headers,
            body=body,
            request=request,
            elapsed=time.perf_counter() - started,
            http_version=http_response.http_version,
            redirect_urls=tuple(chain),
        )

    # -- conveniences for login code ---------------------------------------------------------

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

    async def submit_form(
        self,
        response: Response,
        formdata: Mapping[str, FormValue] | None = None,
        *,
        selector: str = "form",
        **kwargs: Any,
    ) -> Response:
        """Fill the page's form (keeping hidden fields such as CSRF tokens) and submit it."""
        return await self.fetch(form_request(response, formdata, selector=selector, **kwargs))

    def statistics(self) -> SessionStatistics:
        """A snapshot of the session's counters."""
        return SessionStatistics(
            requests=self._requests,
            redirects=self._redirects.redirects,
            stale_resends=self._sender.resends,
            bytes_received=self._bytes,
            cookies=len(self._jar) if self._cookies_enabled else 0,
            errors=dict(self._errors),
            proxy=self._proxy,
        )


def _translate(
    exc: httpx2.HTTPError | httpx2.InvalidURL, request: Request, proxy: str | None = None
) -> FetchError:
    """The scrapekit error for an httpx2 error; the only place this mapping lives.

    With a proxy, an error reaching it names it (`proxy`: credentials already hidden), since
    the connection went to the proxy, not to the request's host.
    """
    cause = f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)
    detail = f"{request.url}: {cause}"
    if proxy is not None:
        if isinstance(exc, httpx2.ConnectTimeout):  # a refused connection is ProxyFailed
            detail = f"{request.url}: cannot connect to proxy {proxy} (PROXY): {cause}"
        elif isinstance(exc, httpx2.ProxyError):
            detail = f"{request.url}: proxy {proxy} (PROXY) refused the request: {cause}"
        elif isinstance(exc, httpx2.TransportError):  # a reset, garbage, a stall: say the way
            detail = f"{request.url} through proxy {proxy} (PROXY): {cause}"
    # Connect errors and connect/pool timeouts happen before a byte of the request was sent.
    sent = not isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout)
    if isinstance(exc, httpx2.TimeoutException):
        return FetchTimeout(detail, request=request, request_sent=sent)
    if isinstance(exc, httpx2.TooManyRedirects):
        return TooManyRedirects(detail, request=request)
    if isinstance(exc, httpx2.DecodingError):
        return DecodingError(detail, request=request)
    if isinstance(exc, httpx2.UnsupportedProtocol | httpx2.InvalidURL):
        error = InvalidURL(request.url, str(exc))
        error.request = request
        return error
    if isinstance(exc, httpx2.TransportError):
        return TransportError(detail, request=request, request_sent=sent)
    return FetchError(detail, request=request)
