"""Where the session's credentials may go: one origin, as httpx and browsers scope them.

Part of the session stage. Credentials are the session's `auth` and an `Authorization` header
among its persistent headers (Spider.headers). By default they belong to the origin (scheme,
host, port) of the first request sent while they are set, so a redirect or a link to another
port, to plain http, or to another host never carries them; the one exception, as in httpx,
is the same host upgraded from http to https on the default ports. `Spider.auth_domain` opts
in to a wider scope (that domain and its subdomains, or "" for every host); even then,
credentials first sent over https never go over plain http. An `Authorization` header set on
one Request is that request's own: it stays on the request's origin.
"""

from __future__ import annotations

from typing import Any

import httpx2

from scrapekit._utils import Origin, origin_key

_NO_AUTH = httpx2.Auth()  # sent on hops to another origin: credentials stay with their host


class CredentialScope:
    """Decides, hop by hop, whether the session's credentials may be sent to a URL."""

    def __init__(self) -> None:
        #: None: the origin of the first request with credentials. A domain: that domain and
        #: its subdomains. "": every host. Either way never from https down to http.
        self.domain: str | None = None
        self._origin: Origin | None = None

    @property
    def origin(self) -> Origin | None:
        """The origin the credentials were first sent to (None before that)."""
        return self._origin

    def allows(self, url: httpx2.URL) -> bool:
        """Whether credentials may go to `url`; the first call pins their origin."""
        origin = origin_key(url)
        if self._origin is None:
            self._origin = origin
        if self.domain is None:
            return belongs_to(self._origin, origin)
        if self._origin[0] == "https" and origin[0] != "https":
            return False  # they were given over TLS: never send them in clear text
        domain = self.domain
        host = url.host  # as the user writes a domain: "bücher.de", not its IDNA form
        return not domain or host == domain or host.endswith("." + domain)

    def apply(self, client: httpx2.AsyncClient, http_request: httpx2.Request) -> Any:
        """Scope the client's auth and Authorization header to this hop; the auth to send."""
        header = client.headers.get("authorization")
        if client.auth is None and header is None:
            return httpx2.USE_CLIENT_DEFAULT
        allowed = self.allows(http_request.url)
        if header is not None and http_request.headers.get("authorization") in (header, None):
            scope_header(http_request, header, allowed)  # unless the Request set its own
        return httpx2.USE_CLIENT_DEFAULT if allowed else _NO_AUTH


def belongs_to(home: Origin, origin: Origin) -> bool:
    """Whether credentials of `home` may go to `origin`: the same one, or its https upgrade."""
    return origin == home or (home == ("http", origin[1], 80) and origin[::2] == ("https", 443))


def scope_header(http_request: httpx2.Request, value: str, allowed: bool) -> None:
    """Put the Authorization header on this hop, or take it off."""
    if allowed:
        http_request.headers["Authorization"] = value
    else:
        http_request.headers.pop("Authorization", None)
