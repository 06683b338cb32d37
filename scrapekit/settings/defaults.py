"""Every setting's default: the one place that lists scrapekit's settings.

Every UPPER_CASE name in this module is a setting, collected into `DEFAULTS` at the bottom.
Rules for adding one (after Scrapy's `settings/default_settings.py`):

- put it in its subsystem's group, keeping keys alphabetical within the group;
- give it a one-line attribute docstring saying what it does and its unit;
- add its validator to `validate.VALIDATORS` and its row to docs/settings.md.

tests/settings/test_settings_reference.py checks all of this.
"""

from __future__ import annotations

from typing import Any

from scrapekit._version import __version__

# -- project ----------------------------------------------------------------------------------

SPIDER_MODULES = ["spiders"]
"""Modules searched for Spider subclasses (dotted names, importable from the project root)."""

STATE_DIR = ".scrapekit"
"""Folder for crawl state (frontier, cookies, run lock), relative to the project root."""

# -- engine and workers -----------------------------------------------------------------------

CLOSESPIDER_ERRORCOUNT = 0
"""Stop the crawl after this many callback or fetch errors (0 = off)."""

CLOSESPIDER_ITEMCOUNT = 0
"""Stop the crawl after this many items have passed the pipelines (0 = off)."""

CLOSESPIDER_PAGECOUNT = 0
"""Stop the crawl after this many responses have been received (0 = off)."""

CLOSESPIDER_TIMEOUT = 0.0
"""Stop the crawl after it has run this many seconds (0 = off)."""

CLOSE_TIMEOUT = 30.0
"""Seconds closing (feeds, cookie jar) may take after the crawl stops; then abandoned (0 = off)."""

CONCURRENCY = 16
"""Number of worker tasks, i.e. requests in flight at once (also the HTTP connection pool size)."""

DEPTH_LIMIT = 0
"""Deepest link depth followed from the start requests, which are depth 0 (0 = unlimited)."""

FRESH = False
"""Discard an unfinished crawl's frontier state at start and begin a new crawl (--fresh)."""

FRONTIER = "sqlite"
"""Where pending requests and seen fingerprints live: "sqlite" (resumable) or "memory" (lost)."""

MAX_ERRORS = 0
"""More errors than this (callbacks, failed requests, lost logins) fail the crawl (0 = no limit)."""

RECRAWL_AFTER = 0.0
"""In a new run, skip URLs an earlier run fetched less than this long ago (0 = off; 7d, 12h)."""

RUN_LOCK_WAIT = False
"""Wait for a running crawl of the same spider to end instead of exiting 75 (--wait)."""

START_READAHEAD = 10000
"""Most requests pending at once while start() is read ahead of throttled hosts (0 = no limit)."""

URL_LENGTH_LIMIT = 2083
"""Longest URL followed, in characters; longer links are dropped and counted (0 = no limit)."""

# -- politeness: rate limits, retries, robots.txt -------------------------------------------

AUTOTHROTTLE = False
"""Adapt each host's rate: halve it on 429/503/timeouts, raise it slowly while healthy."""

AUTOTHROTTLE_STEP = 0.5
"""Requests per second added to a healthy host's rate at each AutoThrottle increase."""

BURST = 1
"""Requests a host's token bucket may send at once after being idle (with RATE > 0)."""

CONCURRENCY_PER_HOST = 8
"""Most requests in flight to one host (or domain, see RATE_LIMIT_KEY) at once (0 = no limit)."""

DOWNLOAD_DELAY = 0.0
"""Seconds between the starts of two requests to one host (0 = none), as in Scrapy."""

RANDOMIZE_DELAY = True
"""Vary DOWNLOAD_DELAY randomly between 0.5x and 1.5x, as Scrapy does."""

RATE = 0.0
"""Requests per second allowed to one host, as a token bucket with BURST (0 = no limit)."""

RATE_LIMIT_KEY = "host"
"""What rate limits apply to: each "host", or each registered "domain" (www.x.com = api.x.com)."""

RATE_MAX = 50.0
"""Highest rate AutoThrottle raises a host to (requests per second)."""

RATE_MIN = 0.5
"""Lowest rate AutoThrottle lowers a host to (requests per second)."""

RETRY_AFTER_MAX = 600.0
"""Longest Retry-After honoured (seconds); a longer one is cut to this."""

RETRY_BACKOFF_BASE = 0.5
"""Seconds the first retry waits at most; each later retry doubles it (full jitter)."""

RETRY_BACKOFF_MAX = 60.0
"""Longest wait before a retry (seconds), however many attempts came before."""

RETRY_ENABLED = True
"""Retry failed requests (network errors and RETRY_HTTP_CODES)."""

RETRY_HTTP_CODES = [408, 429, 500, 502, 503, 504, 522, 524]
"""Response statuses that are retried."""

RETRY_TIMES = 3
"""Retries after the first attempt before a request fails for good."""

