"""The demo site's login sessions and CSRF tokens, both keyed by one secret (`SiteOptions.secret`).

A `sessionid` is a signed token, so it outlives the process that issued it, as a real site's does:
any site started with the same secret accepts it (the default, `DEMO_SECRET`, is shared by every
demo run, so a crawler's persisted cookie jar stays logged in across `make demo` runs):

    <user>.<issued-at>.<nonce>.<signature>

- user: the username, percent-encoded (dots too, so the token always has four fields);
- issued-at: Unix time in *milliseconds* (so a short `session_max_age` is judged exactly);
- nonce: 12 random bytes, URL-safe base64 without padding;
- signature: HMAC-SHA256 of the first three fields under a key derived from the secret, truncated
  to 16 bytes, URL-safe base64 without padding.

Reads `session_max_age` (judged from issued-at, so it holds across restarts), `session_max_requests`
and `username`. What lives only in this process's memory, and is forgotten by a restart:
- request counts: a token first seen after a restart starts again at 0 requests;
- revocations (logout, and a token that ran out of requests) and the `expire_all()` cut-off:
  a restarted site honours such a token again until `session_max_age` ends it;
- the issued `csrftoken` cookies: after a restart the login form hands out a new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote, unquote

DEMO_SECRET = "scrapekit-demo: a published, shared secret (demo use only)"

_SIGNATURE_BYTES = 16
_TOKEN = re.compile(r"([^.]+)\.([0-9]{1,15})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22})")


class Visitor(Enum):
    """What the request's cookies say about who is asking."""

    ANONYMOUS = "anonymous"  # no session cookie
    LOGGED_IN = "logged in"
    EXPIRED = "expired"  # a session cookie the site does not honour (expired, forged, ended)


@dataclass(frozen=True, slots=True)
class SessionToken:
    """The signed fields of a `sessionid`."""

    user: str
    issued_ms: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _derive_key(secret: str, purpose: str) -> bytes:
    # One key per use, so a CSRF form token can never double as a session signature.
    return hmac.new(secret.encode(), f"scrapekit-demo {purpose}".encode(), hashlib.sha256).digest()


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES])


def sign_token(secret: str, token: SessionToken) -> str:
    """The `sessionid` value for `token`, signed with `secret`."""
    user = quote(token.user, safe="").replace(".", "%2E")
    payload = f"{user}.{token.issued_ms}.{token.nonce}"
    return f"{payload}.{_signature(_derive_key(secret, 'session'), payload)}"


def verify_token(secret: str, value: str) -> SessionToken | None:
    """The fields of `value` if it is well formed and signed with `secret`, else None."""
    match = _TOKEN.fullmatch(value)
    if match is None:
        return None
    payload = value.rpartition(".")[0]
    expected = _signature(_derive_key(secret, "session"), payload)
    if not hmac.compare_digest(match[4].encode(), expected.encode()):
        return None
    return SessionToken(unquote(match[1]), int(match[2]), match[3])


class SessionManager:
    """Issues, checks and ends session tokens; issues and checks CSRF tokens; thread-safe."""

    def __init__(
        self,
        secret: str,
        *,
        username: str,
        max_requests: int | None = None,
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._csrf_key = _derive_key(secret, "csrf")
        self._username = username
        self._max_requests = max_requests
        self._max_age_ms = None if max_age is None else max_age * 1000
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, int] = {}  # token -> requests seen by this process
        self._revoked: set[str] = set()
        self._cutoff_ms = -1  # tokens issued at or before this are ended (expire_all)
        self._last_issued_ms = -1
        self._csrf_cookies: set[str] = set()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def issue(self) -> str:
        """A new session token for the site's user."""
        with self._lock:
            # Strictly after the cut-off, so a login right after expire_all() (same ms) holds.
            issued = max(self._now_ms(), self._cutoff_ms + 1)
            self._last_issued_ms = max(self._last_issued_ms, issued)
        nonce = _b64(secrets.token_bytes(12))
        return sign_token(self._secret, SessionToken(self._username, issued, nonce))

    def check(self, value: str | None) -> Visitor:
        """Count one request against the session and say whether it is still valid."""
        if not value:  # absent, or emptied by a client that kept a deleted cookie
            return Visitor.ANONYMOUS
        token = verify_token(self._secret, value)
        if token is None or token.user != self._username:  # forged, or for another account
            return Visitor.EXPIRED
        with self._lock:
            if value in self._revoked or token.issued_ms <= self._cutoff_ms:
                return Visitor.EXPIRED
            too_many = False
            if self._max_requests is not None:
                count = self._requests.get(value, 0) + 1
                self._requests[value] = count
                too_many = count > self._max_requests
            too_old = self._max_age_ms is not None and (
                self._now_ms() - token.issued_ms > self._max_age_ms
            )
            if too_many or too_old:
                self._revoked.add(value)
                self._requests.pop(value, None)
                return Visitor.EXPIRED
            return Visitor.LOGGED_IN

    def revoke(self, value: str | None) -> None:
        """End one session (logout); unsigned values are ignored, so the set stays bounded."""
        if value and verify_token(self._secret, value) is not None:
            with self._lock:
                self._revoked.add(value)
                self._requests.pop(value, None)

    def expire_all(self) -> None:
        """End every session issued until now, here or by any other process with this secret."""
        with self._lock:
            self._cutoff_ms = max(self._now_ms(), self._last_issued_ms)

    # -- CSRF ------------------------------------------------------------------------------------

    def new_csrf_cookie(self) -> str:
        """A fresh `csrftoken` cookie value, remembered as issued."""
        value = secrets.token_urlsafe(24)
        with self._lock:
            self._csrf_cookies.add(value)
        return value

    def knows_csrf_cookie(self, value: str) -> bool:
        """Whether this process issued the `csrftoken` cookie `value`."""
        with self._lock:
            return value in self._csrf_cookies

    def csrf_form_token(self, cookie_value: str) -> str:
        """The hidden form field that goes with a `csrftoken` cookie (an HMAC of it)."""
        return hmac.new(self._csrf_key, cookie_value.encode(), hashlib.sha256).hexdigest()[:32]
