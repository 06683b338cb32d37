"""The session's cookie jar: RFC 6265 as browsers implement it, in memory, no I/O.

The session stage asks it for the Cookie header of every request (`header_for`) and feeds it
every Set-Cookie it receives (`extract`), hop by hop. The cookie store persists it write-behind
from `drain_changes()`. Settings (read by `session.py`, passed in here): COOKIES_ENABLED,
PERSIST_SESSION_COOKIES. The semantics and the test-vector results are in docs/cookies.md.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from scrapekit.session.cookieparse import (
    MAX_NAME_VALUE_BYTES,
    SetCookie,
    canonical_host,
    default_path,
    domain_match,
    is_loopback,
    is_public_suffix,
    parse_set_cookie,
    path_match,
    split_url,
    to_ascii,
)

__all__ = ["Cookie", "CookieJar"]

MAX_COOKIES_PER_DOMAIN = 180
"""Past this many cookies in one domain, the least recently used are evicted (as Chromium)."""

PURGE_TO = 150
"""Eviction goes down to this many, so a busy domain is not scanned on every new cookie."""

MAX_EXPIRY = 253402300799.0
"""9999-12-31T23:59:59Z: later expiry times are clamped to it."""

_SECURE_SCHEMES = frozenset({"https", "wss"})

Key = tuple[str, str, str]


@dataclass(slots=True)
class Cookie:
    """One stored cookie (RFC 6265 section 5.3 storage model).

    `domain` is the canonical (lower-case, no leading dot) host or domain; `host_only` says
    whether it matches only that exact host. `expires` is a Unix time, None for a session
    cookie. The identity of a cookie is (domain, path, name).
    """

    name: str
    value: str
    domain: str
    path: str
    host_only: bool = True
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None
    expires: float | None = None
    creation: float = 0.0
    last_access: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        """The cookie's identity: (domain, path, name)."""
        return (self.domain, self.path, self.name)

    @property
    def persistent(self) -> bool:
        """Whether the cookie has an expiry (otherwise it is a session cookie)."""
        return self.expires is not None


