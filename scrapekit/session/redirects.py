"""Redirects, followed by the session itself, hop by hop.

Part of the session stage. httpx2 would follow redirects with its own cookie handling; the
session follows them here instead so that scrapekit's jar sees every Set-Cookie (a login that
answers 302 + Set-Cookie is the common case) and sends the right cookies on the next hop. A
revisit is a loop only when nothing changed (same method, URL and cookies sent: a page that sets
a cookie and redirects to itself is a gate, not a loop), or past REDIRECT_MAX_TIMES. Each hop
passes the crawl's checks (`redirect_check`: off-site, URL length, robots.txt) before it is
sent, and carries credentials only where they belong (`credentials.py`). Two different
`Location` headers are refused (`BadRedirect`); identical repeats are followed once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx2

from scrapekit._utils import origin_key
from scrapekit.exceptions import BadRedirect, InvalidURL, RedirectBlocked, TooManyRedirects
from scrapekit.request import Request
from scrapekit.session.cookiejar import CookieJar
from scrapekit.session.credentials import CredentialScope, belongs_to, scope_header
from scrapekit.session.keepalive import KeepAliveSender

#: Judges a redirect hop: None lets it through, a reason ("offsite") drops the request.
RedirectCheck = Callable[[Request, str], Awaitable[str | None]]


async def collapse_locations(response: httpx2.Response) -> None:
    """httpx2 response hook: identical repeated Location headers become one.

    httpx2 runs response hooks before it builds `next_request`, which would otherwise join the
    repeats into one URL ("/a, /a"). Different values are left for `RedirectFollower` to
    refuse: there is no one place to go.
    """
    locations = response.headers.get_list("location")
    if len(locations) > 1 and len(distinct := _distinct(locations)) == 1:
        response.headers["Location"] = distinct[0]


def with_redirect_hooks(client: httpx2.AsyncClient) -> httpx2.AsyncClient:
    """`client`, with the response hook redirects need (once)."""
    hooks = client.event_hooks
    if collapse_locations not in hooks["response"]:
        client.event_hooks = {**hooks, "response": [*hooks["response"], collapse_locations]}
    return client


class RedirectFollower:
    """Sends a request and follows its redirects, applying the cookie jar on every hop."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        sender: KeepAliveSender,
        scope: CredentialScope,
        *,
        jar: CookieJar | None,
        follow: bool = True,
        max_redirects: int = 20,
    ) -> None:
        self._client = with_redirect_hooks(client)
        self._sender = sender
        self._scope = scope
        self._jar = jar
        self._follow = follow
        self._max_redirects = max_redirects
        #: Set by the engine so a hop passes the checks a link to its target would.
        self.check: RedirectCheck | None = None
        self.redirects = 0

    async def send(
        self, http_request: httpx2.Request, request: Request
    ) -> tuple[httpx2.Response, list[str]]:
        """Send; return the final response (streamed) and the URLs redirected from."""
        jar = self._jar
        own_authorization = next(
            (value for key, value in request.headers.items() if key.lower() == "authorization"),
            None,
        )
        home = origin_key(http_request.url) if own_authorization is not None else None
        # A hop is a loop only if nothing changed: same method, URL and cookies sent.
        visited: set[tuple[str, str, str | None]] = set()
        chain: list[str] = []
        while True:
            url = str(http_request.url)
            if jar is not None and (cookie := jar.header_for(url)) is not None:
                http_request.headers["Cookie"] = cookie
            key = (http_request.method, url, http_request.headers.get("cookie"))
            if key in visited:
                raise TooManyRedirects(
                    f"{request.url}: redirect loop ({' -> '.join([*chain, url])}), "
                    "with the same cookies each time",
                    request=request,
                )
            visited.add(key)
            if own_authorization is not None and home is not None:  # its origin only
                allowed = belongs_to(home, origin_key(http_request.url))
                scope_header(http_request, own_authorization, allowed)
            auth = self._scope.apply(self._client, http_request)
            response = await self._sender.send(http_request, auth)
            if jar is not None and (set_cookies := response.headers.get_list("set-cookie")):
                jar.extract(url, set_cookies)
            if not self._follow or not response.has_redirect_location:
                return response, chain
            await response.aclose()
            next_request = self._next_hop(response, request)
            if next_request is None:  # a Location httpx2 cannot parse: the 3xx is the answer
                return response, chain
            target = str(next_request.url)
            if next_request.url.scheme not in ("http", "https"):
                error = InvalidURL(target, f"redirected here from {url}; only http(s) is fetched")
                error.request = request
                raise error
            if self.check is not None and (why := await self.check(request, target)):
                raise RedirectBlocked(request, target, why)
            if len(chain) >= self._max_redirects:
                raise TooManyRedirects(
                    f"{request.url}: more than {self._max_redirects} redirects "
                    "(REDIRECT_MAX_TIMES)",
                    request=request,
                )
            chain.append(url)
            self.redirects += 1
            http_request = next_request

    @staticmethod
    def _next_hop(response: httpx2.Response, request: Request) -> httpx2.Request | None:
        """The next hop httpx2 built; BadRedirect when the response names two targets."""
        # Identical repeats were collapsed by `collapse_locations`: any left are different.
        if len(locations := response.headers.get_list("location")) > 1:
            raise BadRedirect(request, str(response.request.url), _distinct(locations))
        return response.next_request


def _distinct(locations: list[str]) -> list[str]:
    return list(dict.fromkeys(location.strip() for location in locations))
