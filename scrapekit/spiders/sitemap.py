"""SitemapSpider: crawl the pages a site's sitemaps list, as in Scrapy.

Stage 1 of the flow (what the user writes). `sitemap_urls` may name sitemaps, sitemap indexes
(followed where `sitemap_follow` matches) or robots.txt files (their `Sitemap:` lines are
followed, read with protego). Each page URL goes to the callback of the first `sitemap_rules`
regex found in it. A `.xml.gz` sitemap is inflated within MAX_RESPONSE_BYTES (or the request's
`meta["max_response_bytes"]`), the limit every body has: a gzip bomb stops there with one
warning. A malformed sitemap gives one warning naming its URL and the crawl goes on. Requests
name their callbacks by spider method, so the durable SQLite frontier can store them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from protego import Protego

from scrapekit._types import CallbackOutput, Output
from scrapekit._utils import compile_regex
from scrapekit.exceptions import ConfigError, DecodingError, ResponseTooLarge
from scrapekit.request import Request
from scrapekit.session.body import gunzip
from scrapekit.spider import Spider
from scrapekit.spiders.sitemapxml import MalformedSitemap, is_gzip, parse_sitemap

if TYPE_CHECKING:
    from scrapekit.response import Response

#: The meta key holding the index of the sitemap rule whose callback is not a spider method.
SITEMAP_RULE_META_KEY = "sitemap_rule"

Pattern = str | re.Pattern[str]


class SitemapSpider(Spider):
    """A Spider whose pages come from sitemaps.

    `sitemap_rules` is a list of (regex, callback) pairs: a callback is a method name or a
    callable; a URL no regex is found in is not requested. `sitemap_follow` lists regexes of
    the sitemaps an index names that are followed (default: all). With
    `sitemap_alternate_links`, the <xhtml:link rel="alternate"> URLs of each entry are
    requested too. Override `sitemap_filter(entries)` to choose entries by their fields
    (`lastmod`, ...).
    """

    #: Sitemaps, sitemap indexes or robots.txt URLs to start from.
    sitemap_urls: ClassVar[Sequence[str]] = ()
    #: (regex, callback) pairs; the first regex found in a page URL picks its callback.
    sitemap_rules: ClassVar[Sequence[tuple[Pattern, str | Callable[..., CallbackOutput]]]] = [
        ("", "parse")
    ]
    #: Regexes of the sitemap URLs in an index to follow (default: every one).
    sitemap_follow: ClassVar[Sequence[Pattern]] = [""]
    #: Whether the alternate-language links of each entry are requested too.
    sitemap_alternate_links: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sitemap_rules = [
            (self._regex(pattern, f"sitemap_rules[{index}]"), self._bind(index, callback))
            for index, (pattern, callback) in enumerate(self.sitemap_rules)
        ]
        self._follow = [
            self._regex(pattern, f"sitemap_follow[{index}]")
            for index, pattern in enumerate(self.sitemap_follow)
        ]

    async def start(self) -> AsyncIterator[Request]:
        """One request per `sitemap_urls` entry."""
        for url in self.sitemap_urls:
            yield Request(url, callback=self._parse_sitemap)

    def sitemap_filter(self, entries: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        """The sitemap entries to use (each a dict: "loc", "lastmod", ..., "alternate");
        override it to select them by their fields. By default, all."""
        return entries

    def _parse_sitemap(self, response: Response) -> Iterator[Output]:
        """A robots.txt, a sitemap index or a sitemap: the requests it leads to."""
        if response.url.split("?", 1)[0].endswith("/robots.txt"):
            for url in Protego.parse(response.text).sitemaps:
                yield response.follow(url, callback=self._parse_sitemap)
            return
        body = self._sitemap_body(response)
        if body is None:
            return
        try:
            sitemap = parse_sitemap(body)
        except MalformedSitemap as exc:
            self.logger.warning("sitemap ignored", url=response.url, reason=str(exc))
            return
        if sitemap.errors:
            self.logger.warning(
                "sitemap malformed", url=response.url, reason=sitemap.errors,
                entries_read=len(sitemap.entries),
            )  # fmt: skip
        for url in self._locations(sitemap.entries):
            if sitemap.type == "sitemapindex":
                if any(pattern.search(url) for pattern in self._follow):
                    yield response.follow(url, callback=self._parse_sitemap)
                continue
            for index, (pattern, callback) in enumerate(self._sitemap_rules):
                if pattern.search(url):
                    if callback is None:  # a callable that is not a spider method
                        yield response.follow(
                            url,
                            callback=self._sitemap_rule_callback,
                            meta={SITEMAP_RULE_META_KEY: index},
                        )
                    else:
                        yield response.follow(url, callback=callback)
                    break

    def _sitemap_rule_callback(self, response: Response, **kwargs: Any) -> CallbackOutput:
        """A page whose sitemap rule's callback is a plain function: call it."""
        index = response.meta.get(SITEMAP_RULE_META_KEY)
        if not isinstance(index, int) or not 0 <= index < len(self.sitemap_rules):
            raise LookupError(
                f"{type(self).__name__}: request meta {SITEMAP_RULE_META_KEY!r}={index!r} names "
                "no sitemap rule (were sitemap_rules changed before a resume?)"
            )
        function = self.sitemap_rules[index][1]
        assert callable(function)
        return function(response, **kwargs)

    def _locations(self, entries: Iterable[dict[str, Any]]) -> Iterator[str]:
        for entry in self.sitemap_filter(entries):
            yield entry["loc"]
            if self.sitemap_alternate_links:
                yield from entry.get("alternate", ())

    def _sitemap_body(self, response: Response) -> bytes | None:
        """The sitemap's XML: the body, or the gzip file inside it inflated within the limit."""
        body = response.body
        if not is_gzip(body):
            return body
        limit = response.meta.get("max_response_bytes")
        if limit is None:
            limit = self.settings.getint("MAX_RESPONSE_BYTES") if hasattr(self, "settings") else 0
        try:
            return gunzip(body, int(limit or 0), response.url)
        except (ResponseTooLarge, DecodingError) as exc:  # a gzip bomb, a corrupt gzip file
            self.logger.warning("sitemap ignored", url=response.url, reason=str(exc))
            return None

    def _regex(self, pattern: Pattern, what: str) -> re.Pattern[str]:
        """A rule's regex compiled; a bad one is a configuration error naming the rule."""
        try:
            return compile_regex(pattern, f"spider {self.name!r}: {what}")
        except re.error as exc:
            raise ConfigError(str(exc)) from None

    def _bind(self, index: int, callback: str | Callable[..., CallbackOutput]) -> Any:
        """A rule's callback as what a Request stores: the method, or None for a function
        (called through `_sitemap_rule_callback`, found by the rule's index)."""
        if isinstance(callback, str):
            method = getattr(self, callback, None)
            if not callable(method):
                raise ConfigError(
                    f"spider {self.name!r}: sitemap_rules[{index}] callback {callback!r} is not "
                    f"a method of {type(self).__name__}; define it or pass a callable"
                )
            return method
        name = getattr(callback, "__name__", None)
        if isinstance(name, str) and getattr(type(self), name, None) is callback:
            return getattr(self, name)  # `parse_item` named in the class body
        if getattr(callback, "__self__", None) is self:
            return callback
        return None
