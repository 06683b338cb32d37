"""scrapekit: session crawlers — polite, logged-in, scheduled web scraping that keeps its data.

Only the names in `__all__` are the stable public API; every other module may change.
"""

from scrapekit._version import __version__
from scrapekit.engine import crawl, crawl_async
from scrapekit.exceptions import (
    CloseSpider,
    ConfigError,
    CrawlRunning,
    DropItem,
    FetchError,
    HttpStatusError,
    LoginFailed,
    NotConfigured,
    ProxyFailed,
    ScrapekitError,
    SessionError,
    SettingsError,
    SpiderNotFound,
)
from scrapekit.items import current_item_id
from scrapekit.links import Link, LinkExtractor
from scrapekit.pipelines import Pipeline
from scrapekit.request import Request
from scrapekit.response import Response
from scrapekit.selector import Selector, SelectorList
from scrapekit.session import Session
from scrapekit.settings import Settings
from scrapekit.spider import Spider
from scrapekit.spiders import CrawlSpider, Rule, SitemapSpider

__all__ = [
    "CloseSpider",
    "ConfigError",
    "CrawlRunning",
    "CrawlSpider",
    "DropItem",
    "FetchError",
    "HttpStatusError",
    "Link",
    "LinkExtractor",
    "LoginFailed",
    "NotConfigured",
    "Pipeline",
    "ProxyFailed",
    "Request",
    "Response",
    "Rule",
    "ScrapekitError",
    "Selector",
    "SelectorList",
    "Session",
    "SessionError",
    "Settings",
    "SettingsError",
    "SitemapSpider",
    "Spider",
    "SpiderNotFound",
    "__version__",
    "crawl",
    "crawl_async",
    "current_item_id",
]

# Public classes report themselves as scrapekit.X, not scrapekit.module.X.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = "scrapekit"
del _name, _obj