class CookieJar:
    """The cookies of one crawl session, indexed by domain so a lookup walks only the host's
    parent domains, whatever the size of the jar.

    `persist_session_cookies=False` keeps session cookies in memory as usual but leaves them
    out of `drain_changes()`, so the store never saves them.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, persist_session_cookies: bool = True
    ) -> None:
        self._clock = clock
        self._persist_session = persist_session_cookies
        # cookie domain -> key -> cookie: host-only and domain cookies of a domain share a bucket.
        self._domains: dict[str, dict[Key, Cookie]] = {}
        self._count = 0
        # Secure cookies by name, for the 6265bis rule that http:// cannot shadow them.
        self._secure: dict[str, set[Key]] = {}
        # Keys changed since the last drain -> "the store may hold a version that must go":
        # with session cookies not persisted, a session cookie in its place is then a delete.
        self._changed: dict[Key, bool] = {}
        # (expires, key) of persistent cookies, so purge_expired() (run by the store on every
        # flush) costs O(expired log n), not O(jar). Entries of replaced cookies go stale and
        # are skipped; the heap is rebuilt when they outnumber the live ones.
        self._expiry: list[tuple[float, Key]] = []
        self._last_creation = -math.inf

    # -- the hot path ------------------------------------------------------------------------

    def header_for(self, url: str) -> str | None:
        """The Cookie header for a request to `url` (RFC 6265 5.4), or None if no cookie applies.

        Domain- and path-matching, Secure only over https (or loopback), expired cookies
        dropped; longer paths first, then older cookies. Marks the sent cookies as accessed.
        """
        target = split_url(url)
        if target is None:
            return None
        scheme, host, path, is_ip = target
        now = self._clock()
        secure_ok = scheme in _SECURE_SCHEMES or is_loopback(host, is_ip)
        found: list[Cookie] = []
        expired: list[Key] = []
        domain = host
        while True:
            bucket = self._domains.get(domain)
            if bucket is not None:
                exact = domain == host
                for cookie in bucket.values():
                    if cookie.host_only and not exact:
                        continue
                    if cookie.expires is not None and cookie.expires <= now:
                        expired.append(cookie.key)
                    elif (secure_ok or not cookie.secure) and path_match(path, cookie.path):
                        found.append(cookie)
            dot = domain.find(".")
            if is_ip or dot < 0:
                break
            domain = domain[dot + 1 :]
        for key in expired:
            self._remove(key)
        if not found:
            return None
        found.sort(key=_send_order)
        for cookie in found:
            cookie.last_access = now
        return "; ".join([f"{cookie.name}={cookie.value}" for cookie in found])

    def extract(self, url: str, set_cookie_values: Iterable[str]) -> int:
        """Apply the Set-Cookie values received from `url`; how many cookies were stored,
        changed or deleted. Invalid lines and cookies the rules reject are skipped, never raised.
        """
        target = split_url(url)
        if target is None:
            return 0
        scheme, host, path, is_ip = target
        secure_origin = scheme in _SECURE_SCHEMES or is_loopback(host, is_ip)
        now = self._clock()
        changes = 0
        for line in set_cookie_values:
            parsed = parse_set_cookie(line)
            if parsed is None:
                continue
            cookie = _from_response(parsed, host, path, is_ip, secure_origin, now)
            if cookie is None:
                continue
            # RFC 6265bis 5.7 step 16: a cookie from an insecure origin cannot overwrite, delete
            # or shadow a Secure cookie of the same name.
            if not secure_origin and self._shadows_secure(cookie):
                continue
            changes += self._store(cookie, now)
        return changes

    # -- programmatic access -----------------------------------------------------------------

    def set(
        self,
        name: str,
        value: str,
        *,
        domain: str,
        path: str = "/",
        host_only: bool = False,
        secure: bool = False,
        http_only: bool = False,
        same_site: str | None = None,
        expires: float | None = None,
    ) -> Cookie:
        """Add or replace a cookie by hand: `session.cookies.set("sid", "…", domain="example.com")`.

        By default it is a domain cookie (sent to `domain` and its subdomains); `host_only=True`
        sends it to `domain` only. An `expires` in the past deletes the matching cookie.

        Raises:
            ValueError: the name, value, domain or path could not be sent back in a Cookie
                header (empty name, "=", ";" or a control character, a path not starting "/").
        """
        domain = canonical_host(domain.strip().lstrip("."))
        if not domain:
            raise ValueError(f"cookie {name!r}: domain must be a host name, e.g. 'example.com'")
        if not path.startswith("/"):
            raise ValueError(f"cookie {name!r}: path must start with '/', got {path!r}")
        parsed = parse_set_cookie(f"{name}={value}")
        if parsed is None or (parsed.name, parsed.value) != (name, value):
            raise ValueError(
                f"cookie {name!r}: the name must be non-empty and without '='; name and value "
                f"without ';', control characters or surrounding spaces, and under "
                f"{MAX_NAME_VALUE_BYTES} bytes together"
            )
        now = self._clock()
        cookie = Cookie(
            name,
            value,
            domain,
            path,
            host_only=host_only,
            secure=secure,
            http_only=http_only,
            same_site=same_site,
            expires=None if expires is None else min(expires, MAX_EXPIRY),
        )
        self._store(cookie, now)
        return self._domains.get(domain, {}).get(cookie.key, cookie)

    def add(self, cookie: Cookie) -> None:
        """Insert or replace `cookie` by key as it is, recording no change (loading the store)."""
        self._put(cookie)
        self._last_creation = max(self._last_creation, cookie.creation)

    def delete(self, domain: str, path: str, name: str) -> bool:
        """Delete one cookie by key; whether it existed."""
        key = (canonical_host(domain.lstrip(".")), path, name)
        bucket = self._domains.get(key[0])
        if bucket is None or key not in bucket:
            return False
        self._remove(key)
        return True

    def clear(self, domain: str | None = None) -> int:
        """Delete every cookie, or those of `domain` and its subdomains; how many."""
        if domain is None:
            doomed = list(self._domains)
            self._expiry = []
        else:
            domain = canonical_host(domain.lstrip("."))
            suffix = "." + domain
            doomed = [d for d in self._domains if d == domain or d.endswith(suffix)]
        keys = [key for d in doomed for key in self._domains[d]]
        for key in keys:
            self._remove(key)
        return len(keys)

    def purge_expired(self) -> int:
        """Delete the cookies that have expired; how many. Costs O(expired), not O(jar)."""
        now = self._clock()
        heap = self._expiry
        purged = 0
        while heap and heap[0][0] <= now:
            key = heapq.heappop(heap)[1]
            cookie = self._domains.get(key[0], {}).get(key)
            # Not stale: the cookie under that key now may have another expiry, or none.
            if cookie is not None and cookie.expires is not None and cookie.expires <= now:
                self._remove(key)
                purged += 1
        return purged

    def get(self, name: str, domain: str | None = None) -> str | None:
        """The value of a live cookie called `name` (in `domain` only, if given), or None.

        With several such cookies (other paths or domains) the oldest wins; pass `domain`
        to choose.
        """
        now = self._clock()
        if domain is None:
            candidates: Iterable[Cookie] = self
        else:
            candidates = self._domains.get(canonical_host(domain.lstrip(".")), {}).values()
        live = [c for c in candidates if c.name == name and (c.expires is None or c.expires > now)]
        return min(live, key=_send_order).value if live else None

    def __iter__(self) -> Iterator[Cookie]:
        """Every stored cookie (a snapshot: the jar may change while it is consumed)."""
        return iter([c for bucket in self._domains.values() for c in bucket.values()])

    def __len__(self) -> int:
        return self._count

    # -- persistence -------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Whether `drain_changes()` may have something to report."""
        return bool(self._changed)

    def drain_changes(self) -> tuple[list[Cookie], list[Key]]:
        """Cookies upserted and keys deleted since the last drain, in O(changes).

        A key changed then deleted is reported only as deleted; deleted then set again, only
        as upserted (its latest state). With `persist_session_cookies=False` session cookies
        are left out, and a session cookie that replaced a persistent one is reported as a
        deletion of its key. The upserted cookies are the jar's own objects: the jar may still
        update their `last_access`.
        """
        upserted: list[Cookie] = []
        deleted: list[Key] = []
        for key, stale_in_store in self._changed.items():
            cookie = self._domains.get(key[0], {}).get(key)
            if cookie is None:
                deleted.append(key)
            elif cookie.expires is not None or self._persist_session:
                upserted.append(cookie)
            elif stale_in_store:
                deleted.append(key)
        self._changed = {}
        return upserted, deleted

    # -- internals ---------------------------------------------------------------------------

    def _store(self, cookie: Cookie, now: float) -> int:
        """Store, replace or (if expired) delete by `cookie`'s key; 1 if the jar changed."""
        key = cookie.key
        bucket = self._domains.get(cookie.domain)
        old = None if bucket is None else bucket.get(key)
        if cookie.expires is not None and cookie.expires <= now:
            if old is None:
                return 0
            self._remove(key)
            return 1
        if old is not None:
            old.last_access = now
            if _same_content(old, cookie):
                return 0  # a refresh that changes nothing is not a write for the store
            cookie.creation = old.creation  # RFC 6265 5.3 step 11.3
        else:
            cookie.creation = self._next_creation(now)
        cookie.last_access = now
        self._put(cookie)
        self._mark(key, old is not None and old.persistent)
        if len(self._domains[cookie.domain]) > MAX_COOKIES_PER_DOMAIN:
            self._evict(cookie.domain, now)
        return 1

    def _put(self, cookie: Cookie) -> None:
        key = cookie.key
        bucket = self._domains.setdefault(cookie.domain, {})
        old = bucket.get(key)
        if old is None:
            self._count += 1
        elif old.secure:
            self._unindex_secure(old)
        bucket[key] = cookie
        if cookie.secure:
            self._secure.setdefault(cookie.name, set()).add(key)
        if cookie.expires is not None:
            heapq.heappush(self._expiry, (cookie.expires, key))
            if len(self._expiry) > 2 * self._count + 1024:
                self._expiry = [(c.expires, c.key) for c in self if c.expires is not None]
                heapq.heapify(self._expiry)

    def _remove(self, key: Key) -> None:
        bucket = self._domains[key[0]]
        cookie = bucket.pop(key)
        if not bucket:
            del self._domains[key[0]]
        self._count -= 1
        if cookie.secure:
            self._unindex_secure(cookie)
        self._mark(key, True)

    def _unindex_secure(self, cookie: Cookie) -> None:
        keys = self._secure[cookie.name]
        keys.discard(cookie.key)
        if not keys:
            del self._secure[cookie.name]

    def _mark(self, key: Key, stale_in_store: bool) -> None:
        self._changed[key] = self._changed.get(key, False) or stale_in_store

    def _next_creation(self, now: float) -> float:
        """`now`, nudged past the previous creation time: the send order needs a strict order
        even when the clock has not moved (as Chromium's CookieMonster does)."""
        self._last_creation = max(now, math.nextafter(self._last_creation, math.inf))
        return self._last_creation

    def _evict(self, domain: str, now: float) -> None:
        """Bring an overfull domain down to PURGE_TO: expired first, then least recently used."""
        bucket = self._domains[domain]
        victims = sorted(
            bucket.values(),
            key=lambda c: (c.expires is None or c.expires > now, c.last_access, c.creation),
        )
        for cookie in victims[: len(bucket) - PURGE_TO]:
            self._remove(cookie.key)

    def _shadows_secure(self, cookie: Cookie) -> bool:
        """Whether a Secure cookie of that name has a related domain and a path `cookie` matches."""
        for domain, path, _ in self._secure.get(cookie.name, ()):
            if (
                domain_match(domain, cookie.domain) or domain_match(cookie.domain, domain)
            ) and path_match(cookie.path, path):
                return True
        return False


