"""Telling a PROXY that turns the whole session away from a page that failed.

Part of stage 5 (session). Reads PROXY through the session (its URL, credentials hidden).
Two answers come from the proxy itself, never from the site: a 407 Proxy Authentication
Required (a response for an http:// target, a ProxyError on the CONNECT of an https:// one,
before any TLS) and a refused connection to the proxy. Either fails every request alike, so
the session raises ProxyFailed (a SessionError: the crawl stops early, as for a lost login)
rather than a FetchError to retry or hand to a callback. A connect timeout is not one of
them: a busy proxy may answer the next time, so it stays a retried FetchTimeout. Nor is a
TLS failure on an https:// page: the handshake runs through the tunnel with the site (its
certificate, its protocol), so it is that page's FetchError.
"""

from __future__ import annotations

import ssl

import httpx2

from scrapekit.exceptions import ProxyFailed

#: The status a proxy answers when it wants other (or any) credentials (RFC 9110 15.5.8).
PROXY_AUTH_REQUIRED = 407


def auth_refused(proxy: str) -> ProxyFailed:
    """The error for a 407 from `proxy` (credentials hidden: `user:***@` when it has some)."""
    if "@" in proxy:
        return ProxyFailed(
            proxy,
            "refused the credentials (HTTP 407 Proxy Authentication Required)",
            "check PROXY's user and password",
        )
    return ProxyFailed(
        proxy,
        "asks for credentials (HTTP 407 Proxy Authentication Required)",
        "put them in PROXY as http://user:password@host:port",
    )


def proxy_failure(exc: Exception, proxy: str | None, url: str = "") -> ProxyFailed | None:
    """The ProxyFailed an httpx2 error stands for when fetching `url` through `proxy`; None
    when it is about one request (or there is no proxy)."""
    if proxy is None:
        return None
    if url.lower().startswith("https:") and _tls_failure(exc):
        return None  # the site's certificate or protocol, met through the tunnel
    if isinstance(exc, httpx2.ProxyError) and str(exc).split(" ", 1)[0] == "407":
        return auth_refused(proxy)  # the CONNECT of an https:// target was refused
    if isinstance(exc, httpx2.ConnectError):
        # Through an http(s) proxy the only connection httpx2 opens is to the proxy: the
        # proxy reports its own failures to reach a site as a status, not as this.
        cause = " ".join(str(exc).split()) or type(exc).__name__
        fix = "is the proxy running? check PROXY's host and port"
        return ProxyFailed(proxy, f"cannot be reached: {cause}", fix)
    return None


def _tls_failure(exc: BaseException) -> bool:
    """Whether a TLS error (ssl.SSLError) is among `exc`'s causes."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