ROBOTSTXT_OBEY = False
"""Fetch each host's robots.txt and drop the requests it disallows (new projects turn it on)."""

ROBOTSTXT_RETRY_SECONDS = 300.0
"""Longest wait between fetches of an unavailable robots.txt, and how long a given-up host waits."""

ROBOTSTXT_TIMEOUT = 30.0
"""Most seconds a host waits for an unavailable robots.txt (fetches and holds); then dropped."""

ROBOTSTXT_USER_AGENT = ""
"""User agent token matched in robots.txt groups (empty: the first word of USER_AGENT)."""

# -- session and HTTP -------------------------------------------------------------------------

DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en",
}
"""Headers sent with every request unless the request or the spider sets them."""

DOWNLOAD_TIMEOUT = 30.0
"""Seconds to wait to connect, and then between bytes of a response, before giving up."""

HTTP2 = False
"""Offer HTTP/2 to servers that support it (needs the `scrapekit[http2]` extra)."""

HTTPERROR_ALLOWED_CODES: list[int] = []
"""Non-2xx HTTP status codes whose responses still reach callbacks instead of failing."""

MAX_RESPONSE_BYTES = 33554432
"""Largest (decompressed) response body in bytes; larger ones fail (0 = no limit; 32 MiB)."""

PROXY = ""
"""One proxy for every request of the session, http:// or https://, may hold user:password@."""

REDIRECT_ENABLED = True
"""Follow HTTP redirects (3xx with a Location header)."""

REDIRECT_MAX_TIMES = 20
"""Most redirects followed for one request before it fails as too many redirects."""

USER_AGENT = f"scrapekit/{__version__}"
"""User-Agent header sent with every request unless the request or the spider sets one."""

WARN_RESPONSE_BYTES = 0
"""Log a warning for a response body larger than this many bytes (0 = off)."""

# -- login session: cookies, headers, login -------------------------------------------------

COOKIES_ENABLED = True
"""Keep a cookie jar for the crawl's session (false: never send or store cookies)."""

COOKIES_FLUSH_SECONDS = 1.0
"""Most seconds between writes of changed cookies to the persisted jar (also after a login)."""

COOKIES_PERSIST = True
"""Persist the cookie jar in SQLite under STATE_DIR/<SESSION_NAME>/session.db across runs."""

LOGIN_CHECK_URL = ""
"""URL fetched at start to check persisted cookies with the spider's is_logged_in (empty: skip)."""

LOGIN_URL = ""
"""The site's login page: a response redirected there counts as logged out (empty: unknown)."""

MAX_RELOGINS = 3
"""Most re-logins in a row that no page proved to work (a login loop) before LoginFailed."""

PERSIST_SESSION_COOKIES = True
"""Also persist cookies without an expiry (login cookies usually are such session cookies)."""

SESSION_NAME = ""
"""Name of the persisted login session; spiders naming one share it (empty: the spider name)."""

# -- HTTP cache (development) ----------------------------------------------------------------

HTTPCACHE_ENABLED = False
"""Store responses in STATE_DIR/<spider>/httpcache.db and replay them (--no-cache: off)."""

HTTPCACHE_EXPIRATION_SECS = 0.0
"""Age after which a cached response is fetched again (0 = never expires; 3600, 12h, 1d)."""

HTTPCACHE_IGNORE_HTTP_CODES: list[int] = []
"""Statuses never stored, besides 5xx, 408, 429 and RETRY_HTTP_CODES (always refetched)."""

# -- pipelines and feeds ----------------------------------------------------------------------

FEEDS: dict[str, dict[str, Any]] = {}
"""Output files: path -> options ("format": jsonl/json/csv, "overwrite": bool); -o/-O add one."""

FEED_EXPORT_FIELDS: list[str] = []
"""Fields written to feeds, in this order (CSV columns); empty = the first item's fields."""

PIPELINES: dict[str, int | bool] = {}
"""The project's item pipelines: dotted path -> order (lower runs first), or false to disable."""

PIPELINES_BASE: dict[str, int | bool] = {}
"""Built-in item pipelines, merged under PIPELINES (dotted path -> order, or false)."""

# -- logging and stats ------------------------------------------------------------------------

LOG_FORMAT = "auto"
"""Log renderer: "console", "json", or "auto" (console on a terminal, JSON otherwise)."""

LOG_LEVEL = "INFO"
"""Lowest level logged: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)."""

LOG_STATS_INTERVAL = 60.0
"""Seconds between periodic stats log lines during a crawl (0 = off)."""

PROGRESS = True
"""Show a live progress line on stderr when it is a terminal."""

STATS_FILE = ""
"""Path of a JSON file the final crawl stats are written to (empty = none)."""


DEFAULTS: dict[str, Any] = {name: value for name, value in globals().items() if name.isupper()}
"""Every setting and its default, in the order above; `Settings()` deep-copies it."""
