"""CookieJar: RFC 6265 storage and sending rules, browser limits, and the change feed."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from scrapekit.session.cookiejar import MAX_COOKIES_PER_DOMAIN, PURGE_TO, Cookie, CookieJar

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
PAST = "Thu, 01 Jan 2015 00:00:00 GMT"
FUTURE = "Fri, 01 Jan 2038 00:00:00 GMT"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A fixed clock at NOW."""
    return Clock()


@pytest.fixture
def jar(clock: Clock) -> CookieJar:
    """An empty jar on the fixed clock."""
    return CookieJar(clock=clock)


def received(jar: CookieJar, url: str, *lines: str) -> int:
    """Feed Set-Cookie lines from `url` to the jar."""
    return jar.extract(url, lines)


def keys(cookies: Iterable[Cookie]) -> set[tuple[str, str, str]]:
    """The keys of some cookies."""
    return {c.key for c in cookies}


# -- domains -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "line", "target", "sent"),
    [
        pytest.param(
            "http://example.com/", "a=1", "http://example.com/x", True, id="host-only-same-host"
        ),
        pytest.param(
            "http://example.com/",
            "a=1",
            "http://www.example.com/",
            False,
            id="host-only-not-subdomain",
        ),
        pytest.param(
            "http://www.example.com/",
            "a=1",
            "http://example.com/",
            False,
            id="host-only-not-parent",
        ),
        pytest.param(
            "http://example.com/",
            "a=1; Domain=example.com",
            "http://www.example.com/",
            True,
            id="domain-to-subdomain",
        ),
        pytest.param(
            "http://example.com/",
            "a=1; Domain=.example.com",
            "http://a.b.example.com/",
            True,
            id="leading-dot-deep-subdomain",
        ),
        pytest.param(
            "http://www.example.com/",
            "a=1; Domain=example.com",
            "http://example.com/",
            True,
            id="subdomain-sets-parent",
        ),
        pytest.param(
            "http://www.example.com/",
            "a=1; Domain=example.com",
            "http://shop.example.com/",
            True,
            id="parent-cookie-to-sibling",
        ),
        pytest.param(
            "http://www.example.com/",
            "a=1; Domain=shop.example.com",
            "http://shop.example.com/",
            False,
            id="sibling-domain-rejected",
        ),
        pytest.param(
            "http://example.com/",
            "a=1; Domain=www.example.com",
            "http://www.example.com/",
            False,
            id="child-domain-rejected",
        ),
        pytest.param(
            "http://example.com/",
            "a=1; Domain=other.com",
            "http://other.com/",
            False,
            id="foreign-domain-rejected",
        ),
        pytest.param(
            "http://example.com/",
            "a=1; Domain=EXAMPLE.Com",
            "http://www.example.com/",
            True,
            id="domain-case-insensitive",
        ),
        pytest.param(
            "http://example.com/",
            "a=1; Domain=example.com.",
            "http://example.com/",
            False,
            id="domain-trailing-dot-rejected",
        ),
        pytest.param(
            "http://example.com/",
            "a=1; Domain=",
            "http://example.com/",
            True,
            id="empty-domain-ignored",
        ),
        pytest.param(
            "http://EXAMPLE.com./",
            "a=1",
            "http://example.COM:8080/",
            True,
            id="host-case-dot-port-ignored",
        ),
        pytest.param(
            "http://xn--bcher-kva.example/",
            "a=1; Domain=bücher.example",
            "http://www.xn--bcher-kva.example/",
            True,
            id="idn-domain-as-a-label",
        ),
    ],
)
def test_domain_matching(jar: CookieJar, origin: str, line: str, target: str, sent: bool) -> None:
    """A cookie goes to its host (host-only) or its domain and subdomains, never elsewhere."""
    received(jar, origin, line)
    assert jar.header_for(target) == ("a=1" if sent else None)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("http://other.com/", id="other-site"),
        pytest.param("http://badexample.com/", id="suffix-without-dot"),
        pytest.param("http://example.com.evil.net/", id="prefix-of-other-host"),
        pytest.param("http://com/", id="the-tld"),
        pytest.param("http://example.org/", id="other-tld"),
    ],
)
def test_never_sent_to_another_site(jar: CookieJar, target: str) -> None:
    """Cookies of one site are never sent to a different host, however similar its name."""
    received(jar, "http://www.example.com/", "a=1", "b=2; Domain=example.com")
    assert jar.header_for(target) is None


