"""LinkExtractor on parsed pages: Scrapy's arguments, and Response.follow's checks and counts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

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


# -- process_value, restrict_xpaths, restrict_text --------------------------------------------

JS_PAGE = (
    "<a href=\"javascript:goToPage('../other/page.html'); return false\">JS</a>"
    '<a href="/about.html">About us</a>'
)


def go_to_page(value: str) -> str | None:
    """Scrapy's documented example: the URL inside javascript:goToPage('...'), else None."""
    match = re.search(r"javascript:goToPage\('(.*?)'", value)
    return match.group(1) if match else None


def test_process_value_rewrites_a_javascript_link_and_drops_the_rest() -> None:
    """The value is given before link_url's checks (so javascript: reaches it); what it
    returns is joined with the page's URL; None leaves the link out, uncounted."""
    response = page(JS_PAGE)
    assert LinkExtractor(process_value=go_to_page).extract_links(response) == [
        Link("http://shop.example/other/page.html", "JS")
    ]
    assert response.dropped_links == {}
    # Without it the javascript: link is skipped and counted, as before.
    plain = page(JS_PAGE)
    assert urls(LinkExtractor(), plain) == ["http://shop.example/about.html"]
    assert plain.dropped_links == {"link scheme javascript": 1}


def test_process_value_gets_values_as_scrapy_gives_them() -> None:
    """Stripped and joined with the base URL (<base href> included); a value of another
    scheme as it is; empty values never reach it and are counted as before."""
    seen: list[str] = []

    def record(value: str) -> str:
        seen.append(value)
        return value

    response = page(
        '<base href="http://cdn.example/root/"><a href="  x.html ">x</a>'
        '<a href="mailto:a@b">m</a><a href="">e</a>'
    )
    assert urls(LinkExtractor(process_value=record), response) == ["http://cdn.example/root/x.html"]
    assert seen == ["http://cdn.example/root/x.html", "mailto:a@b"]
    assert response.dropped_links == {"link scheme mailto": 1, "link empty": 1}


def test_process_value_output_goes_through_the_filters() -> None:
    """allow/deny, unique and restrict_text apply to what process_value returned."""
    response = page('<a href="/a?s=1">a</a><a href="/a?s=2">a again</a><a href="/b">b</a>')
    extractor = LinkExtractor(process_value=lambda v: v.split("?")[0], deny=r"/b$")
    assert urls(extractor, response) == ["http://shop.example/a"]


def test_process_value_returning_something_else_is_an_error_naming_it() -> None:
    """A return value that is neither str nor None raises TypeError naming the function."""
    response = page('<a href="/a">a</a>')
    with pytest.raises(TypeError, match=r"process_value=.*<lambda>\) returned bytes for "):
        LinkExtractor(process_value=lambda v: v.encode()).extract_links(response)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=r"LinkExtractor\(process_value='x'\): expected a"):
        LinkExtractor(process_value="x")  # type: ignore[arg-type]


def test_process_value_errors_propagate() -> None:
    """What process_value raises is not swallowed: it surfaces from extract_links."""

    def broken(value: str) -> str:
        raise KeyError(value)

    with pytest.raises(KeyError, match=re.escape("http://shop.example/a")):
        LinkExtractor(process_value=broken).extract_links(page('<a href="/a">a</a>'))


REGIONS = (
    '<div id="nav"><a href="/n/1">n1</a><p><a href="/n/2" rel="nofollow">n <b>2</b></a></p></div>'
    '<div class="main"><a href="/m/1">m1</a></div>'
    '<!-- <a href="/comment">c</a> --><a href="/outside">out</a>'
)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"restrict_xpaths": "//div[@id='nav']"}, ["/n/1", "/n/2"], id="xpath"),
        pytest.param(
            {"restrict_xpaths": ["//div[@class='main']", "//div[@id='nav']//p"]},
            ["/m/1", "/n/2"],
            id="several-in-their-order",
        ),
        pytest.param({"restrict_xpaths": "//p/a"}, ["/n/2"], id="the-region-is-the-link"),
        pytest.param(
            {"restrict_xpaths": "//div[@id='nav']", "restrict_css": "div.main"},
            ["/n/1", "/n/2", "/m/1"],
            id="with-restrict-css",
        ),
        pytest.param(
            {"restrict_xpaths": "//div[@id='nav']", "restrict_css": "#nav p"},
            ["/n/1", "/n/2"],
            id="overlapping-regions-once",
        ),
        pytest.param({"restrict_xpaths": "//table"}, [], id="no-region"),
        pytest.param(
            {"restrict_xpaths": "//div[re:test(@class, '^ma')]"}, ["/m/1"], id="exslt-regex"
        ),
    ],
)
def test_restrict_xpaths_reads_links_from_the_regions(
    kwargs: dict[str, object], expected: list[str]
) -> None:
    """restrict_xpaths picks regions as restrict_css does (the region itself included, links
    in comments not); with both, links of either, XPath regions first as in Scrapy."""
    got = urls(LinkExtractor(**kwargs), page(REGIONS))  # type: ignore[arg-type]
    assert got == ["http://shop.example" + path for path in expected]


