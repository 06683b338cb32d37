"""LinkExtractor on parsed pages: Scrapy's arguments, and Response.follow's checks and counts."""

from __future__ import annotations

import re

import pytest

from scrapekit import Link, LinkExtractor, Response
from scrapekit.links import IGNORED_EXTENSIONS


def page(body: str, url: str = "http://shop.example/dir/page.html") -> Response:
    return Response(url, headers={"content-type": "text/html"}, body=body.encode())


def urls(extractor: LinkExtractor, response: Response) -> list[str]:
    return [link.url for link in extractor.extract_links(response)]


def test_links_are_absolute_in_document_order_with_text_and_nofollow() -> None:
    """Relative links join the page URL; text is the tag's text; rel=nofollow is flagged."""
    response = page(
        '<a href="b.html">B <i>b</i></a><map><area href="/c" rel="external NoFollow"></map>'
        '<a href="http://other.example/d">D</a>'
    )
    assert LinkExtractor().extract_links(response) == [
        Link("http://shop.example/dir/b.html", "B b", False),
        Link("http://shop.example/c", "", True),
        Link("http://other.example/d", "D", False),
    ]


def test_base_href_is_honoured() -> None:
    """Links resolve against <base href>, as Response.follow resolves them."""
    response = page('<base href="http://cdn.example/root/"><a href="x">x</a>')
    assert urls(LinkExtractor(), response) == ["http://cdn.example/root/x"]


def test_unfollowable_links_are_skipped_and_counted_as_follow_counts_them() -> None:
    """mailto:, javascript:, empty and malformed hrefs are skipped and counted by reason."""
    response = page(
        '<a href="mailto:a@b">m</a><a href="javascript:void(0)">j</a><a href=" ">e</a>'
        '<a href="http://[broken">b</a><a>no href</a><a href="/ok">ok</a>'
    )
    assert urls(LinkExtractor(), response) == ["http://shop.example/ok"]
    assert response.dropped_links == {
        "link scheme mailto": 1,
        "link scheme javascript": 1,
        "link empty": 1,
        "link malformed": 1,
    }


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, ["/a/1", "/a/2?x=1", "/b/3", "http://sub.other.example/b/4"], id="all"),
        pytest.param({"allow": r"/a/"}, ["/a/1", "/a/2?x=1"], id="allow"),
        pytest.param(
            {"allow": [r"/a/1", re.compile(r"/b/")]},
            ["/a/1", "/b/3", "http://sub.other.example/b/4"],
            id="allow-several",
        ),
        pytest.param({"allow": r"/a/", "deny": r"x=1"}, ["/a/1"], id="deny-beats-allow"),
        pytest.param({"allow": r"^http://shop\.example/b/"}, ["/b/3"], id="absolute-url"),
        pytest.param(
            {"allow_domains": "other.example"},
            ["http://sub.other.example/b/4"],
            id="allow-domain-and-subdomains",
        ),
        pytest.param(
            {"deny_domains": ["other.example"]}, ["/a/1", "/a/2?x=1", "/b/3"], id="deny-domains"
        ),
        pytest.param({"restrict_css": "div.main"}, ["/a/1", "/a/2?x=1"], id="restrict-css"),
        pytest.param({"restrict_css": "div.main a.first"}, ["/a/1"], id="restrict-to-the-link"),
    ],
)
def test_filters_follow_scrapy(kwargs: dict[str, object], expected: list[str]) -> None:
    """allow/deny search the absolute URL, domains include subdomains, restrict_css picks
    regions (the matched element itself included)."""
    response = page(
        '<div class="main"><a class="first" href="/a/1">1</a><a href="/a/2?x=1">2</a></div>'
        '<div class="side"><a href="/b/3">3</a><a href="http://sub.other.example/b/4">4</a></div>'
    )
    got = urls(LinkExtractor(**kwargs), response)  # type: ignore[arg-type]
    host = "http://shop.example"
    assert got == [url if url.startswith("http") else host + url for url in expected]


def test_file_links_are_left_out_by_default() -> None:
    """Links to images, archives and documents are dropped unless deny_extensions says so."""
    response = page(
        '<a href="/a.PDF">pdf</a><a href="/b.jpg?s=1">jpg</a><a href="/c.tar.gz">tgz</a>'
        '<a href="/d.html">html</a>'
    )
    assert urls(LinkExtractor(), response) == ["http://shop.example/d.html"]
    assert urls(LinkExtractor(deny_extensions=["html"]), response) == [
        "http://shop.example/a.PDF",
        "http://shop.example/b.jpg?s=1",
        "http://shop.example/c.tar.gz",
    ]
    assert {"pdf", "jpg", "zip", "mp4", "docx"} <= IGNORED_EXTENSIONS


def test_unique_and_canonicalize() -> None:
    """unique drops repeats of a URL (compared canonically, fragments kept apart);
    canonicalize gives canonical URLs."""
    response = page(
        '<a href="/p?b=2&a=1">x</a><a href="/p?a=1&b=2">y</a><a href="/p?a=1&b=2#top">z</a>'
    )
    assert urls(LinkExtractor(), response) == [
        "http://shop.example/p?b=2&a=1",
        "http://shop.example/p?a=1&b=2#top",
    ]
    assert len(urls(LinkExtractor(unique=False), response)) == 3
    assert urls(LinkExtractor(canonicalize=True), response) == ["http://shop.example/p?a=1&b=2"]


def test_tags_and_attrs_choose_where_links_are_read() -> None:
    """tags/attrs widen extraction, e.g. to <img src> or every attribute."""
    response = page('<img src="/i.html" data-big="/big.html"><a href="/a.html">a</a>')
    assert urls(LinkExtractor(tags="img", attrs="src"), response) == ["http://shop.example/i.html"]
    assert urls(LinkExtractor(tags=["img"], attrs="*"), response) == [
        "http://shop.example/i.html",
        "http://shop.example/big.html",
    ]


def test_a_page_that_is_not_html_has_no_links() -> None:
    """A JSON or image response gives no links instead of raising."""
    response = Response(
        "http://shop.example/x", headers={"content-type": "application/json"}, body=b"{}"
    )
    assert LinkExtractor().extract_links(response) == []


def test_a_restrict_css_region_that_is_a_link_gives_it_once() -> None:
    """lexbor's node.css() matches the node itself: with unique=False a region that is the
    link must still come out once, or it becomes two requests."""
    response = page('<ul><li class="next"><a href="/p2">next</a></li></ul><a href="/x">x</a>')
    extractor = LinkExtractor(restrict_css="li.next a", unique=False)
    assert urls(extractor, response) == ["http://shop.example/p2"]