@pytest.mark.parametrize(
    ("origin", "line", "sent_to"),
    [
        pytest.param("http://www.example.com/", "a=1; Domain=com", [], id="tld"),
        pytest.param("http://www.example.co.uk/", "a=1; Domain=co.uk", [], id="multi-label-suffix"),
        pytest.param("http://me.github.io/", "a=1; Domain=github.io", [], id="private-suffix"),
        pytest.param(
            "http://github.io/",
            "a=1; Domain=github.io",
            ["http://github.io/"],
            id="suffix-is-host-host-only",
        ),
        pytest.param(
            "http://localhost/",
            "a=1; Domain=localhost",
            ["http://localhost/"],
            id="localhost-host-only",
        ),
    ],
)
def test_public_suffix_domain(jar: CookieJar, origin: str, line: str, sent_to: list[str]) -> None:
    """A Domain that is a public suffix is rejected, unless it is the host (then host-only)."""
    received(jar, origin, line)
    for url in ("http://github.io/", "http://other.github.io/", "http://localhost/", origin):
        assert jar.header_for(url) == ("a=1" if url in sent_to else None), url


@pytest.mark.parametrize(
    ("origin", "line", "target", "sent"),
    [
        pytest.param("http://192.168.0.1/", "a=1", "http://192.168.0.1:81/", True, id="host-only"),
        pytest.param(
            "http://192.168.0.1/",
            "a=1; Domain=192.168.0.1",
            "http://192.168.0.1/",
            True,
            id="domain-is-ip",
        ),
        pytest.param(
            "http://192.168.0.1/",
            "a=1; Domain=168.0.1",
            "http://192.168.0.1/",
            False,
            id="partial-ip-rejected",
        ),
        pytest.param(
            "http://192.168.0.1/",
            "a=1; Domain=example.com",
            "http://192.168.0.1/",
            False,
            id="name-rejected",
        ),
        pytest.param(
            "http://192.168.0.1/", "a=1", "http://2192.168.0.1/", False, id="not-other-ip"
        ),
        pytest.param("http://[2001:db8::1]/", "a=1", "http://[2001:DB8::1]:8080/", True, id="ipv6"),
        pytest.param(
            "http://[2001:db8::1]/",
            "a=1; Domain=db8::1",
            "http://[2001:db8::1]/",
            False,
            id="ipv6-partial",
        ),
    ],
)
def test_ip_hosts(jar: CookieJar, origin: str, line: str, target: str, sent: bool) -> None:
    """An IP host takes only host-only cookies (or a Domain equal to the IP itself)."""
    received(jar, origin, line)
    assert jar.header_for(target) == ("a=1" if sent else None)
    assert all(c.host_only for c in jar)


def test_domain_equal_to_ip_stays_host_only(jar: CookieJar) -> None:
    """Domain=<the IP> is stored host-only, so it can never match another address."""
    received(jar, "http://10.0.0.1/", "a=1; Domain=10.0.0.1")
    assert [(c.domain, c.host_only) for c in jar] == [("10.0.0.1", True)]


# -- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie_path", "request_path", "sent"),
    [
        pytest.param("/a", "/a", True, id="equal"),
        pytest.param("/a", "/a/b", True, id="below"),
        pytest.param("/a/", "/a/b", True, id="slash-terminated"),
        pytest.param("/a", "/ab", False, id="not-a-segment-prefix"),
        pytest.param("/a/", "/a", False, id="shorter-than-cookie"),
        pytest.param("/a", "/", False, id="root"),
        pytest.param("/A", "/a", False, id="case-sensitive"),
        pytest.param("/", "/anything/at/all", True, id="root-cookie"),
    ],
)
def test_path_matching(jar: CookieJar, cookie_path: str, request_path: str, sent: bool) -> None:
    """A cookie is sent to its path and below it, by whole segments (RFC 6265 5.1.4)."""
    received(jar, "http://example.com/", f"a=1; Path={cookie_path}")
    assert jar.header_for(f"http://example.com{request_path}?q=1") == ("a=1" if sent else None)