def test_restrict_xpaths_links_have_text_nofollow_and_the_other_filters() -> None:
    """An XPath region's links carry the same text and nofollow flag as selectolax's, and
    allow, tags, attrs and unique=False apply to them."""
    response = page(REGIONS)
    assert LinkExtractor(restrict_xpaths="//div[@id='nav']").extract_links(response) == (
        LinkExtractor(restrict_css="#nav").extract_links(response)
    )
    assert LinkExtractor(restrict_xpaths="//p").extract_links(response) == [
        Link("http://shop.example/n/2", "n 2", True)
    ]
    assert urls(LinkExtractor(restrict_xpaths="//div", allow=r"/m/"), response) == [
        "http://shop.example/m/1"
    ]
    images = page('<div><img src="/i.html"><A HREF="/a">a</A></div><img src="/out.html">')
    assert urls(LinkExtractor(restrict_xpaths="//div", tags="img", attrs="src"), images) == [
        "http://shop.example/i.html"
    ]
    assert urls(LinkExtractor(restrict_xpaths="//div", tags="*", attrs="*"), images) == [
        "http://shop.example/i.html",
        "http://shop.example/a",
    ]
    twice = page('<div><a href="/x">1</a><a href="/x">2</a></div>')
    assert len(urls(LinkExtractor(restrict_xpaths="//div", unique=False), twice)) == 2


def test_restrict_xpaths_shares_the_pages_parse_with_response_xpath() -> None:
    """The regions come from Response.xpath: the page is parsed by lxml once."""
    response = page(REGIONS)
    LinkExtractor(restrict_xpaths="//div").extract_links(response)
    parsed = response._parsel
    assert parsed is not None
    assert response.xpath("//p/a/@href").get() == "/n/2"
    assert response._parsel is parsed


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("//div[", "Invalid expression"),
        ("//div[@id='x'", "Invalid predicate"),
        ("div//", "Invalid expression"),
        ("//x:div", "Undefined namespace prefix"),
    ],
)
def test_a_bad_restrict_xpaths_is_refused_when_defined(expression: str, reason: str) -> None:
    """A bad expression is a ValueError naming it, raised by the constructor (not per page)."""
    named = f"LinkExtractor(restrict_xpaths={expression!r}): not a valid XPath expression"
    with pytest.raises(ValueError, match="^" + re.escape(f"{named} ({reason}); check its")):
        LinkExtractor(restrict_xpaths=["//div", expression])


def test_restrict_xpaths_selecting_strings_is_an_error_naming_it() -> None:
    """An expression that selects attributes or text has no links to read: said, not ignored."""
    extractor = LinkExtractor(restrict_xpaths="//a/@href")
    with pytest.raises(ValueError, match=r"restrict_xpaths='//a/@href'\) selected text or an"):
        extractor.extract_links(page('<a href="/a">a</a>'))


@pytest.mark.parametrize(
    ("expression", "what"),
    [
        ("count(//a)", "a float (0.0)"),
        ("//a = 'one'", "a bool (False)"),
        ("string(//a)", "text or an attribute ('')"),
    ],
)
def test_restrict_xpaths_selecting_a_value_is_refused_when_defined(
    expression: str, what: str
) -> None:
    """An expression that gives a number, a boolean or a string on every page (not a node
    set) is refused by the constructor, naming what it selected."""
    named = f"LinkExtractor(restrict_xpaths={expression!r}) selected {what}, not an element"
    with pytest.raises(ValueError, match="^" + re.escape(named)):
        LinkExtractor(restrict_xpaths=expression)


