"""The HTTP cache for development (HTTPCACHE_ENABLED): the policy and its backends."""

from scrapekit.httpcache.base import CachedEntry, HttpCache
from scrapekit.httpcache.policy import HttpCacheStatistics, ResponseCache
from scrapekit.httpcache.sqlite import SqliteHttpCache

__all__ = ["CachedEntry", "HttpCache", "HttpCacheStatistics", "ResponseCache", "SqliteHttpCache"]