@pytest.mark.parametrize(
    ("origin_path", "attribute", "stored_path"),
    [
        pytest.param("/dir/page", "", "/dir", id="no-path"),
        pytest.param("/dir/sub/", "", "/dir/sub", id="trailing-slash"),
        pytest.param("/page", "", "/", id="top-level"),
        pytest.param("", "", "/", id="empty-path"),
        pytest.param("/dir/page", "; Path=relative", "/dir", id="relative-path"),
        pytest.param("/dir/page", "; Path=", "/dir", id="empty-attribute"),
        pytest.param("/dir/page", "; Path=/x; Path=", "/dir", id="last-path-wins"),
        pytest.param("/dir/page", "; Path=/other", "/other", id="explicit-path"),
    ],
)
def test_default_path(jar: CookieJar, origin_path: str, attribute: str, stored_path: str) -> None:
    """Without a Path starting with "/", the cookie takes the request's directory."""
    received(jar, f"http://example.com{origin_path}?q", f"a=1{attribute}")
    assert [c.path for c in jar] == [stored_path]


# -- Secure, HttpOnly, SameSite, prefixes ------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "target", "sent"),
    [
        pytest.param("https://example.com/", "https://example.com/", True, id="https-to-https"),
        pytest.param("https://example.com/", "http://example.com/", False, id="https-to-http"),
        pytest.param(
            "http://example.com/", "https://example.com/", False, id="set-over-http-rejected"
        ),
        pytest.param(
            "http://localhost:8000/", "http://localhost:8000/", True, id="localhost-is-secure"
        ),
        pytest.param("http://127.0.0.1:8000/", "http://127.0.0.1/", True, id="loopback-is-secure"),
        pytest.param("wss://example.com/", "https://example.com/", True, id="wss-is-secure"),
    ],
)
def test_secure_cookies(jar: CookieJar, origin: str, target: str, sent: bool) -> None:
    """Secure cookies are set and sent only over secure origins (6265bis strict secure)."""
    received(jar, origin, "a=1; Secure")
    assert jar.header_for(target) == ("a=1" if sent else None)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("a=evil", id="overwrite"),
        pytest.param("a=evil; Max-Age=0", id="delete"),
        pytest.param("a=evil; Path=/deeper", id="shadow-deeper-path"),
        pytest.param("a=evil; Domain=example.com", id="shadow-parent-domain"),
    ],
)
def test_http_cannot_touch_secure_cookie(jar: CookieJar, line: str) -> None:
    """An http:// response cannot overwrite, delete or shadow a Secure cookie of that name."""
    received(jar, "https://www.example.com/", "a=good; Secure")
    assert received(jar, "http://www.example.com/", line) == 0
    assert jar.header_for("https://www.example.com/deeper") == "a=good"


def test_http_may_set_unrelated_name_beside_secure(jar: CookieJar) -> None:
    """Strict secure blocks only the Secure cookie's own name."""
    received(jar, "https://example.com/", "a=good; Secure")
    assert received(jar, "http://example.com/", "b=2") == 1


def test_http_only_is_stored_and_sent(jar: CookieJar) -> None:
    """HttpOnly is kept as a flag, and the cookie is still sent: scrapekit is not a browser."""
    received(jar, "http://example.com/", "a=1; HttpOnly")
    assert [c.http_only for c in jar] == [True]
    assert jar.header_for("http://example.com/") == "a=1"


@pytest.mark.parametrize(
    ("attribute", "stored"),
    [
        pytest.param("SameSite=lax", "Lax", id="lax"),
        pytest.param("samesite=STRICT", "Strict", id="strict"),
        pytest.param("SameSite=None", "None", id="none"),
        pytest.param("SameSite=bogus", None, id="unknown"),
        pytest.param("", None, id="absent"),
    ],
)
def test_same_site_is_stored_only(jar: CookieJar, attribute: str, stored: str | None) -> None:
    """SameSite is normalised and stored, and never stops the cookie from being sent."""
    received(jar, "http://example.com/", f"a=1; {attribute}")
    assert [c.same_site for c in jar] == [stored]
    assert jar.header_for("http://other.example.com/") is None
    assert jar.header_for("http://example.com/") == "a=1"


