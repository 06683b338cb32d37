"""An element Selector is also the selectolax node it wraps: the node API, forwarded.

`Response.css()` returned selectolax nodes before it returned Selectors, so code written
against those nodes (`.text()`, `.attributes`, `.html`, `.css_first()`, `.parent`, `.iter()`
...) must keep working on a Selector. `NodeAPI`, the base of selector.py's `Selector`, forwards
every node method or property the Selector does not define itself to its `root`. The hot part
goes through C-level getters (`attrgetter`), so an element Selector costs almost nothing over
the node; a string Selector (``::text``, ``::attr()``) has no node, and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from selectolax.lexbor import LexborNode

from scrapekit._css import check_no_pseudo


class NodeAPI:
    """The selectolax node API of `root` for an element; for a string, an AttributeError that
    says why."""

    __slots__ = ()

    root: LexborNode | str

    def _node(self, name: str) -> LexborNode:
        root = self.root
        if isinstance(root, str):
            raise AttributeError(
                f"{name!r}: this Selector holds a string from ::text or ::attr(), not an "
                "element; use .get()"
            )
        return root

    # The hot part of the node API is forwarded by C-level getters (`attrgetter`): an element
    # Selector costs almost nothing over the node. On a string Selector they raise
    # AttributeError, and Python then calls __getattr__ below, which says why.
    if TYPE_CHECKING:

        def text(
            self,
            deep: bool = True,
            separator: str = "",
            strip: bool = False,
            skip_empty: bool = False,
        ) -> str:
            """selectolax's `text()` of the element."""

        def iter(self, include_text: bool = False, skip_empty: bool = False) -> Iterator[Any]:
            """selectolax's `iter()`: the element's children."""

        def css_matches(self, selector: str) -> bool:
            """Whether the element matches a CSS selector (selectolax)."""

        @property
        def attributes(self) -> dict[str, str | None]:
            """selectolax's attributes of the element (None for a valueless one)."""

        @property
        def attrs(self) -> Any:
            """selectolax's editable attribute mapping."""

        @property
        def html(self) -> str | None:
            """The element's outer HTML (selectolax's serialization)."""

        @property
        def tag(self) -> str | None:
            """The element's tag name."""

        @property
        def parent(self) -> LexborNode | None:
            """The parent selectolax node."""

        @property
        def id(self) -> str | None:
            """The element's id attribute."""

    else:
        text = property(attrgetter("root.text"))
        iter = property(attrgetter("root.iter"))
        css_matches = property(attrgetter("root.css_matches"))
        attributes = property(attrgetter("root.attributes"))
        attrs = property(attrgetter("root.attrs"))
        html = property(attrgetter("root.html"))
        tag = property(attrgetter("root.tag"))
        parent = property(attrgetter("root.parent"))
        id = property(attrgetter("root.id"))

    def css_first(self, query: str, default: Any = None, strict: bool = False) -> Any:
        """selectolax's `css_first()`: the first matching node, or `default`."""
        check_no_pseudo(query)
        return self._node("css_first").css_first(query, default, strict)

    def __getattr__(self, name: str) -> Any:
        # Called for names not defined above (the rest of the selectolax node API), and when a
        # forwarded getter above raised AttributeError (a string Selector).
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._node(name), name)
