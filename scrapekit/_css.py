"""CSS selectors with parsel's ``::text`` and ``::attr(name)`` pseudo-elements, run on lexbor.

lexbor selects elements only; this module takes the pseudo-element off each comma part, lets
lexbor match the elements, and reads the text or attribute nodes the way parsel's XPath
translation does (cssselect + parsel's `csstranslator`):

- ``E::text``: the text nodes that are children of each E; ``E ::text`` and ``E *::text``: every
  text node inside each E (E's own included); ``::text`` and ``*::text``: every text node of the
  context.
- ``E::attr(x)``: each E's x; ``E ::attr(x)``: x of every element inside each E, E included;
  ``::attr(x)``: x of every element of the context.
- Results come in document order, once each, as XPath's node sets do: comma groups and nested
  matches are merged by position.

`::text` values are one text node each, split out of one lexbor `text()` call with NUL as the
separator: an HTML parser never leaves a NUL in a text node (it drops it or makes it U+FFFD).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

from selectolax.lexbor import LexborCSSSelector, LexborHTMLParser, LexborNode, SelectolaxError

_SEP = "\x00"  # never inside a parsed text node (see the module docstring)
_PSEUDO = re.compile(r"""(text|attr\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]+))\s*\))\s*""")
_COMBINATORS = (">", "+", "~")


class _Part(NamedTuple):
    """One comma-separated part of a selector, its pseudo-element taken off.

    `css` is the element selector, None for the context element itself (``::text``,
    ``*::text``). `deep` is parsel's descendant-or-self form (``p ::text``, ``p *::attr(x)``):
    every text node, or every element's attribute, in the matched subtrees.
    """

    css: str | None
    text: bool = False
    attr: str | None = None
    deep: bool = False


def _split(query: str) -> tuple[list[str], list[int]]:
    """The top-level comma parts of `query` and, for each, where its last top-level "::" is."""
    parts: list[str] = []
    pseudo: list[int] = []
    depth = 0
    quote = ""
    start = 0
    last = -1
    i = 0
    n = len(query)
    while i < n:
        c = query[i]
        if c == "\\":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and c == "," and not quote:
            parts.append(query[start:i])
            pseudo.append(last - start if last >= 0 else -1)
            start, last = i + 1, -1
        elif depth == 0 and c == ":" and query.startswith("::", i):
            last = i
            i += 2
            continue
        i += 1
    parts.append(query[start:])
    pseudo.append(last - start if last >= 0 else -1)
    return parts, pseudo


@lru_cache(maxsize=512)
def _parse(query: str) -> tuple[_Part, ...] | None:
    """The parts of a selector with pseudo-elements, or None when lexbor can take it as is."""
    parts, positions = _split(query)
    if all(p < 0 for p in positions):
        return None
    out = []
    for part, pos in zip(parts, positions, strict=True):
        if pos < 0:
            out.append(_Part(part.strip()))
            continue
        match = _PSEUDO.fullmatch(part, pos + 2)
        if match is None:
            raise ValueError(
                f"CSS selector {query!r}: only ::text and ::attr(name) are supported, "
                "at the end of a selector"
            )
        name = match.group(2) or match.group(3) or match.group(4)
        element = part[:pos].lstrip()
        css = element.rstrip()
        deep = False
        if css in ("", "*"):
            css_or_none: str | None = None
            deep = True
        elif css.endswith(_COMBINATORS):  # "p > ::text" is parsel's "p > *::text"
            css_or_none = css + " *"
        elif (
            css.endswith("*")
            and css[-2:-1].isspace()
            and not css[:-1].rstrip().endswith(_COMBINATORS)
        ):  # "p *::text" is "p ::text"
            css_or_none = css[:-1].rstrip()
            deep = True
        else:
            css_or_none = css
            deep = element != css  # "p ::text": a descendant combinator before the pseudo
        out.append(_Part(css_or_none, text=name is None, attr=name, deep=deep))
    return tuple(out)


# -- evaluation ----------------------------------------------------------------------------


def _texts(node: LexborNode, deep: bool) -> list[str]:
    joined: str = node.text(deep, _SEP)
    return joined.split(_SEP) if joined else []


class _Engine(threading.local):
    """One lexbor CSS engine per thread, shared by every document.

    selectolax creates one per parsed document, on its first `css()`: about 20 µs of lexbor
    set-up, a quarter of a typical page's parse-and-extract time. The engine keeps nothing of a
    document between calls (`find(query, node)` works on any tree), so one serves them all;
    per thread, as a selectolax parser is not thread-safe either.
    """

    def __init__(self) -> None:
        self.selector = LexborCSSSelector()  # type: ignore[no-untyped-call]


_ENGINE = _Engine()


def _engine_root(context: LexborHTMLParser | LexborNode) -> LexborNode | None:
    """The node the shared engine can search from, or None where only `context.css()` can: no
    document, a fragment (selectolax searches one from an internal wrapper), or the engine
    busy with a search further up the stack (a finalizer run by the garbage collector)."""
    node = context.root if isinstance(context, LexborHTMLParser) else context
    busy = _ENGINE.selector.current_node is not None  # type: ignore[attr-defined]  # public, unstubbed
    if node is None or node.parent is None or busy:
        return None
    return node


def find(context: LexborHTMLParser | LexborNode, css: str) -> list[LexborNode]:
    """lexbor's matches for an element selector in a tree or node, in document order.

    The same nodes as `context.css(css)`, faster: the shared engine (`_Engine`), and for a bare
    tag name on a whole document lexbor's tag lookup (`tags()`), which skips CSS parsing and
    matching and takes about half the time (``a``, ``h1``, ``title`` are common queries).
    """
    if type(context) is LexborHTMLParser and css.isalnum() and css.isascii() and css[0].isalpha():
        return context.tags(css)
    node = _engine_root(context)
    try:
        if node is None:
            return context.css(css)
        found: list[LexborNode] = _ENGINE.selector.find(css, node)
    except SelectolaxError:
        raise invalid_selector(css) from None
    return found


def find_first(context: LexborHTMLParser | LexborNode, css: str) -> LexborNode | None:
    """The first of `find()` (lexbor stops at it), or None."""
    node = _engine_root(context)
    try:
        if node is None:
            first: LexborNode | None = context.css_first(css)
            return first
        # find_first is the engine's public (cpdef) method; selectolax's stub leaves it out.
        found = _ENGINE.selector.find_first(css, node)  # type: ignore[attr-defined]
    except SelectolaxError:
        raise invalid_selector(css) from None
    return found[0] if found else None


def invalid_selector(query: str) -> ValueError:
    """The error for a selector lexbor cannot parse: selectolax says only "Can't parse CSS
    selector." and names neither the selector nor the fix."""
    return ValueError(
        f"CSS selector {query!r} is not valid CSS: check its brackets, quotes and "
        "combinators (XPath goes to .xpath())"
    )