@pytest.mark.parametrize(
    ("line", "stored"),
    [
        pytest.param("__Secure-a=1; Secure", True, id="secure-prefix-ok"),
        pytest.param("__Secure-a=1", False, id="secure-prefix-needs-secure"),
        pytest.param("__Host-a=1; Secure; Path=/", True, id="host-prefix-ok"),
        pytest.param("__host-a=1; Secure; Path=/", True, id="host-prefix-any-case"),
        pytest.param("__Host-a=1; Secure", False, id="host-prefix-needs-path"),
        pytest.param(
            "__Host-a=1; Secure; Path=/; Domain=example.com", False, id="host-prefix-no-domain"
        ),
    ],
)
def test_cookie_name_prefixes(jar: CookieJar, line: str, stored: bool) -> None:
    """The __Secure- and __Host- prefixes are enforced as browsers do (RFC 6265bis 4.1.3)."""
    assert received(jar, "https://example.com/dir/page", line) == int(stored)


# -- expiry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "expires"),
    [
        pytest.param(f"Max-Age=60; Expires={PAST}", NOW + 60, id="max-age-first"),
        pytest.param(f"Expires={PAST}; Max-Age=60", NOW + 60, id="expires-first"),
        pytest.param(f"Expires={FUTURE}", 2145916800.0, id="expires-only"),
        pytest.param("Max-Age=60; Max-Age=120", NOW + 120, id="last-max-age-wins"),
        pytest.param(f"Max-Age=60,5; Expires={FUTURE}", 2145916800.0, id="bad-max-age-ignored"),
        pytest.param("Max-Age=+60", None, id="plus-sign-ignored"),
        pytest.param("Expires=not a date", None, id="bad-expires-ignored"),
        pytest.param("Max-Age=" + "9" * 400, 253402300799.0, id="huge-max-age-clamped"),
    ],
)
def test_expiry_attributes(jar: CookieJar, attributes: str, expires: float | None) -> None:
    """Max-Age beats Expires whatever their order; invalid values are ignored."""
    received(jar, "http://example.com/", f"a=1; {attributes}")
    assert [c.expires for c in jar] == [expires]


@pytest.mark.parametrize(
    "attribute",
    [
        pytest.param("Max-Age=0", id="max-age-zero"),
        pytest.param("Max-Age=-1", id="max-age-negative"),
        pytest.param(f"Expires={PAST}", id="expires-past"),
        pytest.param(f"Max-Age=0; Expires={FUTURE}", id="max-age-beats-future-expires"),
    ],
)
def test_expired_set_cookie_deletes(jar: CookieJar, attribute: str) -> None:
    """A Set-Cookie that is already expired deletes the stored cookie with its key."""
    received(jar, "http://example.com/", "a=1", "b=2")
    assert received(jar, "http://example.com/", f"a=gone; {attribute}") == 1
    assert jar.header_for("http://example.com/") == "b=2"
    assert received(jar, "http://example.com/", f"c=never; {attribute}") == 0
    assert len(jar) == 1


def test_cookies_expire_with_the_clock(jar: CookieJar, clock: Clock) -> None:
    """A cookie past its expiry is no longer sent, and purge_expired removes the rest."""
    received(jar, "http://example.com/", "short=1; Max-Age=10", "long=2; Max-Age=100", "s=3")
    received(jar, "http://other.com/", "gone=1; Max-Age=10")
    clock.now += 10
    assert jar.header_for("http://example.com/") == "long=2; s=3"
    assert len(jar) == 3  # the expired cookie met on the way was dropped
    assert jar.purge_expired() == 1
    assert {c.name for c in jar} == {"long", "s"}


def test_purge_skips_replaced_cookies(jar: CookieJar, clock: Clock) -> None:
    """purge_expired judges the cookie stored now, not an expiry it had before a replacement."""
    received(jar, "http://example.com/", "later=1; Max-Age=10", "session=1; Max-Age=10")
    for _ in range(3000):  # enough stale expiry entries to make the jar rebuild its index
        clock.now += 0.001
        received(jar, "http://example.com/", "later=1; Max-Age=100")
    received(jar, "http://example.com/", "session=2")
    clock.now += 50
    assert jar.purge_expired() == 0
    clock.now += 50
    assert jar.purge_expired() == 1
    assert [c.name for c in jar] == ["session"]


def test_purge_in_a_large_jar_removes_exactly_the_expired(clock: Clock) -> None:
    """In a 100k-cookie jar a purge removes just the expired ones (its cost: bench/cookiejar.py)."""
    jar = CookieJar(clock=clock)
    for i in range(100_000):
        jar.add(Cookie(f"c{i}", "v", f"d{i % 5000}.example", "/", expires=NOW + 60 + i))
    assert jar.purge_expired() == 0
    clock.now += 70
    assert jar.purge_expired() == 11
    assert len(jar) == 100_000 - 11


