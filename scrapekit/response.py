"""Response: what a callback receives — body, decoded text, CSS selection and link following.

Text is decoded once, on first use, as browsers decode it (WHATWG Encoding): a byte-order
mark, else the Content-Type charset, else a ``<meta>`` declaration, else UTF-8 if the body is
valid UTF-8, else windows-1252; labels are read with the WHATWG table, and undecodable bytes
become U+FFFD instead of raising. The HTML tree (selectolax's lexbor backend) is built once,
on first `css()`; `css()` returns Scrapy-style selectors (scrapekit/selector.py). `xpath()`
goes through parsel, imported and parsed once, on the first `xpath()` call only.
Links that cannot be followed (``mailto:``, ``javascript:``, malformed) never raise from
`follow()`/`follow_all()`: they are skipped and counted in `dropped_links` by reason. So are
links longer than URL_LENGTH_LIMIT, as the scheduler's `UrlLengthFilter` would drop them: within
a crawl, `follow()` asks that filter first, before urllib and Request parse (and cache) a huge
URL.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urljoin

import httpx2
import structlog
from selectolax.lexbor import LexborHTMLParser, LexborNode

from scrapekit._css import check_no_pseudo, find_first, query_css
from scrapekit._encodings import codec_for_label, decode
from scrapekit._types import CallbackRef
from scrapekit.exceptions import InvalidURL, NotHTMLError
from scrapekit.request import Request, check_url, shorten_url
from scrapekit.scheduler.filters import UrlLengthFilter
from scrapekit.selector import Selector, SelectorList, select

if TYPE_CHECKING:
    from collections.abc import Mapping

    import parsel

#: What follow() takes: an href, a selectolax node, or a Selector (ours or parsel's) holding an
#: <a>/<link>/<img> element or an ::attr(href) / @href string.
Link: TypeAlias = "str | LexborNode | Selector | parsel.Selector"

log = structlog.get_logger(__name__)

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE
)
_BASE_TAG = re.compile(rb"<base\s", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_TYPES = frozenset(
    {"text/xml", "application/xml", "application/rss+xml", "application/atom+xml"}
)
_NOT_MARKUP = (
    "image/",
    "audio/",
    "video/",
    "font/",
    "application/pdf",
    "application/zip",
    "application/octet-stream",
    "application/json",
    "application/gzip",
)


def detect_encoding(body: bytes, content_type: str | None) -> str:
    """The codec to decode `body` with: BOM, header, <meta>, valid UTF-8, else windows-1252.

    This is the browsers' order (a BOM beats the header), with their labels; a page that
    declares nothing and is not UTF-8 is windows-1252 as in a browser, never a statistical
    guess (which read latin-1 "café" as "cafť").
    """
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return codec
    if content_type and "charset=" in content_type.lower():
        label = content_type.lower().split("charset=", 1)[1].split(";", 1)[0]
        if (declared := codec_for_label(label)) is not None:
            return declared
    if (match := _META_CHARSET.search(body, 0, 4096)) is not None and (
        declared := codec_for_label(match.group(1).decode("ascii"))
    ) is not None:
        # HTML's prescan: a <meta> read by an ASCII-compatible decoder cannot mean UTF-16.
        if declared.startswith("utf-16"):
            return "utf-8"
        return "cp1252" if declared == "x-user-defined" else declared
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


class Response:
    """An HTTP response handed to a callback, bound to the Request that produced it."""

    __slots__ = (
        "_base_url",
        "_parsel",
        "_text",
        "_tree",
        "body",
        "cached",
        "dropped_links",
        "elapsed",
        "headers",
        "http_version",
        "redirect_urls",
        "request",
        "status",
        "url",
    )

    def __init__(
        self,
        url: str,
        *,
        status: int = 200,
        headers: httpx2.Headers | Mapping[str, str] | None = None,
        body: bytes = b"",
        request: Request | None = None,
        elapsed: float = 0.0,
        http_version: str = "HTTP/1.1",
        redirect_urls: tuple[str, ...] = (),
        cached: bool = False,
    ) -> None:
        self.url = url
        self.status = status
        self.headers = headers if isinstance(headers, httpx2.Headers) else httpx2.Headers(headers)
        self.body = body
        self.request = request if request is not None else Request(url)
        self.elapsed = elapsed
        self.http_version = http_version
        #: The URLs redirected from, in order, when the body came from a redirect target.
        self.redirect_urls = redirect_urls
        #: Whether the response was replayed from the HTTP cache (HTTPCACHE_ENABLED), not fetched.
        self.cached = cached
        #: Links follow()/follow_all() skipped, by reason ("link scheme mailto", "link malformed").
        self.dropped_links: Counter[str] = Counter()
        self._text: str | None = None
        self._tree: LexborHTMLParser | None = None
        self._base_url: str | None = None
        self._parsel: parsel.Selector | None = None

    def __repr__(self) -> str:
        return f"<{self.status} {self.url}>"

    # -- content ---------------------------------------------------------------------------

    @property
    def meta(self) -> dict[str, Any]:
        """The request's meta dict, shared with it."""
        return self.request.meta

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        value: str = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()

    @property
    def is_html(self) -> bool:
        """Whether the body is markup that `css()` can select from (HTML, XML or unlabelled)."""
        ctype = self.content_type
        return not ctype.startswith(_NOT_MARKUP) and not ctype.endswith("+json")

    @property
    def encoding(self) -> str:
        """The codec the body is decoded with (see `detect_encoding`)."""
        return detect_encoding(self.body, self.headers.get("content-type"))

    @property
    def text(self) -> str:
        """The body decoded to str; bytes that do not decode become U+FFFD."""
        if self._text is None:
            self._text = decode(self.body, self.encoding)
        return self._text

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.text)

    # -- selection -------------------------------------------------------------------------

    @property
    def tree(self) -> LexborHTMLParser:
        """The parsed HTML document (built once)."""
        if self._tree is None:
            if not self.is_html:
                raise NotHTMLError(self.url, self.content_type)
            self._tree = LexborHTMLParser(self.text)
        return self._tree

    def css(self, selector: str) -> SelectorList:
        """Everything matching a CSS selector, Scrapy-style (``::text``, ``::attr(name)``).

        A `SelectorList` (a list) of `Selector`s; an element Selector also acts as the
        selectolax node it wraps (`.text()`, `.attributes` ...).
        """
        return select(self._tree if self._tree is not None else self.tree, selector)

    def css_first(self, selector: str) -> LexborNode | None:
        """The first selectolax node matching a CSS selector (no pseudo-elements), or None."""
        if "::" in selector:
            check_no_pseudo(selector)
        return find_first(self._tree if self._tree is not None else self.tree, selector)

    def xpath(self, query: str, namespaces: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        """parsel's `xpath()` on the page: a `parsel.SelectorList` (`.get()`, `.getall()` ...).

        The page is parsed by lxml once, on the first call (XML for XML content types); `kwargs`
        are XPath variables (``response.xpath("//a[@id=$id]", id="next")``).
        """
        if self._parsel is None:
            if not self.is_html:
                raise NotHTMLError(self.url, self.content_type)
            import parsel

            kind = "xml" if self.content_type in _XML_TYPES else "html"
            self._parsel = parsel.Selector(text=self.text, type=kind, base_url=self.url)
        return self._parsel.xpath(query, namespaces=namespaces, **kwargs)

    # -- links -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The URL relative links resolve against: the page's <base href> if any, else its URL.

        A <base href> that cannot be joined, is not an http(s) URL, or names a host browsers
        refuse ("//%zz/"), is ignored (as browsers ignore it), rather than making every link of
        the page malformed.
        """
        if self._base_url is None:
            self._base_url = self.url
            if self.is_html and _BASE_TAG.search(self.body, 0, 8192):
                node = self.tree.css_first("base[href]")
                href = node.attributes.get("href") if node is not None else None
                if href and (href := href.strip()):
                    try:
                        self._base_url = check_url(urljoin(self.url, href))
                    except (InvalidURL, ValueError):  # "http://[broken", "javascript:", ...
                        log.debug("base href ignored", url=self.url, href=shorten_url(href))
        return self._base_url

    def urljoin(self, url: str) -> str:
        """Resolve a (possibly relative) URL against this page."""
        return urljoin(self.base_url, url.strip())

    def follow(self, url: Link, callback: CallbackRef = None, **kwargs: Any) -> Request | None:
        """A Request for a link, or None to skip it.

        `url` is an href string, an <a>/<link>/<img> node or element Selector, or a Selector
        holding a URL string (``css("a::attr(href)")``, ``xpath("//a/@href")``).

        Unfollowable links (no href, non-http(s) schemes, malformed URLs, URLs longer than
        URL_LENGTH_LIMIT in a crawl) give None and are counted in `dropped_links`; they never
        raise, so one odd link cannot lose a page.
        """
        href = url if isinstance(url, str) else _link_href(url)
        target = self.link_url(href)
        if target is None:
            return None
        try:
            return Request(target, callback=callback, **kwargs)
        except (InvalidURL, ValueError):  # a bad kwarg value (params...) on a good link
            self.dropped_links["link malformed"] += 1
            return None

    def link_url(self, href: str | None) -> str | None:
        """The absolute http(s) URL a link's href leads to, or None to skip it.

        The checks `follow()` makes (and LinkExtractor reuses): empty hrefs, non-http(s)
        schemes, malformed URLs and URLs longer than URL_LENGTH_LIMIT in a crawl give None and
        are counted in `dropped_links`; nothing raises.
        """
        if href is None or not (href := href.strip()):
            self.dropped_links["link empty"] += 1
            return None
        if (match := _SCHEME.match(href)) is not None:
            scheme = match.group(1).lower()
            if scheme not in ("http", "https"):
                self.dropped_links[f"link scheme {scheme}"] += 1
                return None
        length = UrlLengthFilter.current()
        # Measured before urljoin too: urllib caches what it splits, and a Request checks
        # (and caches) its URL, so an oversized link must go before either sees it.
        if length is not None and not length.allows_url(href):
            self._too_long(href, length.limit)
            return None
        try:
            url = urljoin(self.base_url, href)
        except ValueError:  # e.g. "http://[broken"
            self.dropped_links["link malformed"] += 1
            return None
        if length is not None and not length.allows_url(url):
            self._too_long(url, length.limit)
            return None
        try:
            return check_url(url)
        except (InvalidURL, ValueError):
            self.dropped_links["link malformed"] += 1
            return None

    def _too_long(self, url: str, limit: int) -> None:
        self.dropped_links["url too long"] += 1
        log.debug("link dropped", url=shorten_url(url), page=self.url, reason="url too long",
                  limit=limit)  # fmt: skip

    def follow_all(
        self,
        urls: Iterable[Link] | None = None,
        callback: CallbackRef = None,
        *,
        css: str | None = None,
        **kwargs: Any,
    ) -> list[Request]:
        """Requests for every followable link in `urls` and/or what `css` selects (elements or
        ``::attr(href)`` strings)."""
        targets: list[Link] = list(urls) if urls is not None else []
        if css is not None:
            # What the selector selects as it is (nodes, ::attr strings): no Selector per link.
            targets.extend(query_css(self.tree, css))
        out = []
        for target in targets:
            request = self.follow(target, callback, **kwargs)
            if request is not None:
                out.append(request)
        return out


def _link_href(link: Any) -> str | None:
    """The URL in a node or Selector: a string root as is, else the href (or src) attribute."""
    root = getattr(link, "root", None)  # a Selector, ours or parsel's; a node has no .root
    if isinstance(root, str):
        return root
    attrs = link.attrib if root is not None else link.attributes
    href: str | None = attrs.get("href")
    if href is None:
        href = attrs.get("src")
    return href
