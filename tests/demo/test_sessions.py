"""Demo login sessions: the login form with CSRF, expiry, logout, and signed tokens that outlive
a restart of the site (same secret: still logged in; another secret or a forgery: logged out)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx2
import pytest

from scrapekit.demo import DemoSite
from scrapekit.demo.sessions import (
    DEMO_SECRET,
    SessionManager,
    SessionToken,
    Visitor,
    sign_token,
    verify_token,
)
from tests.demo.helpers import css_text, first, parse

HOME = "/catalogue/page-1.html"


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(products=40) as demo:
        yield demo


def csrf_token(http: httpx2.Client, path: str = "/login") -> str:
    """GET the login form (which sets the csrftoken cookie) and return its hidden token."""
    page = parse(http.get(path))
    token = first(page, 'form[action="/login"] input[name="csrf_token"]').attributes["value"]
    assert token
    return token


def log_in(http: httpx2.Client, password: str = "demo", **extra: str) -> httpx2.Response:
    data = {"csrf_token": csrf_token(http), "username": "demo", "password": password, **extra}
    return http.post("/login", data=data)


def session_of(site: DemoSite) -> str:
    """Log in to `site` with a fresh client and return the sessionid it set."""
    with httpx2.Client(base_url=site.url, timeout=5) as http:
        assert log_in(http).status_code == 302
        token = http.cookies["sessionid"]
    assert token
    return token


def product_page(site: DemoSite, token: str) -> httpx2.Response:
    """GET a product page of `site` with `token` as the sessionid cookie, and nothing else."""
    with httpx2.Client(base_url=site.url, timeout=5, cookies={"sessionid": token}) as http:
        return http.get(site.products[0].path)


def assert_logged_in(site: DemoSite, token: str) -> None:
    page = parse(product_page(site, token))
    assert first(page, "p.stock").attributes["data-stock"] == str(site.products[0].stock)


def assert_sent_to_login(site: DemoSite, token: str) -> None:
    response = product_page(site, token)
    assert response.status_code == 302
    assert response.headers["location"] == f"/login?next={site.products[0].path}"


def stopped_clock(now: float) -> Callable[[], float]:
    """A clock that always reads `now`."""
    return lambda: now


# -- the login form and in-process expiry ----------------------------------------------------


def test_login_shows_stock_and_logout_marker(site: DemoSite, client: httpx2.Client) -> None:
    """GET form, POST with its CSRF token: 302 home, an HttpOnly sessionid, then stock is shown."""
    logins = site.stats.logins
    response = log_in(client)
    assert response.status_code == 302
    assert response.headers["location"] == HOME
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("sessionid=")
    assert "HttpOnly" in cookie
    assert "Path=/" in cookie
    assert "expires" not in cookie.lower(), "a session cookie has no expiry"
    assert "max-age" not in cookie.lower()
    product = site.products[3]
    page = parse(client.get(product.path))
    stock = first(page, "p.stock")
    assert stock.attributes["data-stock"] == str(product.stock)
    assert stock.text() == f"In stock ({product.stock} available)"
    assert page.css_first("a.logout") is not None
    assert page.css_first("a.login") is None
    assert site.stats.logins == logins + 1


def test_login_returns_to_next(site: DemoSite, client: httpx2.Client) -> None:
    """A login started from `/login?next=PATH` redirects back to PATH."""
    target = site.products[1].path
    token = csrf_token(client, f"/login?next={target}")
    data = {"csrf_token": token, "username": "demo", "password": "demo", "next": target}
    assert client.post("/login", data=data).headers["location"] == target


def test_wrong_password_shows_error(site: DemoSite, client: httpx2.Client) -> None:
    """Wrong credentials give the form again (200) with an error, and no session."""
    failed = site.stats.failed_logins
    response = log_in(client, password="nope")
    assert response.status_code == 200
    page = parse(response)
    assert css_text(page, "p.error") == "Invalid username or password"
    assert page.css_first('form input[name="csrf_token"]') is not None
    assert "sessionid" not in client.cookies
    assert site.stats.failed_logins == failed + 1


@pytest.mark.parametrize(
    ("token", "with_cookie"),
    [
        pytest.param(None, True, id="missing-token"),
        pytest.param("forged", True, id="wrong-token"),
        pytest.param("form", False, id="no-cookie"),
    ],
)
def test_bad_csrf_is_forbidden(client: httpx2.Client, token: str | None, with_cookie: bool) -> None:
    """A login POST without a token matching the csrftoken cookie gets 403."""
    form_token = csrf_token(client)
    if not with_cookie:
        client.cookies.clear()
    data = {"username": "demo", "password": "demo"}
    if token is not None:
        data["csrf_token"] = form_token if token == "form" else token
    assert client.post("/login", data=data).status_code == 403


def test_session_expires_after_max_requests() -> None:
    """Past session_max_requests, product pages redirect to /login?next=... and listings don't."""
    with (
        DemoSite(products=40, session_max_requests=3) as demo,
        httpx2.Client(base_url=demo.url) as http,
    ):
        log_in(http)
        product = demo.products[0].path
        for _ in range(3):
            assert parse(http.get(product)).css_first("p.stock") is not None
        expired = http.get(product)
        assert expired.status_code == 302
        assert expired.headers["location"] == f"/login?next={product}"
        listing = http.get(HOME)
        assert listing.status_code == 200
        assert parse(listing).css_first("a.login") is not None
        assert demo.stats.session_expiries == 1
        log_in(http)
        assert parse(http.get(product)).css_first("p.stock") is not None