# -- order -----------------------------------------------------------------------------------


def test_longer_path_first_then_older(jar: CookieJar) -> None:
    """Cookies are sent longest path first, then oldest first (RFC 6265 5.4)."""
    received(jar, "http://www.example.com/", "b=1", "a=2; Path=/x/y", "c=3; Domain=example.com")
    received(jar, "http://www.example.com/", "d=4; Path=/x")
    assert jar.header_for("http://www.example.com/x/y/z") == "a=2; d=4; b=1; c=3"


def test_replacing_keeps_creation_order(jar: CookieJar) -> None:
    """A replaced cookie keeps its creation time, hence its place in the header."""
    received(jar, "http://example.com/", "a=1", "b=2", "a=3")
    assert jar.header_for("http://example.com/") == "a=3; b=2"


def test_header_updates_last_access(jar: CookieJar, clock: Clock) -> None:
    """Sending a cookie records the time it was last accessed, and only for sent cookies."""
    received(jar, "http://example.com/", "a=1", "b=2; Path=/b")
    clock.now += 5
    jar.header_for("http://example.com/")
    assert {c.name: c.last_access for c in jar} == {"a": NOW + 5, "b": NOW}


def test_no_cookie_gives_no_header(jar: CookieJar) -> None:
    """header_for returns None, not an empty string, when nothing applies."""
    assert jar.header_for("http://example.com/") is None
    assert jar.header_for("ftp://example.com/") is None


# -- the change feed -------------------------------------------------------------------------


def test_drain_reports_upserts_and_deletes_once(jar: CookieJar) -> None:
    """drain_changes lists what changed since the last drain, then starts afresh."""
    received(jar, "http://example.com/", "a=1; Max-Age=60", "b=2; Max-Age=60")
    dirty_before = jar.dirty
    upserted, deleted = jar.drain_changes()
    assert (keys(upserted), deleted) == ({("example.com", "/", "a"), ("example.com", "/", "b")}, [])
    assert (dirty_before, jar.dirty) == (True, False)
    assert jar.drain_changes() == ([], [])


def test_changed_then_deleted_is_only_deleted(jar: CookieJar) -> None:
    """A cookie set and then deleted before the drain is reported only as deleted."""
    received(jar, "http://example.com/", "a=1; Max-Age=60")
    jar.drain_changes()
    received(jar, "http://example.com/", "a=2; Max-Age=60")
    received(jar, "http://example.com/", "a=; Max-Age=0")
    assert jar.drain_changes() == ([], [("example.com", "/", "a")])


def test_deleted_then_set_is_only_upserted(jar: CookieJar) -> None:
    """A cookie deleted and set again before the drain is reported only as upserted."""
    received(jar, "http://example.com/", "a=1; Max-Age=60")
    jar.drain_changes()
    assert jar.delete("example.com", "/", "a")
    received(jar, "http://example.com/", "a=2; Max-Age=60")
    upserted, deleted = jar.drain_changes()
    assert ([c.value for c in upserted], deleted) == (["2"], [])


def test_identical_refresh_records_nothing(jar: CookieJar) -> None:
    """A Set-Cookie that changes nothing but the access time is not a change to persist."""
    received(jar, "http://example.com/", "a=1; Expires=" + FUTURE)
    jar.drain_changes()
    assert received(jar, "http://example.com/", "a=1; Expires=" + FUTURE) == 0
    assert not jar.dirty


def test_add_records_no_change(jar: CookieJar) -> None:
    """Loading cookies from the store with add() does not feed them back to the store."""
    jar.add(Cookie("a", "1", "example.com", "/", expires=NOW + 60, creation=NOW - 5))
    assert not jar.dirty
    assert jar.header_for("http://example.com/") == "a=1"


def test_drain_in_a_large_jar_reports_only_the_change(clock: Clock) -> None:
    """After one change in a 100k-cookie jar, a drain reports exactly that one cookie."""
    jar = CookieJar(clock=clock)
    for i in range(100_000):
        jar.add(Cookie(f"c{i}", "v", f"d{i % 5000}.example", "/", expires=NOW + 60))
    for i in range(5):
        jar.set(f"new{i}", "v", domain="d1.example", expires=NOW + 60)
        upserted, deleted = jar.drain_changes()
        assert ([c.name for c in upserted], deleted) == ([f"new{i}"], [])


