"""Redirects, followed by the session itself, hop by hop.

Part of the session stage. httpx2 would follow redirects with its own cookie handling; the
session follows them here instead so that scrapekit's jar sees every Set-Cookie (a login that
answers 302 + Set-Cookie is the common case) and sends the right cookies on the next hop. A
revisit is a loop only when nothing changed (same method, URL and cookies sent: a page that sets
a cookie and redirects to itself is a gate, not a loop), or past REDIRECT_MAX_TIMES. Each hop
passes the crawl's checks (`redirect_check`: off-site, URL length, robots.txt) before it is
sent, and carries credentials only where they belong (`credentials.py`).

A 3xx with a Location is always a redirect, never the answer: the page is elsewhere. So a
Location that cannot be followed fails the request, to its errback, never retried (the server
answers the same way again):

- two different Location headers, or one that cannot be parsed at all (`http://[::1`, past
  httpx2's 65,536 characters): `BadRedirect`, naming the page and the Location;
- one that names a URL scrapekit does not fetch (`javascript:`, `ftp://`, port 99999): the
  `InvalidURL` a Request for it would raise, saying which page redirected there.

Identical repeated Location headers are followed once. Messages cut a long Location short.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx2

from scrapekit._utils import origin_key
from scrapekit.exceptions import BadRedirect, InvalidURL, RedirectBlocked, TooManyRedirects
from scrapekit.request import Request, check_url, shorten_url
from scrapekit.session.cookiejar import CookieJar
from scrapekit.session.credentials import CredentialScope, belongs_to, scope_header
from scrapekit.session.keepalive import KeepAliveSender

#: Judges a redirect hop: None lets it through, a reason ("offsite") drops the request.
RedirectCheck = Callable[[Request, str], Awaitable[str | None]]

_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")


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
            target = str(next_request.url)
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
    def _next_hop(response: httpx2.Response, request: Request) -> httpx2.Request:
        """The next hop httpx2 built, to a URL a Request could have; else the rule's error
        (module docstring)."""
        here = str(response.request.url)
        # Identical repeats were collapsed by `collapse_locations`: any left are different.
        if len(locations := response.headers.get_list("location")) > 1:
            shown = [shorten_url(location) for location in _distinct(locations)]
            raise BadRedirect(request, here, shown)
        location = locations[0].strip()
        next_request = response.next_request
        scheme = _SCHEME.match(location)
        if next_request is None and (scheme is None or scheme.group(1).lower() in _SCHEMES):
            raise _unparseable(request, response.request.url, location)
        target = location if next_request is None else str(next_request.url)
        try:
            check_url(target)
        except InvalidURL as exc:
            error = InvalidURL(shorten_url(target), f"{exc.problem}; redirected here from {here}")
            error.request = request
            error.request_sent = True  # the redirecting request was
            raise error from None
        if next_request is None:  # a URL scrapekit accepts that httpx2 cannot follow
            raise _unparseable(request, response.request.url, location)
        return next_request


def _unparseable(request: Request, here: httpx2.URL, location: str) -> BadRedirect:
    """BadRedirect for a Location httpx2 cannot resolve against `here`, with its reason."""
    try:
        here.join(location)
        why = "cannot be followed"
    except (httpx2.InvalidURL, ValueError) as exc:
        why = f"cannot be parsed ({exc})"
    return BadRedirect(request, str(here), [shorten_url(location)], problem=why)


def _distinct(locations: list[str]) -> list[str]:
    return list(dict.fromkeys(location.strip() for location in locations))
