"""How a spider's session is opened: one place for the crawl and the development commands.

Part of stage 5 (session). A crawl (`engine.py`) and `scrapekit fetch/shell/parse/check
--spider` open the same identity the same way: a client from the settings, the spider's
headers and auth, then the persisted cookie jar of its session (SESSION_NAME, else the
spider's name). The development commands open the jar read-only unless asked to log in.
Reads COOKIES_ENABLED, COOKIES_PERSIST and COOKIES_FLUSH_SECONDS (the client settings:
`client.py`).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from scrapekit import state
from scrapekit.session.cookiestore import CookieSync
from scrapekit.session.session import Session

if TYPE_CHECKING:
    from scrapekit.settings import Settings
    from scrapekit.spider import Spider


async def open_session(stack: AsyncExitStack, settings: Settings, spider: Spider) -> Session:
    """The spider's session (closed on `stack`): client from settings, its headers and auth."""
    session = await stack.enter_async_context(Session.from_settings(settings))
    session.headers.update(spider.headers)
    if spider.auth is not None:
        session.auth = spider.auth
        session.auth_domain = spider.auth_domain
    spider.session = session
    return session


async def open_jar(
    stack: AsyncExitStack,
    session: Session,
    settings: Settings,
    session_name: str,
    *,
    read_only: bool = False,
) -> CookieSync:
    """Load session `session_name`'s persisted jar into `session` and keep it saved (closed
    on `stack`); `read_only`: load it and never write it, nor create it when missing."""
    return await stack.enter_async_context(
        CookieSync(
            session.cookies,
            state.cookie_store(settings, session_name, read_only=read_only),
            interval=float(settings["COOKIES_FLUSH_SECONDS"]),
            enabled=bool(settings["COOKIES_ENABLED"]),
        )
    )
