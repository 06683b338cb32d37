"""Everything scrapekit raises, under one root, plus the control-flow exceptions.

The error tree::

    ScrapekitError
    ├── ConfigError                 bad configuration: exit code 2, before anything is fetched
    │   ├── SettingsError           an unknown key or a bad value, naming where it came from
    │   ├── SpiderNotFound          no spider by that name (lists close matches)
    │   ├── ComponentError          a dotted path that does not import or build
    │   ├── ProjectError            no settings.toml found, or a spider module that fails to import
    │   ├── PathNotWritable         STATS_FILE, the state folder or the cookie jar cannot be written
    │   ├── FrontierCorrupt         the frontier's file is corrupt or foreign (names it and the fix)
    │   ├── HttpCacheCorrupt        the HTTP cache's file is corrupt or foreign (names the fix)
    │   ├── FeedNotResumable        a resumed crawl's feed file is not as the crawl left it
    │   ├── FeedUnwritable          a feed's file cannot be created where it was asked for
    │   └── UsageError              bad command-line arguments
    ├── FetchError                  a request could not be fetched (.request, maybe .response)
    │   ├── TransportError          connect/read/write errors, resets, protocol errors
    │   ├── FetchTimeout            a connect, read, write or pool timeout
    │   ├── BadRequestMeta          a meta value the fetch reads cannot be used (not retried)
    │   ├── TooManyRedirects        the redirect limit was reached
    │   ├── InvalidURL              a URL that cannot be fetched (bad syntax, not http or https)
    │   ├── ResponseTooLarge        the body passed MAX_RESPONSE_BYTES
    │   ├── DecodingError           a body whose Content-Encoding is corrupt or not supported
    │   ├── LoggedOut               a page still shows a logged-out session right after a login
    │   ├── RedirectBlocked         a redirect to a URL the crawl may not visit (off-site, robots)
    │   ├── BadRedirect             a redirect that names no one target (two Locations, or no URL)
    │   └── HttpStatusError         a response status the callback did not ask for (e.g. 404)
    ├── SessionError                the shared login session cannot be used
    │   ├── LoginFailed             login() raised, or the session is still logged out after it
    │   ├── ProxyFailed             PROXY refused the credentials (407) or cannot be reached
    │   └── CookieJarCorrupt        the persisted cookie jar cannot be read (names the fix)
    ├── FrontierError               the durable frontier's file could not be read or written
    │   └── FrontierCorrupt         (also a ConfigError, above)
    ├── HttpCacheError              the HTTP cache's file could not be read or written
    │   └── HttpCacheCorrupt        (also a ConfigError, above)
    ├── CrawlRunning                the spider's run lock is held by a running crawl (exit code 75)
    ├── UnstorableRequest           a request a durable frontier cannot store (names the field)
    ├── NotHTMLError                .css() on a response that is not HTML or XML (an image, a PDF)
    ├── FormNotFound                no form on the page matches the selector given to submit_form
    ├── CallbackError               a callback or errback raised (wraps the original, names the URL)
    └── PipelineError               a pipeline's open() or close() failed

Control-flow exceptions are not failures, so they do not derive from `ScrapekitError`:
`DropItem` (a pipeline discards an item), `CloseSpider` (a callback ends the crawl) and
`NotConfigured` (a component switches itself off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapekit.request import Request
    from scrapekit.response import Response


class ScrapekitError(Exception):
    """Root of every error scrapekit raises on purpose."""


# -- configuration ---------------------------------------------------------------------------


class ConfigError(ScrapekitError):
    """The crawl cannot start because of how it is configured (exit code 2)."""


class SettingsError(ConfigError):
    """A setting is unknown or has a bad value; the message names key, type and source."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f" ({source})" if source else ""
        super().__init__(f"{key}{where}: {problem}")


class SpiderNotFound(ConfigError):
    """No spider has the requested name."""

    def __init__(self, name: str, known: list[str], close: list[str]) -> None:
        self.name = name
        if close:
            hint = f"did you mean {', '.join(repr(c) for c in close)}?"
        elif known:
            hint = f"known spiders: {', '.join(sorted(known))}"
        else:
            hint = "no spiders were found; check SPIDER_MODULES"
        super().__init__(f"no spider named {name!r}: {hint} (see `scrapekit list`)")


class ComponentError(ConfigError):
    """A component given by dotted path cannot be imported or built."""


class ProjectError(ConfigError):
    """The project cannot be found or its spider modules cannot be imported."""


class PathNotWritable(ConfigError):
    """A file the crawl must write (STATS_FILE, the cookie jar) cannot be written.

    Found before the first request, so a crawl never runs for nothing.
    """

    def __init__(self, what: str, path: str, problem: str, setting: str) -> None:
        self.what = what
        self.path = path
        self.problem = problem
        self.setting = setting
        super().__init__(
            f"cannot write {what} {path}: {problem}; make it writable or point {setting} elsewhere"
        )


