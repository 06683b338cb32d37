"""Scrapy-style selectors on selectolax: `Selector`, `SelectorList` and the CSS they accept.

`Response.css()` returns a `SelectorList` (a list) of `Selector`s with parsel's conveniences:
`::text` and `::attr(name)` at the end of a selector (comma groups included), `.get()`,
`.getall()`, `.re()`, `.re_first()`, `.attrib` and chained `.css()`. Results equal parsel's,
with the differences listed in docs/selectors.md (HTML serialization, HTML5 vs libxml2 parsing).

selectolax stays the engine: a selector without a pseudo-element goes straight to lexbor, and
an element `Selector` forwards every selectolax node method it does not define itself
(`.text()`, `.attributes`, `.html`, `.css_first()`, `.parent`, `.iter()` ...), so code
written against the nodes `css()` used to return keeps working; that forwarding is its base,
scrapekit/_node_api.py. Pseudo-elements are read by scrapekit/_css.py: lexbor cannot select
text or attribute nodes.

A Selector is made only when an item of the list is seen (`_Unwrapped`): `css(...).get()`,
`.getall()` and `.re()` read the nodes and strings lexbor gave, at selectolax's own cost.

XPath goes through parsel, imported on first use only (`Selector.xpath()`,
`Response.xpath()`), so a crawl that only uses CSS never loads lxml.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from html.entities import name2codepoint
from operator import attrgetter
from re import Pattern
from typing import TYPE_CHECKING, Any, Self, SupportsIndex, overload

from selectolax.lexbor import LexborHTMLParser, LexborNode

from scrapekit._css import find, query_css, selects_strings, valueless
from scrapekit._node_api import NodeAPI
from scrapekit._utils import compile_regex

if TYPE_CHECKING:
    import parsel

__all__ = ["Selector", "SelectorList", "select"]


def select(context: LexborHTMLParser | LexborNode, query: str) -> SelectorList:
    """The `SelectorList` for a CSS selector (with ``::text``/``::attr()``) on a tree or node."""
    if "::" not in query:
        nodes: list[Any] = find(context, query)
        return _Unwrapped(nodes)
    if selects_strings(query):
        return _Strings(query_css(context, query))
    return _Unwrapped(query_css(context, query))


_new = object.__new__
_ROOT = attrgetter("root")


def _html(node: LexborNode) -> str:
    return node.html or ""


def _attrib(node: LexborNode) -> dict[str, str]:
    return {k: valueless(k) if v is None else v for k, v in node.attributes.items()}


# -- regular expressions (parsel's rules) ---------------------------------------------------

_ENTITY = re.compile(
    r"&((?P<named>[a-z0-9]+)|#(?P<dec>[0-9]+)|#x(?P<hex>[a-f0-9]+))(?P<semicolon>;?)",
    re.IGNORECASE,
)


def _entity(match: re.Match[str]) -> str:
    named, dec, hexa, semicolon = match.group("named", "dec", "hex", "semicolon")
    if named is not None:
        if named.lower() in ("lt", "amp"):  # kept, so the result still reads as markup
            return match.group(0)
        number = name2codepoint.get(named) or name2codepoint.get(named.lower())
    else:
        number = int(dec, 10) if dec is not None else int(hexa, 16)
    if number is not None:
        if number == 0 or 0xD800 <= number <= 0xDFFF:
            return "\ufffd"
        if 0x80 <= number <= 0x9F:  # browsers read these as windows-1252 bytes
            return bytes((number,)).decode("cp1252", errors="replace")
        if number <= 0x10FFFF:
            return chr(number)
    return "" if semicolon else match.group(0)


def _regex(regex: str | Pattern[str], text: str, replace_entities: bool) -> list[str]:
    """parsel's `.re()` on one string: the "extract" group, else every group, else the match."""
    pattern = compile_regex(regex, "re()") if isinstance(regex, str) else regex
    if "extract" in pattern.groupindex:
        match = pattern.search(text)
        value = match.group("extract") if match is not None else None
        strings = [value] if value is not None else []
    else:
        strings = []
        for found in pattern.findall(text):
            if isinstance(found, tuple):
                strings.extend(found)
            else:
                strings.append(found)
    if replace_entities:
        return [_ENTITY.sub(_entity, s) if "&" in s else s for s in strings]
    return strings


# -- the public classes ---------------------------------------------------------------------