def test_session_expires_after_max_age() -> None:
    """A session older than session_max_age is sent to the login page."""
    with (
        DemoSite(products=20, session_max_age=0.2) as demo,
        httpx2.Client(base_url=demo.url) as http,
    ):
        log_in(http)
        product = demo.products[0].path
        assert http.get(product).status_code == 200
        time.sleep(0.25)
        assert http.get(product).headers["location"] == f"/login?next={product}"


def test_unknown_or_ended_sessions_count_as_expired(site: DemoSite, client: httpx2.Client) -> None:
    """A forged sessionid, or one ended by `expire_sessions()`, is sent to the login page."""
    product = site.products[0].path
    client.cookies.set("sessionid", "forged")
    assert client.get(product).headers["location"] == f"/login?next={product}"
    client.cookies.clear()
    log_in(client)
    assert client.get(product).status_code == 200
    site.expire_sessions()
    assert client.get(product).status_code == 302


def test_require_login_redirects_catalogue() -> None:
    """With require_login, every catalogue page redirects anonymous visitors to /login."""
    with (
        DemoSite(products=20, require_login=True) as demo,
        httpx2.Client(base_url=demo.url) as http,
    ):
        assert http.get(HOME).headers["location"] == f"/login?next={HOME}"
        assert http.get("/api/products").status_code == 401
        log_in(http)
        assert http.get(HOME).status_code == 200


def test_logout_clears_the_session(site: DemoSite, client: httpx2.Client) -> None:
    """`/logout` expires the cookie, redirects to /login, and stock is hidden again."""
    log_in(client)
    response = client.get("/logout")
    assert response.status_code == 302
    assert response.headers["location"] == "/login"
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert "sessionid" not in client.cookies
    page = parse(client.get(site.products[0].path))
    assert page.css_first("p.login-required") is not None


# -- signed tokens across restarts -----------------------------------------------------------


def test_session_id_format() -> None:
    """A sessionid is `<user>.<issued-at ms>.<nonce>.<signature>`, and verifies with its secret."""
    manager = SessionManager("s", username="demo", clock=stopped_clock(1_700_000_000.25))
    token = manager.issue()
    assert re.fullmatch(r"demo\.1700000000250\.[\w-]{16}\.[\w-]{22}", token)
    assert verify_token("s", token) == SessionToken("demo", 1_700_000_000_250, token.split(".")[2])
    assert verify_token("t", token) is None


def test_odd_usernames_round_trip() -> None:
    """Dots, spaces and semicolons in a username are encoded, so a token always has four fields."""
    token = sign_token("s", SessionToken("a.b c;d=é", 1, "n" * 16))
    assert token.count(".") == 3
    assert not set(token) & set(' ;=,"')
    assert verify_token("s", token) == SessionToken("a.b c;d=é", 1, "n" * 16)


def demo_site(secret: str | None) -> DemoSite:
    """A 5-product site with `secret`, or with the default secret when it is None."""
    return DemoSite(products=5) if secret is None else DemoSite(products=5, secret=secret)


@pytest.mark.parametrize(
    ("first_secret", "second_secret"),
    [
        pytest.param(None, None, id="default-secret"),
        pytest.param("s3cret", "s3cret", id="same-secret"),
    ],
)
def test_session_survives_a_restart(first_secret: str | None, second_secret: str | None) -> None:
    """A site started after another, with the same secret, honours its sessions without a login."""
    with demo_site(first_secret) as before:
        token = session_of(before)
    with demo_site(second_secret) as after:
        assert_logged_in(after, token)
        assert after.stats.logins == 0


