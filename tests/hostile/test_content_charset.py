"""Pages that declare no charset, or a hostile one, served over loopback and crawled for real.

The issue: a page with no declared charset that was not valid UTF-8 went to statistical
guessing, which read latin-1 "café", "Très" and "£" as "cafť", "Trčs" and "Ł". Browsers (WHATWG
Encoding) read such a page as windows-1252, and so must scrapekit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pytest_httpserver import HTTPServer
from werkzeug import Response as WsgiResponse

from scrapekit import Response, Spider, crawl_async

PAGES = {
    "/cafe": "<html><body><p>Un café, s'il vous plaît</p></body></html>",
    "/tres": "<html><body><p>Très bien, à bientôt</p></body></html>",
    "/pound": "<html><body><p>Prix : £12 ou 14 €</p></body></html>",
}


class Texts(Spider):
    """Fetches each URL and keeps the text of its <p>."""

    name = "texts"
    seen: ClassVar[dict[str, str]] = {}

    def __init__(self, urls: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = urls

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        node = response.css_first("p")
        Texts.seen[response.url.rsplit("/", 1)[1]] = node.text() if node is not None else ""
        yield {"url": response.url, "encoding": response.encoding}


async def test_undeclared_latin1_pages_read_as_windows_1252(httpserver: HTTPServer) -> None:
    """No charset anywhere and not UTF-8: the text is windows-1252, as a browser shows it."""
    Texts.seen.clear()
    for path, text in PAGES.items():
        # text/html with no charset parameter, and no <meta>: nothing declared.
        httpserver.expect_request(path).respond_with_response(
            WsgiResponse(text.encode("cp1252"), headers={"Content-Type": "text/html"})
        )
    stats = await crawl_async(
        Texts, {"LOG_LEVEL": "CRITICAL"}, urls=[httpserver.url_for(p) for p in PAGES]
    )
    assert stats["items"] == 3
    assert Texts.seen == {
        "cafe": "Un café, s'il vous plaît",
        "tres": "Très bien, à bientôt",
        "pound": "Prix : £12 ou 14 €",
    }


async def test_hostile_charset_labels_never_fail_the_callback(httpserver: HTTPServer) -> None:
    """charset=rot13 / undefined / base64 are not charsets to a browser: ignored, no error."""
    Texts.seen.clear()
    for label in ("rot13", "undefined", "base64"):
        httpserver.expect_request(f"/{label}").respond_with_response(
            WsgiResponse(
                "<p>Très</p>".encode("cp1252"),
                headers={"Content-Type": f"text/html; charset={label}"},
            )
        )
    stats = await crawl_async(
        Texts,
        {"LOG_LEVEL": "CRITICAL"},
        urls=[httpserver.url_for(f"/{label}") for label in ("rot13", "undefined", "base64")],
    )
    assert stats["errors"] == {}
    assert Texts.seen == {"rot13": "Très", "undefined": "Très", "base64": "Très"}
