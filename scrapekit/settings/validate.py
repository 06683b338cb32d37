"""Settings validation: the key → validator table, and the checks that use it.

Each key's validator (see `validators.py`) checks and converts its value; `check()` and
`check_text()` turn a rejection into a one-line `SettingsError` naming the key and the source.

To add a setting: a documented default in `defaults.py`, a row in `VALIDATORS` (same group) and
a row in docs/settings.md. tests/settings/test_settings_reference.py keeps the three in step.
"""

from __future__ import annotations

from typing import Any

from scrapekit.exceptions import SettingsError
from scrapekit.scheduler.frontier import BACKENDS as FRONTIER_BACKENDS
from scrapekit.settings.validators import (
    Bool,
    Choice,
    ComponentMap,
    Duration,
    FeedMap,
    Float,
    Int,
    IntList,
    Invalid,
    ProxyUrl,
    Str,
    StrList,
    StrMap,
    Validator,
    shown,
    suggest,
)

__all__ = ["VALIDATORS", "Invalid", "Validator", "check", "check_text", "shown", "unknown_setting"]


VALIDATORS: dict[str, Validator] = {
    # -- project
    "SPIDER_MODULES": StrList(),
    "STATE_DIR": Str(path=True),
    # -- engine and workers
    "CLOSESPIDER_ERRORCOUNT": Int(min=0),
    "CLOSESPIDER_ITEMCOUNT": Int(min=0),
    "CLOSESPIDER_PAGECOUNT": Int(min=0),
    "CLOSESPIDER_TIMEOUT": Duration(),
    "CLOSE_TIMEOUT": Float(min=0, unit="seconds"),
    "CONCURRENCY": Int(min=1),
    "DEPTH_LIMIT": Int(min=0),
    "FRESH": Bool(),
    "FRONTIER": Choice(*FRONTIER_BACKENDS),
    "MAX_ERRORS": Int(min=0),
    "RECRAWL_AFTER": Duration(),
    "RUN_LOCK_WAIT": Bool(),
    "START_READAHEAD": Int(min=0),
    "URL_LENGTH_LIMIT": Int(min=0),
    # -- politeness: rate limits, retries, robots.txt
    "AUTOTHROTTLE": Bool(),
    "AUTOTHROTTLE_STEP": Float(gt=0, unit="requests per second"),
    "BURST": Int(min=1),
    "CONCURRENCY_PER_HOST": Int(min=0),
    "DOWNLOAD_DELAY": Float(min=0, unit="seconds"),
    "RANDOMIZE_DELAY": Bool(),
    "RATE": Float(min=0, unit="requests per second"),
    "RATE_LIMIT_KEY": Choice("host", "domain"),
    "RATE_MAX": Float(gt=0, unit="requests per second"),
    "RATE_MIN": Float(gt=0, unit="requests per second"),
    "RETRY_AFTER_MAX": Float(min=0, unit="seconds"),
    "RETRY_BACKOFF_BASE": Float(min=0, unit="seconds"),
    "RETRY_BACKOFF_MAX": Float(min=0, unit="seconds"),
    "RETRY_ENABLED": Bool(),
    "RETRY_HTTP_CODES": IntList(min=100, max=599, unit="HTTP status codes"),
    "RETRY_TIMES": Int(min=0),
    "ROBOTSTXT_OBEY": Bool(),
    "ROBOTSTXT_RETRY_SECONDS": Float(min=0, unit="seconds"),
    "ROBOTSTXT_TIMEOUT": Float(gt=0, unit="seconds"),
    "ROBOTSTXT_USER_AGENT": Str(),
    # -- session and HTTP
    "DEFAULT_REQUEST_HEADERS": StrMap(),
    "DOWNLOAD_TIMEOUT": Float(gt=0, unit="seconds"),
    "HTTP2": Bool(),
    "HTTPERROR_ALLOWED_CODES": IntList(min=100, max=599, unit="HTTP status codes"),
    "MAX_RESPONSE_BYTES": Int(min=0, unit="bytes"),
    "PROXY": ProxyUrl(),
    "REDIRECT_ENABLED": Bool(),
    "REDIRECT_MAX_TIMES": Int(min=0),
    "USER_AGENT": Str(),
    "WARN_RESPONSE_BYTES": Int(min=0, unit="bytes"),
    # -- login session: cookies, headers, login
    "COOKIES_ENABLED": Bool(),
    "COOKIES_FLUSH_SECONDS": Float(gt=0, unit="seconds"),
    "COOKIES_PERSIST": Bool(),
    "LOGIN_CHECK_URL": Str(),
    "LOGIN_URL": Str(),
    "MAX_RELOGINS": Int(min=0),
    "PERSIST_SESSION_COOKIES": Bool(),
    "SESSION_NAME": Str(),
    # -- HTTP cache (development)
    "HTTPCACHE_ENABLED": Bool(),
    "HTTPCACHE_EXPIRATION_SECS": Duration(),
    "HTTPCACHE_IGNORE_HTTP_CODES": IntList(min=100, max=599, unit="HTTP status codes"),
    # -- pipelines and feeds
    "FEEDS": FeedMap(),
    "FEED_EXPORT_FIELDS": StrList(),
    "PIPELINES": ComponentMap(),
    "PIPELINES_BASE": ComponentMap(),
    # -- logging and stats
    "LOG_FORMAT": Choice("auto", "console", "json"),
    "LOG_LEVEL": Choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", ignore_case=True),
    "LOG_STATS_INTERVAL": Float(min=0, unit="seconds"),
    "PROGRESS": Bool(),
    "STATS_FILE": Str(path=True),
}
"""Every setting's validator: exactly the keys of `defaults.DEFAULTS`."""


def unknown_setting(name: str, source: str | None, *, prefix: str = "") -> SettingsError:
    """Return the error for a setting name that does not exist, with the closest real one."""
    known = [prefix + key for key in VALIDATORS]
    hint = suggest(prefix + name.removeprefix(prefix).upper(), known)
    return SettingsError(name, f"unknown setting{hint or ' (see docs/settings.md)'}", source)


def check(key: str, value: object, source: str | None) -> Any:
    """Return `value` converted for `key`; raise `SettingsError` naming the key and `source`."""
    validator = VALIDATORS.get(key)
    if validator is None:
        raise unknown_setting(key, source)
    try:
        return validator.convert(value)
    except Invalid as error:
        raise SettingsError(key, str(error), source) from None


def check_text(key: str, text: str, source: str, *, prefix: str = "") -> Any:
    """Return the value `text` stands for; errors name `prefix + key` (e.g. SCRAPEKIT_RATE)."""
    validator = VALIDATORS.get(key)
    if validator is None:
        raise unknown_setting(prefix + key, source, prefix=prefix)
    try:
        return validator.parse_text(text)
    except Invalid as error:
        raise SettingsError(prefix + key, str(error), source) from None