def _from_response(
    parsed: SetCookie, host: str, request_path: str, is_ip: bool, secure_origin: bool, now: float
) -> Cookie | None:
    """The cookie a Set-Cookie makes for this request (RFC 6265 5.3), or None to ignore it."""
    host_only = True
    domain = host
    if parsed.domain is not None:
        # Unlike a request host, a Domain keeps a trailing dot: "example.org." never matches.
        wanted = parsed.domain if parsed.domain.isascii() else to_ascii(parsed.domain)
        if not wanted:
            return None
        if is_ip or is_public_suffix(wanted):
            # An IP or a public suffix takes a Domain only when it names the host itself, and
            # the cookie stays host-only (RFC 6265 5.3 step 5).
            if wanted != host:
                return None
        elif not domain_match(host, wanted):
            return None
        else:
            host_only = False
            domain = wanted
    if parsed.secure and not secure_origin:
        return None  # 6265bis "strict secure": only a secure origin may set a Secure cookie
    path = parsed.path or default_path(request_path)
    lowered = parsed.name.lower()
    if lowered.startswith("__secure-") and not parsed.secure:
        return None
    if lowered.startswith("__host-") and not (
        parsed.secure and host_only and parsed.domain is None and parsed.path == "/"
    ):
        return None
    if parsed.max_age is not None:
        # Max-Age beats Expires; <= 0 means "expire now" (the earliest time there is).
        expires: float | None = (
            -math.inf if parsed.max_age <= 0 else min(now + parsed.max_age, MAX_EXPIRY)
        )
    elif parsed.expires is not None:
        expires = min(parsed.expires, MAX_EXPIRY)
    else:
        expires = None
    return Cookie(
        parsed.name,
        parsed.value,
        domain,
        path,
        host_only=host_only,
        secure=parsed.secure,
        http_only=parsed.http_only,
        same_site=parsed.same_site,
        expires=expires,
    )


def _send_order(cookie: Cookie) -> tuple[int, float]:
    """RFC 6265 5.4 step 2: longer paths first, then earlier creation times."""
    return -len(cookie.path), cookie.creation


def _same_content(a: Cookie, b: Cookie) -> bool:
    """Whether replacing `a` by `b` would change nothing but the access time."""
    return (a.value, a.host_only, a.secure, a.http_only, a.same_site, a.expires) == (
        b.value,
        b.host_only,
        b.secure,
        b.http_only,
        b.same_site,
        b.expires,
    )