def test_persist_session_cookies_false_leaves_them_out(clock: Clock) -> None:
    """Without persisted session cookies the store gets only persistent ones, and a session
    cookie replacing a persistent one is reported as a deletion."""
    jar = CookieJar(clock=clock, persist_session_cookies=False)
    received(jar, "http://example.com/", "s=1", "p=2; Max-Age=60")
    upserted, deleted = jar.drain_changes()
    assert ([c.name for c in upserted], deleted) == (["p"], [])
    received(jar, "http://example.com/", "p=3", "s=4")
    assert jar.drain_changes() == ([], [("example.com", "/", "p")])
    assert jar.header_for("http://example.com/") == "s=4; p=3"


def test_session_cookie_after_deleted_persistent_one_is_a_delete(clock: Clock) -> None:
    """A persistent cookie deleted and then set again as a session cookie leaves the store."""
    jar = CookieJar(clock=clock, persist_session_cookies=False)
    received(jar, "http://example.com/", "p=1; Max-Age=60")
    jar.drain_changes()
    received(jar, "http://example.com/", "p=; Max-Age=0", "p=2")
    assert jar.drain_changes() == ([], [("example.com", "/", "p")])


def test_persist_session_cookies_true_includes_them(jar: CookieJar) -> None:
    """By default session cookies are persisted too."""
    received(jar, "http://example.com/", "s=1")
    assert [c.name for c in jar.drain_changes()[0]] == ["s"]


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        pytest.param("a", "x" * 4095, True, id="4096-bytes"),
        pytest.param("a", "x" * 4096, False, id="4097-bytes"),
        pytest.param("ab", "é" * 2047, True, id="utf8-4096-bytes"),
        pytest.param("ab", "é" * 2047 + "x", False, id="utf8-4097-bytes"),
    ],
)
def test_name_value_size_limit(jar: CookieJar, name: str, value: str, stored: bool) -> None:
    """A cookie whose name plus value exceeds 4096 UTF-8 bytes is ignored."""
    assert received(jar, "http://example.com/", f"{name}={value}") == int(stored)


def test_too_many_cookies_evicts_least_recently_used(jar: CookieJar, clock: Clock) -> None:
    """Past MAX_COOKIES_PER_DOMAIN, a domain drops to PURGE_TO, least recently used first."""
    for i in range(MAX_COOKIES_PER_DOMAIN):
        clock.now += 1
        received(jar, "http://example.com/", f"c{i}=v; Max-Age=9999; Path=/c{i}")
    received(jar, "http://other.com/", "keep=1")
    clock.now += 1
    assert jar.header_for("http://example.com/c0") == "c0=v"  # the oldest, but used now
    jar.drain_changes()
    clock.now += 1
    received(jar, "http://example.com/", "last=v")
    names = {c.name for c in jar if c.domain == "example.com"}
    evicted = MAX_COOKIES_PER_DOMAIN + 1 - PURGE_TO
    assert names == {"c0", "last"} | {f"c{i}" for i in range(evicted + 1, MAX_COOKIES_PER_DOMAIN)}
    assert jar.get("keep") == "1"
    upserted, deleted = jar.drain_changes()
    assert len(deleted) == evicted
    assert [c.name for c in upserted] == ["last"]


# -- robustness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("", id="empty"),
        pytest.param(";;;", id="semicolons"),
        pytest.param("=", id="equals"),
        pytest.param("a=b\x00c", id="nul"),
        pytest.param("a=b\rc", id="cr"),
        pytest.param("a=b; Path=/\x7f", id="del-in-attribute"),
        pytest.param("a=\udcff", id="undecodable-byte"),
        pytest.param("a=b; Expires=" + "9" * 100_000, id="huge-expires"),
        pytest.param("a=b; Max-Age=-" + "9" * 100_000, id="huge-negative-max-age"),
        pytest.param("a=b; Domain=..", id="dots-domain"),
        pytest.param("a=b; Domain=xn--", id="bad-punycode-domain"),
        pytest.param("a=b; Domain=\ufffd.example.com", id="unencodable-domain"),
        pytest.param("a=b; Expires=Feb 30 2020 00:00:00", id="impossible-date"),
        pytest.param("a=b; Expires=Dec 31 1600 23:59:59", id="date-before-1601"),
        pytest.param("a=b; " + "x" * 10_000, id="huge-attribute"),
    ],
)
def test_malformed_lines_never_raise(jar: CookieJar, line: str) -> None:
    """A malformed Set-Cookie line is skipped or parsed leniently, never raised."""
    received(jar, "http://example.com/", line, "ok=1")
    header = jar.header_for("http://example.com/")
    assert header is not None
    assert header.endswith("ok=1")
    assert "\x00" not in header
    assert "\r" not in header


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("not a url", id="no-scheme"),
        pytest.param("http://[::1/", id="broken-ipv6"),
        pytest.param("http:///path", id="no-host"),
        pytest.param("mailto:someone@example.com", id="mailto"),
        pytest.param("file:///etc/passwd", id="file"),
    ],
)
def test_unusable_urls_never_raise(jar: CookieJar, url: str) -> None:
    """A URL without an http(s) host neither stores nor sends cookies, and does not raise."""
    assert jar.extract(url, ["a=1"]) == 0
    assert jar.header_for(url) is None


