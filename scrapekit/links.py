"""LinkExtractor: the links of a page that a CrawlSpider rule follows, filtered as in Scrapy.

Part of stage 6 (response → callbacks). Links are read from the page's selectolax tree
(`response.tree`), resolved against the page's base URL and checked exactly as
`Response.follow()` checks them (`Response.link_url`): an empty, `mailto:`, `javascript:`,
malformed or over-long link is skipped and counted in `response.dropped_links`, never raised.
The filters then apply to the absolute URL: `allow`/`deny` regexes are searched in it,
`allow_domains`/`deny_domains` match a host or its subdomains, and links to files
(`deny_extensions`, IGNORED_EXTENSIONS by default) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from scrapekit._utils import compile_regex
from scrapekit.scheduler.fingerprint import canonicalize_url

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

    from scrapekit.response import Response

#: File extensions a LinkExtractor leaves out by default: documents, media and archives a
#: crawler fetching pages has no use for (compared case-insensitively, without the dot).
_IGNORED_GROUPS = (
    # archives and packages
    "7z 7zip apk bz2 cab deb dmg gz iso jar lz lzma msi rar rpm tar tar.gz tbz tgz txz xz zip",
    # images
    "ai avif bmp cdr dng drw dxf eps gif heic ico jpeg jpg mng pct png ps psd psp pst svg tif "
    "tiff webp",
    # audio
    "aac aif aiff au flac m4a mid midi mp3 oga ogg opus ra wav wma",
    # video
    "3gp asf avi flv m4v mkv mov mp4 mpeg mpg qt rm swf vob webm wmv",
    # office documents and e-books
    "csv doc docx epub mobi odg odp ods odt pdf pps ppt pptx rtf xls xlsx",
    # other binaries and page assets
    "bin css dll eot exe js otf ttf woff woff2",
)
IGNORED_EXTENSIONS: frozenset[str] = frozenset(
    extension for group in _IGNORED_GROUPS for extension in group.split()
)

Regexes: TypeAlias = "str | re.Pattern[str] | Iterable[str | re.Pattern[str]]"


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a page: its absolute URL, the text inside the tag, and rel="nofollow"."""

    url: str
    text: str = ""
    nofollow: bool = False


def _strings(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _compile(value: Regexes, what: str) -> tuple[re.Pattern[str], ...]:
    items = (value,) if isinstance(value, str | re.Pattern) else tuple(value)
    return tuple(compile_regex(item, f"LinkExtractor({what}=...)") for item in items)


def _check_css(selectors: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a bad restrict_css selector when the spider is defined, not on every page."""
    probe = LexborHTMLParser("")
    for selector in selectors:
        try:
            probe.css(selector)
        except SelectolaxError:
            raise ValueError(
                f"LinkExtractor(restrict_css={selector!r}): not a valid CSS selector; check "
                "its brackets, quotes and combinators"
            ) from None
    return selectors


def _host_in(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in domains)


class LinkExtractor:
    """Extracts a page's links, with Scrapy's LinkExtractor arguments and meaning.

    Args:
        allow: regexes; a link is kept only if one is found in its absolute URL (none: all).
        deny: regexes; a link one is found in is left out (beats `allow`).
        allow_domains: hosts whose links (and their subdomains') are kept (none: all).
        deny_domains: hosts whose links (and their subdomains') are left out.
        restrict_css: CSS selectors of the page regions to read links from (the matched
            elements themselves count, so "li.next a" works).
        tags: tags to read links from ("*": every tag); `attrs`: their attributes ("*": all).
        canonicalize: give each link's URL in canonical form (meant for comparing, not
            fetching: a server may answer the canonical URL differently).
        unique: give each URL once per page (compared in canonical form).
        deny_extensions: file extensions to leave out; None: IGNORED_EXTENSIONS, (): none.
    """

    def __init__(
        self,
        allow: Regexes = (),
        deny: Regexes = (),
        allow_domains: str | Iterable[str] = (),
        deny_domains: str | Iterable[str] = (),
        restrict_css: str | Iterable[str] = (),
        tags: str | Iterable[str] = ("a", "area"),
        attrs: str | Iterable[str] = ("href",),
        canonicalize: bool = False,
        unique: bool = True,
        deny_extensions: str | Iterable[str] | None = None,
    ) -> None:
        self.allow_res = _compile(allow, "allow")
        self.deny_res = _compile(deny, "deny")
        self.allow_domains = tuple(d.lower().strip(".") for d in _strings(allow_domains))
        self.deny_domains = tuple(d.lower().strip(".") for d in _strings(deny_domains))
        self.restrict_css = _check_css(_strings(restrict_css))
        self.tags = frozenset(t.lower() for t in _strings(tags))
        self.attrs = frozenset(a.lower() for a in _strings(attrs))
        self.canonicalize = canonicalize
        self.unique = unique
        extensions = IGNORED_EXTENSIONS if deny_extensions is None else _strings(deny_extensions)
        self.deny_extensions = tuple("." + e.lower().lstrip(".") for e in extensions)
        self._selector = "*" if "*" in self.tags else ", ".join(sorted(self.tags))

    def __repr__(self) -> str:
        allow = [r.pattern for r in self.allow_res]
        deny = [r.pattern for r in self.deny_res]
        return f"<LinkExtractor allow={allow} deny={deny}>"

    def extract_links(self, response: Response) -> list[Link]:
        """The page's links that pass the filters, in document order (none if not HTML)."""
        if not response.is_html:
            return []
        links: list[Link] = []
        seen: set[str] = set()
        for node in self._nodes(response):
            for name, value in node.attributes.items():
                if value is None or not ("*" in self.attrs or name.lower() in self.attrs):
                    continue
                url = response.link_url(value)
                if url is None or not self.matches(url):
                    continue
                if self.canonicalize:
                    url = canonicalize_url(url)
                if self.unique:
                    key = _unique_key(url)
                    if key in seen:
                        continue
                    seen.add(key)
                links.append(Link(url, node.text(deep=True), _nofollow(node)))
        return links

    def matches(self, url: str) -> bool:
        """Whether an absolute URL passes allow/deny, the domain filters and deny_extensions."""
        if self.allow_res and not any(r.search(url) for r in self.allow_res):
            return False
        if any(r.search(url) for r in self.deny_res):
            return False
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        if self.allow_domains and not _host_in(host, self.allow_domains):
            return False
        if self.deny_domains and _host_in(host, self.deny_domains):
            return False
        return not (self.deny_extensions and parts.path.lower().endswith(self.deny_extensions))

    def _nodes(self, response: Response) -> Iterable[LexborNode]:
        """The elements to read, in document order: within each restrict_css region (the
        region itself included) or the whole page."""
        tree = response.tree
        if not self.restrict_css:
            yield from tree.css(self._selector)
            return
        for selector in self.restrict_css:
            for region in tree.css(selector):
                # lexbor's node.css() matches the node itself too: a region that is a link
                # comes out once, from here.
                yield from region.css(self._selector)


def _unique_key(url: str) -> str:
    """What makes two links the same: the canonical URL, with the fragment (as Scrapy)."""
    fragment = url.partition("#")[2]
    return canonicalize_url(url) + ("#" + fragment if fragment else "")


def _nofollow(node: LexborNode) -> bool:
    rel = node.attributes.get("rel") or ""
    return "nofollow" in rel.lower().split()
