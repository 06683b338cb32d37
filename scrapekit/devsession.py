"""A spider's session outside a crawl: what `scrapekit fetch/shell/parse/check` fetch through.

With a spider, the session is opened as a crawl opens it (`session/opener.py`): its settings,
headers, auth and persisted cookie jar, so a page looks as it does to the logged-in crawl.
The jar is opened read-only, and nothing logs in, unless `login=True`: then the spider's
login lifecycle runs as at the start of a crawl (the persisted cookies are checked first) and
the jar is saved. Without a spider, a default one with no persisted jar is used.

robots.txt is not consulted: these commands fetch the URL a person typed (and, for `parse
--depth`, the few requests its callbacks yield), as Scrapy's fetch, shell and parse do with
ROBOTSTXT_OBEY off; a crawl obeys it. Off-site and depth filters do not apply either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from scrapekit import state
from scrapekit.callbacks import run_callback
from scrapekit.exceptions import FetchError, UsageError
from scrapekit.items import is_item
from scrapekit.log import error_line, scrub_text
from scrapekit.request import Request
from scrapekit.response import Response
from scrapekit.session import Session
from scrapekit.session.login import LoginManager, has_login
from scrapekit.session.opener import open_jar, open_session
from scrapekit.settings import Settings
from scrapekit.spider import Spider
from scrapekit.spiderloader import describe_error
from scrapekit.workers import status_allowed

log = structlog.get_logger(__name__)


class DefaultSpider(Spider):
    """The spider of a development command given no `--spider`: no login, no persisted jar."""

    name = "default"


@dataclass
class PageResult:
    """One page fetched and parsed outside a crawl."""

    request: Request
    response: Response | None = None
    #: The Requests and items the callback yielded, in order (those before an error too).
    outputs: list[Any] = field(default_factory=list)
    #: Why the page was not parsed to the end, in one line; None when it was.
    error: str | None = None


@dataclass
class DevSession:
    """The opened session with what a shell shows: the spider, its settings, its login."""

    settings: Settings
    spider: Spider
    session: Session
    #: The spider's login lifecycle (None when it has no login()); without `login=True` it
    #: only judges pages, so a logged-out page is reported instead of logged in again.
    login: LoginManager | None
    logging_in: bool = False

    async def fetch(self, target: str | Request) -> Response:
        """Fetch a URL or Request through the session; warn when the page looks logged out."""
        request = target if isinstance(target, Request) else Request(target)
        response = await self.session.fetch(request)
        if self.login is not None and self.login.is_logged_out(response):
            log.warning(
                "page looks logged out",
                url=response.url,
                spider=self.spider.name,
                hint="the persisted session is not logged in; add --login to log in",
            )
        return response

    async def parse(self, request: Request) -> PageResult:
        """Fetch `request` and run its callback as a crawl's worker would (an HTTP error
        status the spider does not accept skips it); never raises for the page's failures."""
        result = PageResult(request)
        try:
            response = result.response = await self.fetch(request)
        except FetchError as exc:
            result.error = f"fetch failed: {error_line(exc)}"
            return result
        if not (200 <= response.status < 300) and not self._status_allowed(response):
            result.error = (
                f"{response.url}: HTTP {response.status} is not handled, callback not called "
                "(set HTTPERROR_ALLOWED_CODES or meta['handle_httpstatus_list'])"
            )
            return result
        try:
            callback = self.spider.resolve_callback(request.callback)
            async for output in run_callback(callback, response, **request.cb_kwargs):
                if isinstance(output, Request) or is_item(output):
                    result.outputs.append(output)
                elif output is not None:
                    raise TypeError(
                        f"callback yielded {type(output).__name__}, not an item or a Request"
                    )
        except Exception as exc:
            # One line with the spider's own file:line, the part of the traceback that helps.
            result.error = f"callback raised {scrub_text(describe_error(exc))}"
        return result

    def _status_allowed(self, response: Response) -> bool:
        """HTTPERROR_ALLOWED_CODES and meta["handle_httpstatus_list"/"_all"], as in a crawl."""
        return status_allowed(response, self.settings["HTTPERROR_ALLOWED_CODES"])


@asynccontextmanager
async def open_dev_session(
    settings: Settings,
    spider_cls: type[Spider] | None = None,
    *,
    login: bool = False,
    spider_kwargs: dict[str, Any] | None = None,
) -> AsyncIterator[DevSession]:
    """Open the session of `spider_cls` (see the module docstring); close it on exit.

    Raises:
        UsageError: `login` for no spider, or for a spider without login().
        LoginFailed: `login` and the login did not take.
    """
    spider = (spider_cls or DefaultSpider)(**(spider_kwargs or {}))
    spider.settings = settings
    if login and (spider_cls is None or not has_login(spider)):
        raise UsageError(
            "--login needs --spider NAME naming a spider with a login() method"
            if spider_cls is None
            else f"--login: spider {spider.name!r} has no login() method"
        )
    async with AsyncExitStack() as stack:
        session = await open_session(stack, settings, spider)
        manager = None
        if spider_cls is not None:
            name = state.session_name(settings, spider.name)
            if login:
                state.check_writable(settings, name)
            cookies = await open_jar(stack, session, settings, name, read_only=not login)
            if has_login(spider):
                manager = LoginManager(spider, session, settings, cookies)
                if login:
                    await manager.start(have_cookies=len(session.cookies) > 0)
        yield DevSession(settings, spider, session, manager, logging_in=login)
