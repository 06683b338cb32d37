"""Spider: the class a user writes — where to start, which sites, and how to parse pages.

Stage 1 of the flow. The engine sets `settings` and `session` on the instance before `start()`
runs, so `start()` may log in or fetch with the crawl's own session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from scrapekit._types import CallbackOutput, CallbackRef
from scrapekit.request import Request

if TYPE_CHECKING:
    from scrapekit.response import Response
    from scrapekit.session import Session
    from scrapekit.settings import Settings


class Spider:
    """Base class for spiders.

    Subclass it, give it a unique `name`, and either set `start_urls` or override `start()`.
    Keyword arguments (`scrapekit crawl NAME -a key=value`) become instance attributes.
    """

    #: Unique name used by `scrapekit crawl NAME`.
    name: ClassVar[str] = ""
    #: URLs the default `start()` requests, each parsed by `parse`.
    start_urls: list[str] = []
    #: Hosts (and their subdomains) the crawl may visit; empty means any host.
    allowed_domains: list[str] = []
    #: Settings for this spider, above settings.toml and below environment and command line.
    custom_settings: ClassVar[dict[str, Any]] = {}
    #: Headers sent with every request of the crawl (session-wide, like requests.Session).
    headers: ClassVar[dict[str, str]] = {}
    #: Credentials for every request: a (user, password) tuple for Basic, or any httpx2.Auth.
    auth: Any = None
    #: Where `auth` and an Authorization header in `headers` are sent. None: only the origin
    #: (scheme, host, port) of the first request; a domain widens it to that domain and its
    #: subdomains, "" to every host; never from https down to http.
    auth_domain: str | None = None
    #: The site's login page (a redirect there means logged out): LOGIN_URL at the spider
    #: layer (beats settings.toml; SCRAPEKIT_LOGIN_URL and -s beat it).
    login_url: str = ""
    #: A page that shows whether the session is logged in: LOGIN_CHECK_URL at the spider layer.
    login_check_url: str = ""

    settings: Settings
    session: Session

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.logger = structlog.get_logger("scrapekit.spider").bind(spider=self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    async def start(self) -> AsyncIterator[Request]:
        """Yield the first requests of the crawl; by default one per `start_urls` entry.

        Yield the same outputs in the same order on every run: a resumed crawl skips as many
        as earlier runs stored (and does not call it once it was read to the end).
        """
        for url in self.start_urls:
            yield Request(url, callback=self.parse)

    def parse(self, response: Response) -> CallbackOutput:
        """The default callback; override it to extract items and follow links."""
        raise NotImplementedError(
            f"{type(self).__name__}.parse is not defined: write a parse(self, response) method "
            "or give each Request a callback"
        )

    async def login(self, session: Session) -> None:
        """Log the shared session in; runs only when it is not logged in. Override to use it.

        Use `session.get/post/submit_form`: cookies the site sets are kept (and persisted) for
        the whole crawl and the next run. Raise, or leave the session logged out, to fail.
        """
        raise NotImplementedError  # never called: the engine checks that it is overridden

    def is_logged_in(self, response: Response) -> bool | None:
        """Judge whether a response shows a logged-in session.

        Return None when the page cannot tell; only False counts as logged out. The default
        cannot tell, so a 401 or a redirect to LOGIN_URL is what counts as logged out.
        """
        return None

    def resolve_callback(self, callback: CallbackRef, *, default: bool = True) -> Any:
        """The callable for a callback reference: a callable, a method name, or None (-> parse)."""
        if callback is None:
            return self.parse if default else None
        if isinstance(callback, str):
            method = getattr(self, callback, None)
            if method is None or not callable(method):
                raise AttributeError(f"spider {self.name!r} has no method {callback!r}")
            return method
        return callback
