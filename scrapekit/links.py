"""LinkExtractor: the links of a page that a CrawlSpider rule follows, filtered as in Scrapy.

Part of stage 6 (response → callbacks). Links are read from the page's selectolax tree
(`response.tree`), resolved against the page's base URL and checked exactly as
`Response.follow()` checks them (`Response.link_url`): an empty, `mailto:`, `javascript:`,
malformed or over-long link is skipped and counted in `response.dropped_links`, never raised.
A `process_value` callable sees each value first (so it can turn a `javascript:` value into a
URL). The filters then apply to the absolute URL: `allow`/`deny` regexes are searched in it,
`allow_domains`/`deny_domains` match a host or its subdomains, and links to files
(`deny_extensions`, IGNORED_EXTENSIONS by default) are left out; `restrict_text` regexes are
searched in the link's text.

`restrict_xpaths` regions are found by `Response.xpath()` (parsel, so lxml is loaded only by
an extractor that has them) and their links read from lxml's elements; everything else reads
selectolax's nodes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from scrapekit._utils import compile_regex
from scrapekit.scheduler.fingerprint import canonicalize_url

if TYPE_CHECKING:
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
ProcessValue: TypeAlias = "Callable[[str], str | None]"

_XHTML = "{http://www.w3.org/1999/xhtml}"


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a page: its absolute URL, the text inside the tag, and rel="nofollow"."""

    url: str
    text: str = ""
    nofollow: bool = False


def _strings(value: str | Iterable[str] | None, what: str) -> tuple[str, ...]:
    """One str or an iterable of them as a tuple; None is none (as in Scrapy)."""
    return _items(value, what, str)


def _compile(value: Regexes | None, what: str) -> tuple[re.Pattern[str], ...]:
    items = _items(value, what, str | re.Pattern)
    return tuple(compile_regex(item, f"LinkExtractor({what}=...)") for item in items)


def _items(value: Any, what: str, kind: Any) -> tuple[Any, ...]:
    """`value` as a tuple of `kind`; anything else (bytes, a number, a compiled bytes regex)
    is a TypeError naming the argument, raised when the spider is defined."""
    if value is None:
        return ()
    if isinstance(value, str | re.Pattern | bytes | bytearray):
        items: tuple[Any, ...] = (value,)
    else:
        try:
            items = tuple(value)
        except TypeError:  # not iterable: a number, say
            items = (value,)
    for item in items:
        bad = not isinstance(item, kind) or (
            isinstance(item, re.Pattern) and not isinstance(item.pattern, str)
        )
        if bad:
            expected = "a str or a list of str" if kind is str else "a regex (str) or a list"
            raise TypeError(
                f"LinkExtractor({what}={value!r}): expected {expected}, "
                f"got {type(item).__name__} {item!r}"
            )
    return items


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