_MISSING: Any = object()
# What a valueless attribute reads as: lxml (libxml2) gives HTML's boolean attributes their own
# name as value (<input disabled> -> "disabled") and any other valueless attribute "".
_BOOLEAN = frozenset(
    {
        "checked", "compact", "declare", "defer", "disabled", "ismap", "multiple", "nohref",
        "noresize", "noshade", "nowrap", "readonly", "selected",
    }
)  # fmt: skip


def valueless(name: str) -> str:
    """The value parsel reads for attribute `name` written without one."""
    return name if name in _BOOLEAN else ""


def _attrs(nodes: list[LexborNode], name: str) -> list[str]:
    """Each node's `name` attribute, skipping nodes without it; "" for a valueless one."""
    out = []
    for node in nodes:
        # node.attrs.get is lexbor's lookup; node.attributes would build a dict per node.
        value = node.attrs.get(name, _MISSING)
        if value is not _MISSING:
            out.append(valueless(name) if value is None else value)
    return out


def _tops(nodes: list[LexborNode]) -> list[LexborNode]:
    """`nodes` without those inside another one of them (the list is in document order)."""
    if len(nodes) < 2:
        return nodes
    ids = {n.mem_id for n in nodes}
    clean: set[int] = set()  # ancestors known to have no matched node above them
    out = []
    for node in nodes:
        path = []
        parent = node.parent
        nested = False
        while parent is not None:
            pid = parent.mem_id
            if pid in ids:
                nested = True
                break
            if pid in clean:
                break
            path.append(pid)
            parent = parent.parent
        if not nested:
            clean.update(path)
            out.append(node)
    return out


