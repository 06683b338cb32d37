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

import httpx2

#: (scheme, host, port), the port filled in when the URL leaves it to the scheme's default.
Origin = tuple[str, str, int]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: httpx2.URL) -> Origin:
    """The URL's origin; httpx2 leaves a default port out, so it is put back for comparison."""
    scheme = url.scheme
    return scheme, url.host, url.port or _DEFAULT_PORTS.get(scheme, 0)


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
        origin = origin_of(url)
        if self._origin is None:
            self._origin = origin
        if self.domain is None:
            return belongs_to(self._origin, origin)
        if self._origin[0] == "https" and origin[0] != "https":
            return False  # they were given over TLS: never send them in clear text
        domain = self.domain
        host = origin[1]
        return not domain or host == domain or host.endswith("." + domain)


def belongs_to(home: Origin, origin: Origin) -> bool:
    """Whether credentials of `home` may go to `origin`: the same one, or its https upgrade."""
    return origin == home or (home == ("http", origin[1], 80) and origin[::2] == ("https", 443))