# -- programmatic access ---------------------------------------------------------------------


def test_set_defaults_to_a_domain_cookie(jar: CookieJar) -> None:
    """set() makes a domain cookie sent to subdomains; host_only=True restricts it."""
    made = jar.set("a", "1", domain=".Example.com")
    jar.set("b", "2", domain="example.com", host_only=True)
    assert (made.domain, made.host_only, made.path) == ("example.com", False, "/")
    assert jar.header_for("http://www.example.com/") == "a=1"
    assert jar.header_for("http://example.com/") == "a=1; b=2"
    assert jar.dirty


def test_set_keeps_creation_and_deletes_when_expired(jar: CookieJar, clock: Clock) -> None:
    """set() replaces by key like a Set-Cookie, and an expiry in the past deletes."""
    first = jar.set("a", "1", domain="example.com", expires=NOW + 60)
    clock.now += 1
    second = jar.set("a", "2", domain="example.com")
    assert (second.creation, second.value, len(jar)) == (first.creation, "2", 1)
    jar.set("a", "x", domain="example.com", expires=NOW - 1)
    assert len(jar) == 0


@pytest.mark.parametrize(
    ("name", "value", "domain", "path"),
    [
        pytest.param("", "1", "example.com", "/", id="empty-name"),
        pytest.param("a=b", "1", "example.com", "/", id="equals-in-name"),
        pytest.param("a", "1;b", "example.com", "/", id="semicolon-in-value"),
        pytest.param("a", "1\n", "example.com", "/", id="newline-in-value"),
        pytest.param(" a", "1", "example.com", "/", id="padded-name"),
        pytest.param("a", "1", ".", "/", id="no-domain"),
        pytest.param("a", "1", "example.com", "x", id="relative-path"),
    ],
)
def test_set_rejects_unsendable_cookies(
    jar: CookieJar, name: str, value: str, domain: str, path: str
) -> None:
    """set() raises ValueError for a cookie that could not round-trip through a header."""
    with pytest.raises(ValueError, match="cookie"):
        jar.set(name, value, domain=domain, path=path)
    assert len(jar) == 0


def test_delete_clear_get_iter_len(jar: CookieJar) -> None:
    """The mapping-like helpers see the same cookies header_for does."""
    received(jar, "http://a.example.com/", "x=1", "y=2; Path=/p")
    received(jar, "http://b.example.com/", "x=3")
    received(jar, "http://example.org/", "z=4")
    assert len(jar) == len(list(jar)) == 4
    assert jar.get("x", domain="b.example.com") == "3"
    assert jar.get("x") in {"1", "3"}
    assert jar.get("nope") is None
    assert jar.delete(".A.example.com", "/p", "y")
    assert not jar.delete("a.example.com", "/p", "y")
    assert jar.clear("example.com") == 2
    assert [c.name for c in jar] == ["z"]
    assert jar.clear() == 1
    assert len(jar) == 0
    _, deleted = jar.drain_changes()
    assert len(deleted) == 4


def test_header_for_ignores_other_sites_in_a_large_jar(clock: Clock) -> None:
    """50k other sites' cookies change nothing for this host (the cost: bench/cookiejar.py)."""
    big = CookieJar(clock=clock)
    received(big, "http://www.example.com/", "a=1", "b=2; Domain=example.com")
    for i in range(50_000):
        big.add(Cookie("c", "v", f"site{i}.example", "/"))
    assert big.header_for("http://www.example.com/page") == "a=1; b=2"
