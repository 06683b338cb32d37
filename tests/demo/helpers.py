"""HTML lookups the demo site's tests share."""

from __future__ import annotations

import httpx2
from selectolax.lexbor import LexborHTMLParser, LexborNode


def parse(response: httpx2.Response) -> LexborHTMLParser:
    return LexborHTMLParser(response.text)


def first(page: LexborHTMLParser | LexborNode, selector: str) -> LexborNode:
    node = page.css_first(selector)
    assert node is not None, selector
    return node


def css_text(page: LexborHTMLParser | LexborNode, selector: str) -> str:
    return first(page, selector).text(strip=True)