def _check_xpaths(expressions: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a bad restrict_xpaths expression when the spider is defined, not on every page.

    Evaluated on an empty page through parsel, as pages will be, so an unknown function,
    namespace prefix or variable is caught as well as a syntax error (one in a predicate no
    element of the empty page reaches is caught by `_nodes`, on a page), and so is an
    expression giving a value (`count(//a)`) rather than elements. parsel (and lxml) load
    here only for an extractor that has expressions.
    """
    if not expressions:
        return expressions
    import parsel

    probe = parsel.Selector(text="<html></html>")
    for expression in expressions:
        try:
            found = probe.xpath(expression)
        except ValueError as exc:
            raise _invalid_xpath(expression, exc) from None
        for selector in found:  # count(...), string(...), a comparison: a value on any page
            _check_region(selector.root, expression)
    return expressions


def _invalid_xpath(expression: str, exc: ValueError) -> ValueError:
    """The error for parsel's "XPath error: <lxml's reason> in <expression>"."""
    reason = str(exc).removeprefix("XPath error: ").removesuffix(f" in {expression}")
    return ValueError(
        f"LinkExtractor(restrict_xpaths={expression!r}): not a valid XPath expression "
        f"({reason}); check its brackets, quotes, function names and prefixes"
    )


def _check_region(region: Any, expression: str) -> None:
    """Refuse what an expression selected when it is not an element (text, an attribute,
    a number or a boolean): links are read from elements only."""
    if isinstance(region, str):
        what = f"text or an attribute ({region[:40]!r})"
    elif not hasattr(region, "iter"):
        what = f"a {type(region).__name__} ({region!r})"
    else:
        return
    raise ValueError(
        f"LinkExtractor(restrict_xpaths={expression!r}) selected {what}, not an element; "
        "select the elements that hold the links"
    )


class _Node(Protocol):
    """What extract_links reads of an element: a selectolax node, or an `_XPathNode`."""

    @property
    def attributes(self) -> Mapping[str, str | None]: ...

    def text(self, deep: bool = True) -> str: ...


class _XPathNode:
    """An lxml element of a restrict_xpaths region, read as a selectolax node is read."""

    __slots__ = ("_element",)

    def __init__(self, element: Any) -> None:
        self._element = element

    @property
    def attributes(self) -> Mapping[str, str | None]:
        return dict(self._element.attrib)

    def text(self, deep: bool = True) -> str:
        """The text inside the element (comments left out, as selectolax leaves them)."""
        return "".join(self._element.itertext())


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
        restrict_xpaths: XPath expressions of more regions to read links from (their
            elements count too); with restrict_css, the links of both.
        process_value: called with each attribute value (stripped, joined with the base URL
            as Scrapy does; a `javascript:` value comes as it is); returns the value to use,
            or None to leave the link out. What it raises is the page's callback error.
        restrict_text: regexes; a link is kept only if one is found in its text (none: all).
    """

    def __init__(
        self,
        allow: Regexes | None = (),
        deny: Regexes | None = (),
        allow_domains: str | Iterable[str] | None = (),
        deny_domains: str | Iterable[str] | None = (),
        restrict_css: str | Iterable[str] | None = (),
        tags: str | Iterable[str] = ("a", "area"),
        attrs: str | Iterable[str] = ("href",),
        canonicalize: bool = False,
        unique: bool = True,
        deny_extensions: str | Iterable[str] | None = None,
        restrict_xpaths: str | Iterable[str] | None = (),
        process_value: ProcessValue | None = None,
        restrict_text: Regexes | None = (),
    ) -> None:
        self.allow_res = _compile(allow, "allow")
        self.deny_res = _compile(deny, "deny")
        self.allow_domains = tuple(
            d.lower().strip(".") for d in _strings(allow_domains, "allow_domains")
        )
        self.deny_domains = tuple(
            d.lower().strip(".") for d in _strings(deny_domains, "deny_domains")
        )
        self.restrict_css = _check_css(_strings(restrict_css, "restrict_css"))
        self.restrict_xpaths = _check_xpaths(_strings(restrict_xpaths, "restrict_xpaths"))
        self.tags = frozenset(t.lower() for t in _strings(tags, "tags"))
        self.attrs = frozenset(a.lower() for a in _strings(attrs, "attrs"))
        for what, names in (("tags", self.tags), ("attrs", self.attrs)):
            if not names:
                raise ValueError(f"LinkExtractor({what}=...) is empty; name at least one")
        self.canonicalize = canonicalize
        self.unique = unique
        extensions = (
            IGNORED_EXTENSIONS
            if deny_extensions is None
            else _strings(deny_extensions, "deny_extensions")
        )
        self.deny_extensions = tuple("." + e.lower().lstrip(".") for e in extensions)
        if process_value is not None and not callable(process_value):
            raise TypeError(
                f"LinkExtractor(process_value={process_value!r}): expected a function taking "
                "the attribute value and returning the value to use or None"
            )
        self.process_value = process_value
        self.restrict_text = _compile(restrict_text, "restrict_text")
        self._selector = "*" if "*" in self.tags else ", ".join(sorted(self.tags))

    def __repr__(self) -> str:
        allow = [r.pattern for r in self.allow_res]
        deny = [r.pattern for r in self.deny_res]
        return f"<LinkExtractor allow={allow} deny={deny}>"

    def extract_links(self, response: Response) -> list[Link]:
        """The page's links that pass the filters, in document order (region by region with
        restrict_xpaths/restrict_css); none if the page is not HTML."""
        if not response.is_html:
            return []
        links: list[Link] = []
        seen: set[str] = set()
        process_value = self.process_value
        restrict_text = self.restrict_text
        for node in self._nodes(response):
            for name, value in node.attributes.items():
                if value is None or not ("*" in self.attrs or name.lower() in self.attrs):
                    continue
                if process_value is not None:
                    value = _processed(process_value, value, response)
                    if value is None:
                        continue
                url = response.link_url(value)
                if url is None or not self.matches(url):
                    continue
                text = None
                if restrict_text:
                    text = node.text(deep=True)
                    if not any(r.search(text) for r in restrict_text):
                        continue
                if self.canonicalize:
                    url = canonicalize_url(url)
                if self.unique:
                    key = _unique_key(url)
                    if key in seen:
                        continue
                    seen.add(key)
                if text is None:
                    text = node.text(deep=True)
                links.append(Link(url, text, _nofollow(node)))
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

    def _nodes(self, response: Response) -> Iterable[_Node]:
        """The elements to read: those of the whole page, or of each restrict_xpaths region
        and then each restrict_css region (the region itself included), in document order
        within a region (the regions' order is Scrapy's)."""
        tree = response.tree
        if not self.restrict_css and not self.restrict_xpaths:
            yield from tree.css(self._selector)
            return
        for expression in self.restrict_xpaths:
            try:
                regions = response.xpath(expression)
            except ValueError as exc:  # e.g. a $variable in a predicate the empty probe skipped
                raise _invalid_xpath(expression, exc) from None
            for region in regions:
                yield from self._xpath_nodes(region.root, expression)
        for selector in self.restrict_css:
            for region in tree.css(selector):
                # lexbor's node.css() matches the node itself too: a region that is a link
                # comes out once, from here.
                yield from region.css(self._selector)

    def _xpath_nodes(self, region: Any, expression: str) -> Iterable[_Node]:
        """The elements of one restrict_xpaths region (itself included) with a wanted tag."""
        _check_region(region, expression)
        every = "*" in self.tags
        for element in region.iter():
            tag = element.tag
            if not isinstance(tag, str):  # a comment or processing instruction
                continue
            if every or tag.removeprefix(_XHTML).lower() in self.tags:
                yield _XPathNode(element)


def _processed(process_value: ProcessValue, value: str, response: Response) -> str | None:
    """`process_value`'s value for an attribute value: given it as Scrapy gives it, stripped
    and joined with the base URL (a value of another scheme, `javascript:...`, stays as is).

    An empty or unjoinable value is passed on unchanged for `link_url` to count.
    """
    stripped = value.strip()
    if not stripped:
        return value
    try:
        joined = urljoin(response.base_url, stripped)
    except ValueError:  # e.g. "http://[broken": link_url counts it as malformed
        return value
    result: object = process_value(joined)  # checked: a user function may return anything
    if result is not None and not isinstance(result, str):
        name = getattr(process_value, "__qualname__", repr(process_value))
        raise TypeError(
            f"LinkExtractor(process_value={name}) returned {type(result).__name__} for "
            f"{joined!r}: return the value as a str, or None to leave the link out"
        )
    return result


def _unique_key(url: str) -> str:
    """What makes two links the same: the canonical URL, with the fragment (as Scrapy)."""
    fragment = url.partition("#")[2]
    return canonicalize_url(url) + ("#" + fragment if fragment else "")


def _nofollow(node: _Node) -> bool:
    rel = node.attributes.get("rel") or ""
    return "nofollow" in rel.lower().split()