@pytest.mark.parametrize(
    ("first_secret", "second_secret"),
    [
        pytest.param("s3cret", "other", id="other-secret"),
        pytest.param(DEMO_SECRET, "other", id="default-then-other"),
    ],
)
def test_another_secret_rejects_the_session(first_secret: str, second_secret: str) -> None:
    """A site with a different secret sends the old session to /login?next=... as expired."""
    with DemoSite(products=5, secret=first_secret) as before:
        token = session_of(before)
    with DemoSite(products=5, secret=second_secret) as after:
        assert_sent_to_login(after, token)
        assert after.stats.session_expiries == 1


def test_session_for_another_user_is_rejected() -> None:
    """A validly signed token is not a session on a site whose user has another name."""
    with DemoSite(products=5) as before:
        token = session_of(before)
    with DemoSite(products=5, username="alice", password="pw") as after:
        assert_sent_to_login(after, token)


def tamper(token: str, how: str) -> str:
    """`token` with one part changed as `how` says."""
    user, issued, nonce, signature = token.split(".")

    def flip(text: str) -> str:  # a different first character, always
        return ("B" if text[0] == "A" else "A") + text[1:]

    changed = {
        "user": f"root.{issued}.{nonce}.{signature}",
        "issued-at": f"{user}.{int(issued) + 3_600_000}.{nonce}.{signature}",  # outlive max_age
        "nonce": f"{user}.{issued}.{flip(nonce)}.{signature}",
        "signature": f"{user}.{issued}.{nonce}.{flip(signature)}",
        "unsigned": f"{user}.{issued}.{nonce}",
        "longer-signature": f"{token}A",
        "not-a-token": "forged",
    }
    return changed[how]


@pytest.mark.parametrize(
    "how",
    ["user", "issued-at", "nonce", "signature", "unsigned", "longer-signature", "not-a-token"],
)
def test_tampered_token_is_rejected(site: DemoSite, how: str) -> None:
    """Changing any part of a session token makes it a logged-out, expired visitor."""
    token = session_of(site)
    assert_logged_in(site, token)
    assert_sent_to_login(site, tamper(token, how))


def test_max_age_is_judged_from_the_issue_time_across_restarts() -> None:
    """A restarted site counts a session's age from when it was issued, not when first seen."""
    with DemoSite(products=5) as before:
        token = session_of(before)
    time.sleep(0.3)
    with DemoSite(products=5, session_max_age=0.25) as strict:
        assert_sent_to_login(strict, token)
    with DemoSite(products=5, session_max_age=30) as lenient:
        assert_logged_in(lenient, token)


def test_max_age_with_a_clock() -> None:
    """session_max_age ends a token issued elsewhere exactly when its age passes the limit."""
    token = SessionManager("s", username="demo", clock=stopped_clock(1000.0)).issue()
    for now, visitor in [(1059.999, Visitor.LOGGED_IN), (1060.001, Visitor.EXPIRED)]:
        manager = SessionManager("s", username="demo", max_age=60, clock=stopped_clock(now))
        assert manager.check(token) is visitor, now


def test_max_requests_are_counted_per_process() -> None:
    """A restarted site counts a session's requests from 0 (the counts live in memory)."""
    with DemoSite(products=5) as before:
        token = session_of(before)
    for _ in range(2):
        with DemoSite(products=5, session_max_requests=2) as after:
            assert_logged_in(after, token)
            assert_logged_in(after, token)
            assert_sent_to_login(after, token)


def test_logout_revokes_the_token(site: DemoSite, client: httpx2.Client) -> None:
    """After /logout the old sessionid is refused even by a client that sends it again."""
    log_in(client)
    token = client.cookies["sessionid"]
    client.get("/logout")
    assert_sent_to_login(site, token)


def test_expire_sessions_ends_sessions_from_before_a_restart() -> None:
    """`expire_sessions()` also ends tokens another site issued; a login right after still works."""
    with DemoSite(products=5) as before:
        token = session_of(before)
    with DemoSite(products=5) as after:
        assert_logged_in(after, token)
        after.expire_sessions()
        assert_sent_to_login(after, token)
        assert_logged_in(after, session_of(after))


def test_login_in_the_same_millisecond_as_expire_all() -> None:
    """A login in the same millisecond as `expire_all()` holds; the session before it does not."""
    manager = SessionManager("s", username="demo", clock=stopped_clock(5.0))
    old = manager.issue()
    manager.expire_all()
    new = manager.issue()
    assert manager.check(old) is Visitor.EXPIRED
    assert manager.check(new) is Visitor.LOGGED_IN


def test_empty_secret_is_refused() -> None:
    """An empty secret would make every token forgeable, so the site refuses to start with one."""
    with pytest.raises(ValueError, match="secret"):
        DemoSite(secret="")
