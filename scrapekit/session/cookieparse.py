"""RFC 6265 parsing and matching for the session's cookie jar: pure functions on strings.

Set-Cookie lines (5.2), cookie dates (5.1.1), and host, domain and path matching (5.1.2-5.1.4).
No request state and no clock: the jar (`cookiejar.py`) applies the request-dependent rules
(Domain against the host, the default path, Max-Age against its clock, Secure origins).
Reads no settings.
"""

from __future__ import annotations

import calendar
import functools
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

MAX_NAME_VALUE_BYTES = 4096
"""A cookie whose name plus value is longer (in UTF-8) is ignored, as browsers do."""

MAX_ATTRIBUTE_VALUE_BYTES = 1024
"""An attribute value longer than this (in UTF-8) is ignored (RFC 6265bis 5.6)."""

# Control characters other than HTAB (RFC 6265bis 5.6 ignores the whole cookie), plus lone
# surrogates: what undecodable bytes become under "surrogateescape".
_INVALID = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
_WSP = " \t"
_SCHEMES = frozenset({"http", "https", "ws", "wss"})

# RFC 6265 5.1.1: the delimiters that split a cookie-date into tokens.
_DATE_DELIMITERS = re.compile("[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
# [0-9], not \d: \d also matches non-ASCII digits.
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[^0-9]|$)")
_DAY = re.compile(r"([0-9]{1,2})(?:[^0-9]|$)")
_YEAR = re.compile(r"([0-9]{2,4})(?:[^0-9]|$)")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


@dataclass(slots=True, frozen=True)
class SetCookie:
    """One parsed Set-Cookie line, before the request's context is applied.

    `domain` is lower-cased without its leading dot, None when absent or empty (RFC 6265
    ignores an empty Domain). `path` is None when absent or not starting with "/" (the jar then
    uses the default path). `expires` is the Unix time of the last valid Expires, `max_age` the
    last valid Max-Age in seconds; None when absent or invalid.
    """

    name: str
    value: str
    domain: str | None = None
    path: str | None = None
    expires: float | None = None
    max_age: int | None = None
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None


def parse_set_cookie(line: str) -> SetCookie | None:
    """Parse a Set-Cookie header value (RFC 6265 5.2); None if the cookie must be ignored.

    Ignored: a control character or undecodable byte anywhere in the line, no "=" in the
    name-value pair, an empty name (as RFC 6265; 6265bis would keep `Set-Cookie: foo` as a
    nameless cookie), or a name plus value over MAX_NAME_VALUE_BYTES. Never raises.
    """
    if _INVALID.search(line):
        return None
    pair, _, attributes = line.partition(";")
    name, eq, value = pair.partition("=")
    if not eq:
        return None
    name = name.strip(_WSP)
    value = value.strip(_WSP)
    if not name:
        return None
    # Characters never outnumber UTF-8 bytes, and never by more than 4 to 1: encode only
    # when the length alone cannot decide.
    size = len(name) + len(value)
    if size > MAX_NAME_VALUE_BYTES // 4 and (
        size > MAX_NAME_VALUE_BYTES
        or len(name.encode()) + len(value.encode()) > MAX_NAME_VALUE_BYTES
    ):
        return None
    if not attributes:
        return SetCookie(name, value)

    domain: str | None = None
    path: str | None = None
    expires: float | None = None
    max_age: int | None = None
    secure = http_only = False
    same_site: str | None = None
    # Later attributes overwrite earlier ones: the last valid occurrence wins (5.3 step 3).
    for av in attributes.split(";"):
        key, _, val = av.partition("=")
        key = key.strip(_WSP).lower()
        val = val.strip(_WSP)
        if (
            len(val) > MAX_ATTRIBUTE_VALUE_BYTES // 4
            and len(val.encode()) > MAX_ATTRIBUTE_VALUE_BYTES
        ):
            continue
        if key == "expires":
            if (when := parse_cookie_date(val)) is not None:
                expires = when
        elif key == "max-age":
            if (seconds := _parse_max_age(val)) is not None:
                max_age = seconds
        elif key == "domain":
            if val:
                domain = (val[1:] if val[0] == "." else val).lower()
        elif key == "path":
            path = val if val[:1] == "/" else None
        elif key == "secure":
            secure = True
        elif key == "httponly":
            http_only = True
        elif key == "samesite":
            same_site = {"strict": "Strict", "lax": "Lax", "none": "None"}.get(val.lower())
    return SetCookie(name, value, domain, path, expires, max_age, secure, http_only, same_site)