class UsageError(ConfigError):
    """The command line is wrong."""


# -- fetching -------------------------------------------------------------------------------


class FetchError(ScrapekitError):
    """A request could not be fetched. `request` is always set; `response` when one arrived.

    `request_sent` is False only when the request surely never reached the server (connect
    errors, invalid URLs): then even a POST is safe to send again.
    """

    reason = "fetch error"

    def __init__(
        self,
        message: str,
        *,
        request: Request | None = None,
        response: Response | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.request = request
        self.response = response
        self.request_sent = request_sent


class TransportError(FetchError):
    """The connection failed: refused, reset, broken protocol."""

    reason = "transport error"


class FetchTimeout(FetchError):
    """A connect, read, write or pool timeout expired (DOWNLOAD_TIMEOUT)."""

    reason = "timeout"


class BadRequestMeta(FetchError):
    """A meta value the fetch reads cannot be used (`meta["download_timeout"] = "abc"`).

    Nothing was sent, and the same request would fail the same way: it is not retried.
    """

    reason = "bad meta"

    def __init__(self, message: str, *, request: Request | None = None) -> None:
        super().__init__(message, request=request, request_sent=False)


class TooManyRedirects(FetchError):
    """More redirects than REDIRECT_MAX_TIMES, or a loop (same URL, same cookies sent)."""

    reason = "too many redirects"


class InvalidURL(FetchError, ValueError):
    """A URL that cannot be fetched: malformed, or its scheme is not http or https."""

    reason = "invalid url"

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"cannot fetch {url!r}: {problem}", request_sent=False)


class ResponseTooLarge(FetchError):
    """The (decompressed) body grew past MAX_RESPONSE_BYTES and was cut off."""

    reason = "response too large"


class DecodingError(FetchError):
    """A layer of the body's Content-Encoding is corrupt, or a coding scrapekit does not decode."""

    reason = "decoding error"


class LoggedOut(FetchError):
    """A page still looked logged out right after a fresh login: the page is the problem.

    The request fails (its errback runs) instead of logging in again and again.
    """

    reason = "logged out"

    def __init__(self, request: Request, response: Response) -> None:
        super().__init__(
            f"{request.url}: still logged out right after a fresh login (a page only some "
            "accounts may see?); check is_logged_in() for this page",
            request=request,
            response=response,
        )


class RedirectBlocked(FetchError):
    """A redirect pointed where the crawl may not go: off-site, or disallowed by robots.txt.

    Counted as a dropped request (like an off-site link), not as an error.
    """

    def __init__(self, request: Request, target: str, why: str) -> None:
        self.target = target
        self.reason = f"redirect {why}"
        super().__init__(f"{request.url}: redirect to {target} dropped ({why})", request=request)


class BadRedirect(FetchError):
    """A redirect names no one place to go: different Location headers, or one that is not
    a URL at all.

    Browsers refuse both too (Chrome: ERR_RESPONSE_HEADERS_MULTIPLE_LOCATION,
    ERR_INVALID_REDIRECT); identical repeats are harmless and followed. The server answers
    the same way again: not retried.
    """

    reason = "bad redirect"

    def __init__(
        self, request: Request, url: str, locations: list[str], problem: str | None = None
    ) -> None:
        self.locations = locations
        shown = ", ".join(repr(location) for location in locations)
        if problem is None:
            what = f"the redirect has {len(locations)} different Location headers ({shown})"
        else:
            what = f"the redirect's Location {shown} {problem}"
        super().__init__(f"{url}: {what}; not followed", request=request)


class HttpStatusError(FetchError):
    """A non-2xx status the callback did not ask for (see HTTPERROR_ALLOWED_CODES)."""

    reason = "http status"


# -- session -------------------------------------------------------------------------------


class SessionError(ScrapekitError):
    """The crawl's shared session cannot be used (exit code 1, or 2 for a corrupt jar)."""

    finish_reason = "login_failed"
    """The crawl's finish reason when this error ends it."""


class LoginFailed(SessionError):
    """Logging in failed, or the session still looked logged out afterwards."""


class ProxyFailed(SessionError):
    """PROXY refused the session's credentials (HTTP 407) or cannot be reached.

    Not a page's failure: every request goes through the one proxy and would fail the same
    way, so a crawl ends early (exit code 1) instead of retrying or failing each page.
    `proxy` is the URL with its credentials already hidden.
    """

    finish_reason = "proxy_failed"

    def __init__(self, proxy: str, problem: str, fix: str) -> None:
        self.proxy = proxy
        self.problem = problem
        super().__init__(f"proxy {proxy} (PROXY) {problem}; {fix}")


class CookieJarCorrupt(SessionError, ConfigError):
    """The persisted cookie jar is unreadable; the message names the file and the fix.

    Also a ConfigError: like a bad setting, it stops the crawl before anything is fetched
    (exit code 2), and it is never reset silently.
    """