def _contexts(context: LexborHTMLParser | LexborNode) -> list[LexborNode]:
    if isinstance(context, LexborHTMLParser):
        return [] if context.root is None else [context.root]
    return [context]


def _evaluate(context: LexborHTMLParser | LexborNode, part: _Part) -> list[Any]:
    """One part's results, in document order: nodes, or strings for a pseudo-element."""
    css, text, attr, deep = part
    nodes = _contexts(context) if css is None else find(context, css)
    if text:
        if deep:
            return [t for node in _tops(nodes) for t in _texts(node, True)]
        if len(nodes) == 1:
            return _texts(nodes[0], False)
        if len(_tops(nodes)) < len(nodes):
            # A matched node inside another: their text nodes interleave in document order.
            return [value for _, value in _ordered(context, [part])]
        return [t for node in nodes for t in _texts(node, False)]
    if attr is not None:
        if deep:
            nodes = [el for node in _tops(nodes) for el in find(node, "*")]
        return _attrs(nodes, attr)
    return nodes


def _ordered(
    context: LexborHTMLParser | LexborNode, parts: Iterable[_Part]
) -> list[tuple[tuple[int, int, int], Any]]:
    """The union of `parts`' results in document order, as XPath's "|" gives them.

    Positions come from one walk over the context (the slow path: mixed comma groups and
    ``::text`` on nested matches only).
    """
    position: dict[int, int] = {}
    for top in _contexts(context):
        for node in top.traverse(include_text=True):
            position[node.mem_id] = len(position)
    found: dict[tuple[int, int, int], Any] = {}
    for part in parts:
        nodes = _contexts(context) if part.css is None else find(context, part.css)
        if part.text:
            for node in nodes:
                children = node.traverse(include_text=True) if part.deep else node.iter(True)
                for child in children:
                    if child.is_text_node:
                        found[(position[child.mem_id], 0, 0)] = child.text_content
        elif part.attr is not None:
            elements = [el for n in nodes for el in find(n, "*")] if part.deep else nodes
            for el in elements:
                attrs = list(el.attributes.items())
                for index, (name, value) in enumerate(attrs):
                    if name == part.attr:
                        found[(position[el.mem_id], 1, index)] = (
                            valueless(name) if value is None else value
                        )
        else:
            for node in nodes:
                found[(position[node.mem_id], 0, 0)] = node
    return sorted(found.items(), key=lambda kv: kv[0])


def query_css(context: LexborHTMLParser | LexborNode, query: str) -> list[Any]:
    """What a CSS selector selects in a tree or node: lexbor nodes, or strings for a
    pseudo-element. A selector lexbor cannot parse raises ValueError naming it."""
    try:
        parts = _parse(query) if "::" in query else None
        if parts is None:
            return find(context, query)
        if len(parts) == 1:
            return _evaluate(context, parts[0])
        first = parts[0]
        if all(
            p.css is not None and (p.text, p.attr, p.deep) == (first.text, first.attr, first.deep)
            for p in parts
        ):  # "a::attr(href), link::attr(href)": lexbor unites the element selectors in order
            css = ", ".join(p.css for p in parts if p.css)
            return _evaluate(context, _Part(css, first.text, first.attr, first.deep))
        return [value for _, value in _ordered(context, parts)]
    except SelectolaxError:
        raise invalid_selector(query) from None


@lru_cache(maxsize=512)
def selects_strings(query: str) -> bool:
    """Whether every comma part of `query` ends in ``::text`` or ``::attr()``: strings only."""
    parts = _parse(query) if "::" in query else None
    return parts is not None and all(p.text or p.attr is not None for p in parts)


def check_no_pseudo(query: str) -> None:
    """Refuse a pseudo-element where a node is returned, naming the call that takes it."""
    if "::" in query and _parse(query) is not None:
        raise ValueError(
            f"css_first({query!r}) returns a node; for ::text or ::attr() use css({query!r}).get()"
        )
