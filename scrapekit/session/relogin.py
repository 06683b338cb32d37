"""A worker's fetch under the login lifecycle: one page's side of login.py.

login.py keeps the session logged in for all workers; this is what one fetch does about it:
wait while a re-login runs, judge the response, set off a re-login when the page shows the
session lost, and say when the page must be fetched again under the new login (`Refetch`, not
a retry). A page logged out right after a fresh login is a loop risk: it sets off another
login only while other pages prove the login works, and at most PAGE_RELOGINS times; else it
fails the crawl as LoggedOut. The request's meta keeps "relogged_in" (the login generation it
was refetched under) and "logged_out_again" (how often that happened).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapekit.exceptions import LoggedOut

if TYPE_CHECKING:
    from scrapekit.request import Request
    from scrapekit.response import Response
    from scrapekit.session.login import LoginManager
    from scrapekit.session.session import Session

#: Times one page may be logged out right after a fresh login and still set off a re-login:
#: only when other pages proved that login to work (the session expired again before the
#: page's turn came: sessions shorter than the queue in front of it).
PAGE_RELOGINS = 2


class Refetch(Exception):
    """The request must be fetched again, through its host's gate, under the new login."""


async def fetch_logged_in(
    session: Session, login: LoginManager | None, request: Request
) -> Response:
    """Fetch; if the response shows a lost login, log in again (once for all).

    Raises Refetch when the request must be fetched again under the new login; the
    logged-out page never reaches the callback, and the refetch is not a retry.
    """
    if login is None:
        return await session.fetch(request)
    await login.wait_ready()
    generation = login.generation
    login.fetch_started()
    try:
        response = await session.fetch(request)
    finally:
        login.fetch_finished()
    if login.generation != generation:
        # A re-login finished while this request was in flight: its hops may mix the
        # old session and the new one (e.g. redirected to the login page, which then
        # rendered logged in). Fetch it again, wholly under the new login.
        raise Refetch
    verdict = login.judge(response)
    if verdict is not False:
        # What proves the last re-login worked: a page judged logged in, or the very page
        # that saw the session lost coming back fine under the new login. Other pages that
        # cannot tell (None) prove nothing, so they never stop a login loop from counting.
        if verdict or request.meta.get("relogged_in") == generation:
            login.confirm()
        return response
    if request.meta.get("relogged_in") == generation:
        # Logged out again right after a fresh login. If no other page proved that login
        # to work (or this page keeps doing it), this page is the problem (a 401 area, a
        # page that looks logged out), not the session; otherwise the session expired
        # again before the page's turn came, and it is worth one more login.
        again = int(request.meta.get("logged_out_again", 0)) + 1
        if not login.proven or again > PAGE_RELOGINS:
            raise LoggedOut(request, response)
        request.meta["logged_out_again"] = again
    await login.relogin(generation, request.url)
    request.meta["relogged_in"] = login.generation
    raise Refetch