class Selector(NodeAPI):
    """One selected element (wrapping a selectolax node) or one string (``::text``, ``::attr``).

    An element Selector is also the selectolax node it wraps: every node method or property it
    does not define is forwarded (`.text()`, `.attributes`, `.html`, `.css_first()` ...).
    `Selector(text=html)` parses a page of your own.
    """

    __slots__ = ("root",)

    root: LexborNode | str
    """The selectolax node, or the string a pseudo-element selected."""

    def __init__(self, text: str | None = None, *, root: LexborNode | str | None = None) -> None:
        if (text is None) == (root is None):
            raise TypeError("Selector() takes text= (an HTML page) or root= (a node), not both")
        if text is not None:
            tree = LexborHTMLParser(text)
            if tree.root is None:
                raise ValueError("Selector(text=...): the text parsed to no document")
            root = tree.root
        self.root = root  # type: ignore[assignment]  # one of the two is set (checked above)

    def __repr__(self) -> str:
        data = self.get()
        return f"<Selector data={data[:40] + '...' if len(data) > 40 else data!r}>"

    def __bool__(self) -> bool:
        """True for an element; for a string, whether it is non-empty (as parsel)."""
        root = self.root
        return bool(root) if isinstance(root, str) else True

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Selector):
            other = other.root
        elif not isinstance(other, LexborNode):
            return NotImplemented
        return bool(self.root == other)

    def __hash__(self) -> int:
        return hash(self.root)

    # -- parsel's API ------------------------------------------------------------------------

    def css(self, query: str) -> SelectorList:
        """Elements (or strings, with ``::text``/``::attr()``) matching `query` in this element.

        As in parsel the element itself can match (descendant-or-self). A string Selector has
        nothing inside: the result is empty.
        """
        root = self.root
        if isinstance(root, str):
            return SelectorList()
        return select(root, query)

    def xpath(self, query: str, namespaces: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """parsel's `xpath()` run on this element's own HTML (parsed by lxml on each call).

        Axes that leave the element (``..``, ``following-sibling::``) find nothing here: use
        `Response.xpath()` on the whole page for those. Returns a `parsel.SelectorList`.
        """
        import parsel

        root = self.root
        if isinstance(root, str):
            return parsel.SelectorList([])
        fragment = parsel.Selector(text=root.html)
        found = fragment.xpath("(//*[name()=$tag])[1]", tag=root.tag)
        if not found:
            return parsel.SelectorList([])
        return found[0].xpath(query, namespaces=namespaces, **kwargs)

    def get(self) -> str:
        """The string, or the element's outer HTML (selectolax's serialization)."""
        root = self.root
        if isinstance(root, str):
            return root
        return root.html or ""

    def getall(self) -> list[str]:
        """`[self.get()]`, as parsel."""
        return [self.get()]

    extract = get

    def re(self, regex: str | Pattern[str], replace_entities: bool = True) -> list[str]:
        """Every match of `regex` in `get()`: the "extract" group, else all groups, else the
        whole match. Entities other than ``&lt;`` and ``&amp;`` are replaced (parsel's rule)."""
        return _regex(regex, self.get(), replace_entities)

    @overload
    def re_first(
        self, regex: str | Pattern[str], default: None = None, replace_entities: bool = True
    ) -> str | None: ...

    @overload
    def re_first(
        self, regex: str | Pattern[str], default: str, replace_entities: bool = True
    ) -> str: ...

    def re_first(
        self,
        regex: str | Pattern[str],
        default: str | None = None,
        replace_entities: bool = True,
    ) -> str | None:
        """The first of `re()`, or `default` when nothing matches."""
        found = self.re(regex, replace_entities)
        return found[0] if found else default

    @property
    def attrib(self) -> dict[str, str]:
        """The element's attributes as parsel reads them; {} for a string.

        A valueless attribute reads as lxml reads it: a boolean one (``disabled``) as its own
        name, any other as "" (`.attributes`, selectolax's, gives None for both).
        """
        root = self.root
        if isinstance(root, str):
            return {}
        return _attrib(root)


class SelectorList(list[Selector]):
    """A list of `Selector`s with parsel's list methods (`get`, `getall`, `re`, `css` ...)."""

    __slots__ = ()

    @overload
    def __getitem__(self, index: SupportsIndex) -> Selector: ...

    @overload
    def __getitem__(self, index: slice) -> SelectorList: ...

    def __getitem__(self, index: SupportsIndex | slice) -> Selector | SelectorList:
        if isinstance(index, slice):
            return SelectorList(list.__getitem__(self, index))
        return list.__getitem__(self, index)

    def __iadd__(self, other: Iterable[Selector]) -> Self:  # type: ignore[override, misc]
        # Defined so that `selectors += response.css(...)` extends this list in place: without
        # it Python would first try the right operand's __radd__ (see _Unwrapped).
        self.extend(other)
        return self

    def _roots(self) -> Iterator[LexborNode | str]:
        """What the Selectors hold, without going through the Python-level `__iter__`."""
        return map(_ROOT, list.__iter__(self))

    def _wrapped(self) -> SelectorList:
        """This list, every item a Selector (already so: see `_Unwrapped`)."""
        return self

    def css(self, query: str) -> SelectorList:
        """`css()` of every Selector, one flat list."""
        found: list[Any] = []
        for root in self._roots():
            if not isinstance(root, str):
                found.extend(query_css(root, query))
        return _Unwrapped(found)

    def xpath(self, query: str, namespaces: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """`xpath()` of every Selector, one flat `parsel.SelectorList`."""
        import parsel

        out: parsel.SelectorList[parsel.Selector] = parsel.SelectorList()
        for sel in self:
            out.extend(sel.xpath(query, namespaces=namespaces, **kwargs))
        return out

    @overload
    def get(self, default: None = None) -> str | None: ...

    @overload
    def get(self, default: str) -> str: ...

    def get(self, default: str | None = None) -> str | None:
        """The first Selector's `get()`, or `default` when the list is empty."""
        for root in self._roots():
            return root if isinstance(root, str) else _html(root)
        return default

    extract_first = get

    def getall(self) -> list[str]:
        """Every Selector's `get()`."""
        return [root if isinstance(root, str) else _html(root) for root in self._roots()]

    extract = getall

    def re(self, regex: str | Pattern[str], replace_entities: bool = True) -> list[str]:
        """Every Selector's `re()`, one flat list ([] when nothing matches)."""
        pattern = compile_regex(regex, "re()") if isinstance(regex, str) else regex
        return [s for text in self.getall() for s in _regex(pattern, text, replace_entities)]

    @overload
    def re_first(
        self, regex: str | Pattern[str], default: None = None, replace_entities: bool = True
    ) -> str | None: ...

    @overload
    def re_first(
        self, regex: str | Pattern[str], default: str, replace_entities: bool = True
    ) -> str: ...

    def re_first(
        self,
        regex: str | Pattern[str],
        default: str | None = None,
        replace_entities: bool = True,
    ) -> str | None:
        """The first match over the Selectors in order, or `default`."""
        pattern = compile_regex(regex, "re()") if isinstance(regex, str) else regex
        for text in self.getall():
            found = _regex(pattern, text, replace_entities)
            if found:
                return found[0]
        return default

    @property
    def attrib(self) -> dict[str, str]:
        """The first Selector's attributes, or {} when the list is empty."""
        for root in self._roots():
            return {} if isinstance(root, str) else _attrib(root)
        return {}


class _Unwrapped(SelectorList):
    """What a query found, as a `SelectorList` that makes its `Selector`s only when needed.

    A Selector is one Python object per selected node or string, and the common uses never
    need one: `.get()`, `.getall()`, `.re()` and a chained `.css()` read the selectolax nodes
    and strings this list holds. Anything that can see an item (indexing, iteration, `in`,
    comparison, repr, copying, adding items ...) first wraps every item, in place, and turns
    the list into a plain `SelectorList` (`__class__` assignment), which it stays from then on.
    """

    __slots__ = ()

    def _wrapped(self) -> SelectorList:
        roots: list[Any] = list.copy(self)
        list.clear(self)
        self.__class__ = SelectorList  # type: ignore[assignment]
        append = self.append  # list's own, now
        for root in roots:
            sel = _new(Selector)
            sel.root = root
            append(sel)
        return self

    def __iter__(self) -> Iterator[Selector]:
        return list.__iter__(self._wrapped())

    @overload
    def __getitem__(self, index: SupportsIndex) -> Selector: ...

    @overload
    def __getitem__(self, index: slice) -> SelectorList: ...

    def __getitem__(self, index: SupportsIndex | slice) -> Selector | SelectorList:
        return self._wrapped()[index]

    def __radd__(self, other: list[Any]) -> list[Any]:
        # `[...] + response.css(...)`: list's own concatenation would copy the raw items.
        return other + self._wrapped()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Unwrapped):
            other._wrapped()
        return list.__eq__(self._wrapped(), other)

    def __ne__(self, other: object) -> bool:
        if isinstance(other, _Unwrapped):
            other._wrapped()
        return list.__ne__(self._wrapped(), other)

    def _roots(self) -> Iterator[LexborNode | str]:
        return list.__iter__(self)  # type: ignore[arg-type]  # the items are the roots


class _Strings(_Unwrapped):
    """An `_Unwrapped` list of strings only (every part of the query ends in a pseudo-element)."""

    __slots__ = ()

    def get(self, default: str | None = None) -> str | None:  # type: ignore[override]
        """The first string, or `default` when the list is empty."""
        strings: list[Any] = self
        return list.__getitem__(strings, 0) if self else default

    extract_first = get  # type: ignore[assignment]

    def getall(self) -> list[str]:
        """Every string (a plain list)."""
        strings: list[Any] = self
        return list.copy(strings)

    extract = getall


def _wrapping(name: str) -> Callable[..., Any]:
    method = getattr(SelectorList, name)

    def wrapping(self: _Unwrapped, *args: Any, **kwargs: Any) -> Any:
        return method(self._wrapped(), *args, **kwargs)

    wrapping.__name__ = wrapping.__qualname__ = name
    return wrapping


# Every list method that reads or adds items, besides those defined above. The rest (len,
# bool, del, clear, reverse) work the same on unwrapped items.
for _name in (
    "__setitem__", "__reversed__", "__contains__", "__lt__",
    "__le__", "__gt__", "__ge__", "__add__", "__iadd__", "__mul__", "__rmul__", "__imul__",
    "__repr__", "__reduce_ex__", "append", "extend", "insert", "pop", "remove",
    "index", "count", "copy", "sort",
):  # fmt: skip
    setattr(_Unwrapped, _name, _wrapping(_name))