def test_an_xpath_error_only_a_page_shows_is_a_line_naming_the_expression() -> None:
    """An undefined $variable in a predicate the empty probe page never evaluates surfaces on
    a page with such elements: the same ValueError naming the expression as when defined."""
    extractor = LinkExtractor(restrict_xpaths="//a[@href=$next]")
    named = "LinkExtractor(restrict_xpaths='//a[@href=$next]'): not a valid XPath expression"
    with pytest.raises(ValueError, match="^" + re.escape(f"{named} (Undefined variable)")):
        extractor.extract_links(page('<a href="/a">a</a>'))


def test_restrict_text_keeps_links_whose_text_matches_any_regex() -> None:
    """restrict_text regexes are searched in the link's text (nested tags' text included); a
    link with the same URL and matching text later on the page is still taken."""
    response = page(
        '<a href="/p/2">2</a><a href="/p/2">Next <b>page</b></a><a href="/p/1">Previous</a>'
        '<a href="/about">About us</a><img src="/i.html" alt="Next">'
    )
    assert LinkExtractor(restrict_text=r"Next page").extract_links(response) == [
        Link("http://shop.example/p/2", "Next page")
    ]
    assert urls(LinkExtractor(restrict_text=[r"^Prev", re.compile("about", re.I)]), response) == [
        "http://shop.example/p/1",
        "http://shop.example/about",
    ]
    assert urls(LinkExtractor(restrict_text=r"."), response) == [
        "http://shop.example/p/2",
        "http://shop.example/p/1",
        "http://shop.example/about",
    ]
    assert urls(LinkExtractor(restrict_text="Next", tags="img", attrs="src"), response) == []


def test_a_bad_restrict_text_regex_is_refused_when_defined() -> None:
    """As allow/deny: re.error naming the argument and the pattern."""
    with pytest.raises(re.error, match=r"LinkExtractor\(restrict_text=\.\.\.\) '\(x' is not"):
        LinkExtractor(restrict_text=["ok", "(x"])


def test_extractors_without_xpaths_never_load_lxml() -> None:
    """Only an extractor with restrict_xpaths imports parsel (and lxml)."""
    code = (
        "import sys, json\n"
        "from scrapekit import LinkExtractor, Response\n"
        "r = Response('http://x.test/', body=b'<div><a href=/y>Next</a></div>')\n"
        "LinkExtractor(restrict_css='div', restrict_text='N', process_value=str).extract_links(r)\n"
        "before = sorted(m for m in sys.modules if m.split('.')[0] in ('parsel', 'lxml'))\n"
        "LinkExtractor(restrict_xpaths='//div').extract_links(r)\n"
        "print(json.dumps([before, 'lxml' in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == [[], True]


@pytest.mark.parametrize(
    "name", ["allow", "deny", "allow_domains", "deny_domains", "restrict_css", "restrict_xpaths",
             "restrict_text"],
)  # fmt: skip
def test_none_means_no_restriction_as_in_scrapy(name: str) -> None:
    """A ported spider passing None (Scrapy accepts it) gets the default: every link."""
    response = Response("http://x.test/", body=b"<div><a href=/y>y</a></div><a href=/z>z</a>")

    links = LinkExtractor(**{name: None}).extract_links(response)

    assert [link.url for link in links] == ["http://x.test/y", "http://x.test/z"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"restrict_xpaths": 5}, r"\(restrict_xpaths=5\): expected a str or a list of str, got"),
        ({"restrict_xpaths": b"//a"}, r"restrict_xpaths=b'//a'\): expected a str .* got bytes"),
        ({"restrict_text": re.compile(b"x")}, r"restrict_text=re.compile\(b'x'\)\): expected a"),
        ({"allow": [r"/a", 1]}, r"LinkExtractor\(allow=\['/a', 1\]\): expected a .* got int 1"),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_type_names_the_argument(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        LinkExtractor(**kwargs)


@pytest.mark.parametrize("name", ["tags", "attrs"])
def test_no_tags_or_attrs_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=rf"LinkExtractor\({name}=\.\.\.\) is empty"):
        LinkExtractor(**{name: ()})