class FrontierError(ScrapekitError):
    """The durable frontier's file could not be read or written (busy, disk full)."""


class FrontierCorrupt(FrontierError, ConfigError):
    """The frontier's file is corrupt, foreign or unreadable (exit code 2); never reset silently."""

    def __init__(self, path: str, problem: str, *, fix: str = "") -> None:
        self.path = path
        self.problem = problem
        fix = fix or "delete it (and its -wal/-shm files) to start this crawl's state afresh"
        super().__init__(f"frontier {path} is {problem}; {fix}")


class HttpCacheError(ScrapekitError):
    """The HTTP cache's file could not be read or written (busy, disk full)."""


class HttpCacheCorrupt(HttpCacheError, ConfigError):
    """The HTTP cache's file is corrupt, foreign or unreadable (exit code 2).

    Never reset silently, like the other state files, though nothing in it is lost for good:
    the fix is to delete it (the next run with the cache on fills a new one) or --no-cache.
    """

    def __init__(self, path: str, problem: str, *, fix: str = "") -> None:
        self.path = path
        self.problem = problem
        fix = fix or (
            "delete it (and its -wal/-shm files) to start an empty cache, or crawl with --no-cache"
        )
        super().__init__(f"HTTP cache {path} is {problem}; {fix}")


class CrawlRunning(ScrapekitError):
    """Another process runs this spider's crawl (its run lock is held): exit code 75, try later."""

    def __init__(self, spider: str, pid: int | None, path: str) -> None:
        self.spider = spider
        self.pid = pid
        self.path = path
        who = f"pid {pid}" if pid is not None else "a process whose pid cannot be read"
        super().__init__(
            f"spider {spider!r} is already running ({who}, lock {path}); "
            "try again later, or pass --wait to wait for it"
        )


class UnstorableRequest(ScrapekitError, ValueError):
    """A request a durable frontier cannot store: it is dropped alone, never the crawl."""

    def __init__(self, url: str, field: str, problem: str) -> None:
        self.url = url
        self.field = field
        self.problem = problem
        super().__init__(f"request {url} cannot be stored: {field} {problem}")


class NotHTMLError(ScrapekitError, TypeError):
    """`.css()` was called on a response whose Content-Type is not HTML or XML."""

    def __init__(self, url: str, content_type: str) -> None:
        self.url = url
        self.content_type = content_type
        super().__init__(
            f"cannot select from {url}: its Content-Type is {content_type!r}, not HTML; "
            "check response.is_html or use response.body"
        )


class FormNotFound(ScrapekitError, LookupError):
    """No form on the page matches the selector given to `submit_form()`."""

    def __init__(self, url: str, selector: str) -> None:
        self.url = url
        self.selector = selector
        super().__init__(
            f"no form matches {selector!r} on {url}; pass selector= to pick the login form"
        )


# -- running ---------------------------------------------------------------------------------


class CallbackError(ScrapekitError):
    """A callback or errback raised; the original exception is the __cause__."""

    def __init__(self, callback: str, url: str, error: BaseException) -> None:
        self.callback = callback
        self.url = url
        super().__init__(f"{callback} failed on {url}: {type(error).__name__}: {error}")


class PipelineError(ScrapekitError):
    """A pipeline could not open or close; the crawl cannot keep its items safe."""


class FeedNotResumable(PipelineError, ConfigError):
    """A resumed crawl's feed file is shorter than it wrote, or another file, or runs
    without the feed delivered items it lacks (exit code 2).

    Never truncated silently: the file may hold someone else's data now.
    """

    def __init__(
        self,
        feed: str,
        problem: str,
        fix: str = "put the crawl's file back, or start the crawl over with --fresh (FRESH)",
    ) -> None:
        self.feed = feed
        self.problem = problem
        super().__init__(f"feed {feed} cannot be resumed: {problem}; {fix}")


class FeedUnwritable(PipelineError, ConfigError):
    """A feed's file (or its folder) cannot be created: a configuration error (exit code 2),
    found before anything is fetched."""

    def __init__(self, feed: str, reason: str) -> None:
        self.feed = feed
        super().__init__(
            f"feed {feed} cannot be written: {reason}; give -o/-O (FEEDS) a path in a folder "
            "you can write to"
        )


# -- control flow (not errors) ----------------------------------------------------------------


class DropItem(Exception):
    """Raised by a pipeline's process_item to discard an item; the message is the drop reason.

    Not an error: a validation pipeline drops items as its normal work. Drops are counted by
    reason in the crawl stats.
    """


class CloseSpider(Exception):
    """Raised by a callback to stop the crawl gracefully, as the first SIGINT would."""

    def __init__(self, reason: str = "cancelled") -> None:
        self.reason = reason
        super().__init__(reason)


class NotConfigured(Exception):
    """Raised by a component's constructor to switch itself off for this crawl."""
