"""The login lifecycle: start logged in, notice a logged-out session, log in again once.

At start, persisted cookies are checked first (LOGIN_CHECK_URL, judged by the spider's
`is_logged_in`) and `login()` runs only when they fail, so a cron run whose cookies are still
good sends no login request. During the crawl a response judged logged out (the spider says
False, or a 401, or a redirect to LOGIN_URL) triggers ONE re-login for the whole session,
however many workers saw it: workers hold new requests while it runs, and the request that
saw the logged-out page is fetched again. The lifecycle's own requests (login(), the check
URL) run with `login_running()` true, so the redirect check lets them go wherever the site
sends them (robots.txt and allowed_domains govern the crawl, not the login). A failed login is
remembered: no worker tries again, the crawl ends as failed.
Reads LOGIN_CHECK_URL, LOGIN_URL and MAX_RELOGINS; a spider's `login_url`/`login_check_url`
attributes are set at the spider layer (above settings.toml, below SCRAPEKIT_* and -s).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import structlog

from scrapekit.exceptions import LoginFailed, SessionError

if TYPE_CHECKING:
    from scrapekit.response import Response
    from scrapekit.session.session import Session
    from scrapekit.settings import Settings
    from scrapekit.spider import Spider

log = structlog.get_logger(__name__)
#: Tries per login before it counts as failed (see LoginManager._login).
LOGIN_ATTEMPTS = 2
#: Spider attributes that are the spider layer of a login setting.
SPIDER_ATTRIBUTES = {"LOGIN_URL": "login_url", "LOGIN_CHECK_URL": "login_check_url"}

# A context variable, not a flag on the manager: only the task running the login (and tasks it
# starts) is exempt, while the other workers' fetches keep every check.
_running: contextvars.ContextVar[bool] = contextvars.ContextVar("scrapekit_login", default=False)


def login_running() -> bool:
    """Whether the current task is inside the login lifecycle (login(), the check URL)."""
    return _running.get()


@contextmanager
def _lifecycle() -> Iterator[None]:
    token = _running.set(True)
    try:
        yield
    finally:
        _running.reset(token)


class Flushable(Protocol):
    """Whatever persists the jar (the cookie sync): written right after a login."""

    async def flush(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LoginStatistics:
    """How often the crawl logged in, and why."""

    logins: int
    relogins: int
    skipped: bool
    #: Why the login was lost for good (the LoginFailed message), None while it holds.
    error: str | None = None


def has_login(spider: Spider) -> bool:
    """Whether the spider defines `login()` (the base class has none)."""
    from scrapekit.spider import Spider

    return type(spider).login is not Spider.login


class LoginManager:
    """Keeps the shared session logged in; one re-login at a time for all workers."""

    def __init__(
        self, spider: Spider, session: Session, settings: Settings, cookies: Flushable
    ) -> None:
        self._spider = spider
        self._session = session
        self._cookies = cookies
        apply_spider_layer(spider, settings)
        self._check_url = str(settings["LOGIN_CHECK_URL"])
        login_url = str(settings["LOGIN_URL"])
        parts = urlsplit(login_url)
        # The site we log in to: where a 401 means "logged out".
        self._login_netloc = (parts.netloc or urlsplit(self._check_url).netloc).lower()
        self._login_path = parts.path if login_url else ""
        self._max_relogins = int(settings["MAX_RELOGINS"])
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._ready.set()
        # Fetches in flight, so a re-login can wait for them: their responses (Set-Cookie on
        # a redirect to the login page, say) must not land in the jar while login() runs.
        self._fetching = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        #: Bumped after every login: a worker that saw a logged-out page under an older
        #: generation knows someone already logged in again and simply retries.
        self.generation = 0
        self._logins = 0
        self._relogins = 0
        # Re-logins with no logged-in page between them: what MAX_RELOGINS bounds, so a
        # long crawl may outlive many expiring sessions, but a login loop stops.
        self._in_a_row = 0
        self._skipped = False
        self._failure: LoginFailed | None = None
        # The generation some page last proved to work: a page logged out again right after
        # a login that others proved is a session that expired again, not a page at fault.
        self._proven = -1

    # -- judging -----------------------------------------------------------------------------

    def is_login_page(self, url: str) -> bool:
        """Whether `url` is LOGIN_URL's page (any query): a redirect there means logged out."""
        if not self._login_path:
            return False
        parts = urlsplit(url)
        return parts.path == self._login_path and (
            not self._login_netloc or parts.netloc.lower() == self._login_netloc
        )

    def judge(self, response: Response) -> bool | None:
        """True if the response shows a logged-in session, False if logged out, None if unsure.

        Being redirected to LOGIN_URL always counts as logged out. Otherwise the spider's
        `is_logged_in` decides when it returns True or False; None ("cannot tell from this
        page") falls back to: a 401 counts as logged out, anything else cannot tell.
        """
        if response.redirect_urls and self.is_login_page(response.url):
            return False
        verdict = self._spider.is_logged_in(response)
        if verdict is not None:
            return verdict
        # A 401 means logged out only on the site we log in to, not on some other host.
        if response.status == 401 and (
            not self._login_netloc or urlsplit(response.url).netloc.lower() == self._login_netloc
        ):
            return False
        return None

    def is_logged_out(self, response: Response) -> bool:
        """Whether a response shows the session has lost its login (see `judge`)."""
        return self.judge(response) is False

    # -- start -------------------------------------------------------------------------------

    async def start(self, *, have_cookies: bool) -> None:
        """Make sure the session is logged in before any page is crawled.

        Raises LoginFailed when login() raises or the session still looks logged out.
        """
        if have_cookies and self._check_url:
            with _lifecycle():
                response = await self._session.get(self._check_url)
            if not self.is_logged_out(response):
                self._skipped = True
                log.info("login skipped", reason="persisted cookies are still logged in")
                return
            log.info("login needed", reason="persisted cookies are logged out")
        elif have_cookies:
            self._skipped = True
            log.info("login skipped", reason="persisted cookies (no LOGIN_CHECK_URL to check)")
            return
        await self._login("start")

    # -- during the crawl ------------------------------------------------------------------

    async def wait_ready(self) -> None:
        """Return once no re-login is running (new requests wait here); LoginFailed if it failed."""
        if not self._ready.is_set():
            await self._ready.wait()
        if self._failure is not None:
            raise self._failure  # lost for good while this request waited: do not send it

    def confirm(self) -> None:
        """The re-logins so far worked: a page was judged logged in (is_logged_in True), or
        the page that saw the session lost came back logged in.

        Other pages that cannot tell (None) say nothing about the login, so they must not
        let a login loop run forever.
        """
        self._in_a_row = 0
        self._proven = self.generation

    @property
    def proven(self) -> bool:
        """Whether a page has shown that the current login works (see `confirm`)."""
        return self._proven == self.generation

    @property
    def failure(self) -> LoginFailed | None:
        """The error that ended the login for good, if it was lost."""
        return self._failure

    def fetch_started(self) -> None:
        """A worker's fetch is going out (call after wait_ready, pair with fetch_finished)."""
        self._fetching += 1
        self._quiet.clear()

    def fetch_finished(self) -> None:
        """A worker's fetch came back (or failed)."""
        self._fetching -= 1
        if not self._fetching:
            self._quiet.set()

    async def relogin(self, seen_generation: int, url: str) -> None:
        """Log in again, once for every worker that saw the logged-out page under one login."""
        async with self._lock:
            if self._failure is not None:
                raise self._failure  # lost for good: no worker logs in again
            if self.generation != seen_generation:
                return  # another worker already logged in again since this page was fetched
            if self._in_a_row >= self._max_relogins:
                self._failure = LoginFailed(
                    f"still logged out after {self._in_a_row} re-logins in a row with no page "
                    f"judged logged in (MAX_RELOGINS={self._max_relogins}); last logged-out "
                    f"page: {url}. Check login() and is_logged_in()"
                )
                raise self._failure
            self._ready.clear()
            try:
                log.warning("session logged out", url=url)
                await self._quiet.wait()  # new fetches wait; let those in flight land first
                await self._login("expired")
                self._relogins += 1
                self._in_a_row += 1
            except LoginFailed as exc:
                self._failure = exc
                raise
            finally:
                self.generation += 1
                self._ready.set()

    async def _login(self, reason: str) -> None:
        # A second attempt when the first does not take: a re-login races with responses
        # still arriving for the old session, and one of them may replace a cookie the
        # login form needs (a CSRF cookie). By the second attempt those have all landed.
        for attempt in range(1, LOGIN_ATTEMPTS + 1):
            try:
                with _lifecycle():
                    await self._spider.login(self._session)
                    failure = await self._verify()
            except SessionError:  # LoginFailed, or a PROXY that refuses: trying again won't help
                raise
            except Exception as exc:
                failure = LoginFailed(f"login() failed: {type(exc).__name__}: {exc}")
                failure.__cause__ = exc
            if failure is None:
                break
            if attempt == LOGIN_ATTEMPTS:
                raise failure
            log.warning("login did not take, trying again", error=str(failure))
        self._logins += 1
        await self._cookies.flush()
        log.info("logged in", reason=reason, logins=self._logins)

    async def _verify(self) -> LoginFailed | None:
        """The failure if LOGIN_CHECK_URL still shows a logged-out session, else None."""
        if not self._check_url:
            return None
        response = await self._session.get(self._check_url)
        if not self.is_logged_out(response):
            return None
        return LoginFailed(
            f"still logged out after login(): {self._check_url} (LOGIN_CHECK_URL) was judged "
            "logged out; check the credentials and is_logged_in()"
        )

    def statistics(self) -> LoginStatistics:
        """Logins and re-logins so far."""
        return LoginStatistics(
            logins=self._logins,
            relogins=self._relogins,
            skipped=self._skipped,
            error=str(self._failure) if self._failure is not None else None,
        )


def apply_spider_layer(spider: Spider, settings: Settings) -> None:
    """Set the spider's `login_url`/`login_check_url` attributes as spider-layer settings.

    Attributes, not custom_settings, because they may depend on the spider's arguments
    (-a base_url=...); they still rank where the spider layer does: above settings.toml and
    the defaults, below SCRAPEKIT_* and -s (Settings.set keeps a higher layer's value).
    """
    name = type(spider).__name__
    for key, attribute in SPIDER_ATTRIBUTES.items():
        if value := getattr(spider, attribute, ""):
            settings.set(key, str(value), priority="spider", source=f"{name}.{attribute}")