def _parse_max_age(value: str) -> int | None:
    """Max-Age per RFC 6265 5.2.2: an optional "-" and digits only, else None (ignored)."""
    digits = value[1:] if value[:1] == "-" else value
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    # Cap before int(): a thousand-digit Max-Age must not cost a bignum conversion.
    if len(digits) > 12:
        return -(10**12) if value[0] == "-" else 10**12
    return int(value)


def parse_cookie_date(text: str) -> float | None:
    """Parse a cookie-date with the RFC 6265 5.1.1 algorithm; the Unix time, or None if invalid.

    Tokens are taken in order: the first time, day of month, month and year found win, the rest
    is ignored (so "Wed, 09 Jun 2021 10:18:14 GMT-0400 (EDT)" is 10:18:14 UTC). Two-digit years
    70-99 are 19xx and 00-69 are 20xx; a year before 1601 or a date that does not exist is invalid.
    """
    time: tuple[int, int, int] | None = None
    day = month = year = None
    for token in _DATE_DELIMITERS.split(text):
        if not token:
            continue
        if time is None and (m := _TIME.match(token)):
            time = (int(m[1]), int(m[2]), int(m[3]))
        elif day is None and (m := _DAY.match(token)):
            day = int(m[1])
        elif month is None and (number := _MONTHS.get(token[:3].lower())):
            month = number
        elif year is None and (m := _YEAR.match(token)):
            year = int(m[1])
    if time is None or day is None or month is None or year is None:
        return None
    if 70 <= year <= 99:
        year += 1900
    elif year <= 69:
        year += 2000
    hour, minute, second = time
    if year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


# -- RFC 6265 5.1: hosts, domains and paths ----------------------------------------------------


def split_url(url: str) -> tuple[str, str, str, bool] | None:
    """(scheme, canonical host, path, host is an IP) of an http(s) or ws(s) URL, else None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or not host:
        return None
    host = canonical_host(host)
    if not host:
        return None
    return scheme, host, parts.path or "/", is_ip(host)


def canonical_host(host: str) -> str:
    """Lower case, no trailing dot, A-labels for an IDN; "" if it cannot be encoded."""
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    return host if host.isascii() else to_ascii(host)


def to_ascii(name: str) -> str:
    """The IDNA (A-label) form of a domain name, or "" if it has none."""
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def is_ip(host: str) -> bool:
    """Whether a canonical host is an IPv4 or IPv6 address (which never has subdomains)."""
    if ":" in host:
        return True  # urlsplit strips the brackets of an IPv6 literal; names have no ":"
    if not host[-1].isdigit():
        return False
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str, host_is_ip: bool) -> bool:
    """Browsers treat http://localhost and loopback addresses as secure origins for cookies."""
    if not host_is_ip:
        return host == "localhost" or host.endswith(".localhost")
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return False


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    # Built on first use (~50 ms), not at import; the list does not change during a run.
    return PublicSuffixList()


def is_public_suffix(domain: str) -> bool:
    """Whether `domain` is on the Public Suffix List ("com", "co.uk", "github.io", ...)."""
    return _public_suffix_list().is_public(domain)


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3: `host` is `domain` or a subdomain of it (never for an IP address)."""
    return host == domain or (
        host.endswith(domain) and host[-len(domain) - 1 : -len(domain)] == "." and not is_ip(host)
    )


def path_match(path: str, cookie_path: str) -> bool:
    """RFC 6265 5.1.4: `path` is `cookie_path` or below it ("/a" matches "/a/b", not "/ab")."""
    return path.startswith(cookie_path) and (
        len(path) == len(cookie_path) or cookie_path[-1] == "/" or path[len(cookie_path)] == "/"
    )


def default_path(path: str) -> str:
    """RFC 6265 5.1.4: the request path up to, not including, its last "/"; at least "/"."""
    if path[:1] != "/":
        return "/"
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else "/"
