"""The selector layer: `Response.css()` gives parsel's results on selectolax, nodes keep working.

parsel itself is the oracle: every supported form is run through both on the same pages (the
demo shop's pages and a page of awkward markup) and must give the same strings.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import Counter

import parsel
import pytest
from selectolax.lexbor import LexborHTMLParser

from scrapekit import Response, Selector, SelectorList
from scrapekit._css import find, find_first
from scrapekit.demo.catalogue import build_catalogue
from scrapekit.demo.pages import render_listing, render_login, render_product

PRODUCTS = build_catalogue(30)

AWKWARD = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8">
<title>Caf\u00e9 &amp; cr\u00e8me \u2014 \u65e5\u672c</title>
<link rel="stylesheet" href="/s.css"><link rel="canonical" href="https://shop.test/x">
<style>p { color: red }</style></head>
<body>
<div id="outer" class="box"> outer <!-- a comment -->
  <div id="inner" class="box">inner <span>deep <b>deeper</b> tail</span> after</div>
  between <script>var s = "<p>not a tag</p>";</script>
  <p class="quote"><span class="text">\u201cL\u2019\u00e9t\u00e9\u201d</span> by
    <small class="author">Ren\u00e9 Ch\u00e2r</small> <a href="/author/rene">(about)</a></p>
  <p class="quote"><span class="text">\u201cSecond\u201d</span> by
    <small class="author">Anon</small></p>
  <a href="/page/2" data-empty="" class="next">next \u2192</a>
  <a name="anchor-without-href">no href</a>
  <img src="/i.png" alt="">
  <input type="checkbox" disabled checked name="c" value="1">
</div>
<ul><li>one<li>two <em>2</em><li>three</ul>
<dl><dt>UPC</dt><dd>abc123</dd><dt>Price</dt><dd>\u00a312.50</dd></dl>
<p>Prices: \u00a312.50, \u00a33.99 and \u20ac7</p>
<section><p>unclosed <b>bold</b> text</section>
</body></html>"""


def pages() -> dict[str, str]:
    counts = Counter(p.category for p in PRODUCTS)
    return {
        "listing": render_listing(
            "/catalogue/page-1.html", "All products", PRODUCTS, 1, 20, dict(counts), False
        ),
        "listing-logged-in": render_listing(
            "/catalogue/page-2.html", "All products", PRODUCTS, 2, 20, dict(counts), True
        ),
        "product": render_product(PRODUCTS[3], True),
        "product-anonymous": render_product(PRODUCTS[4], False),
        "login": render_login("tok-123", "/catalogue/page-1.html", False, "Wrong password"),
        "awkward": AWKWARD,
    }


PAGES = pages()

# Every supported string form: the pseudo-elements, nested and missing nodes, comma groups.
STRING_FORMS = [
    "title::text",
    "h1::text",
    "p::text",
    "div::text",  # nested matches: parsel gives their text nodes in document order
    ".box::text",
    "span::text",
    "div ::text",
    "ul *::text",
    "p ::text",
    "p *::text",
    "div > ::text",
    "div > *::text",
    "article.product h3 a::text",
    "span.text::text",
    "small.author::text",
    "tr.upc td::text",
    "td::text",
    ".price::text",
    "li::text",
    "dd::text",
    "script::text",
    "missing::text",
    "missing ::text",
    "a::attr(href)",
    "a::attr( href )",
    'a::attr("href")',
    "a::attr(title)",
    "a::attr(data-empty)",
    "input::attr(disabled)",  # valueless boolean: "disabled", as libxml2 reads it
    "a::attr(name)",
    "input::attr(checked)",
    "missing::attr(href)",
    "a::attr(missing)",
    "::attr(href)",
    "*::attr(class)",
    "div ::attr(href)",
    "div *::attr(class)",
    "p.stock::attr(data-stock)",
    "form input[name=csrf_token]::attr(value)",
    "a::attr(href), link::attr(href)",
    "link::attr(href), a::attr(href)",
    "a::attr(href), img::attr(src)",
    "h1::text, h2::text",
    "title::text, a::attr(href)",
    "dt::text, dd::text",
    "p::text, div::text",
    "li:nth-child(2)::text",
    "a[href^='/']::attr(href)",
    "a:not([href])::text",
]


@pytest.mark.parametrize("page", sorted(PAGES))
def test_string_forms_equal_parsel(page: str) -> None:
    """Every ::text / ::attr() form gives parsel's list, in parsel's order, on every page."""
    html = PAGES[page]
    ours, theirs = Selector(text=html), parsel.Selector(text=html)
    for query in STRING_FORMS:
        assert ours.css(query).getall() == theirs.css(query).getall(), query
        assert ours.css(query).get() == theirs.css(query).get(), query


@pytest.mark.parametrize("page", sorted(PAGES))
def test_whole_document_text_equals_parsel(page: str) -> None:
    """``::text`` and ``*::text`` on the page: parsel's text nodes.

    Whitespace between <html> and <head> and after </body> is left out of the comparison:
    lexbor drops it or moves it into <body> as HTML5 says, libxml2 keeps it where it stands.
    """
    html = PAGES[page]
    ours, theirs = Selector(text=html), parsel.Selector(text=html)
    for query in ("::text", "*::text", "body ::text"):
        mine = [t for t in ours.css(query).getall() if t.strip()]
        assert mine == [t for t in theirs.css(query).getall() if t.strip()]


# Element forms: the same elements (attributes, own text), whatever the serializer.
ELEMENT_FORMS = [
    "article.product",
    "h3 a",
    "p",
    "div",
    ".quote",
    "ul.pager li",
    "li",
    "a[href]",
    "input, select, textarea",
    "h1, h2",
    "missing",
]


@pytest.mark.parametrize("page", sorted(PAGES))
def test_element_forms_select_what_parsel_selects(page: str) -> None:
    """Element results are parsel's elements: same count, attrib, text, and chained css()."""
    html = PAGES[page]
    ours, theirs = Selector(text=html), parsel.Selector(text=html)
    for query in ELEMENT_FORMS:
        mine, ref = ours.css(query), theirs.css(query)
        assert [s.attrib for s in mine] == [s.attrib for s in ref], query
        assert [s.css("::text").getall() for s in mine] == [
            s.css("::text").getall() for s in ref
        ], query
        assert [s.css("a::attr(href)").getall() for s in mine] == [
            s.css("a::attr(href)").getall() for s in ref
        ], query
        assert mine.attrib == ref.attrib, query
        assert mine.css("::text").getall() == ref.css("::text").getall(), query


def test_chained_css_includes_the_element_itself() -> None:
    """As parsel: `sel.css("div")` on a div matches the div too (descendant-or-self)."""
    outer = Selector(text=AWKWARD).css("#outer")[0]
    ref = parsel.Selector(text=AWKWARD).css("#outer")[0]
    assert [s.attrib["id"] for s in outer.css("div")] == ["outer", "inner"]
    assert outer.css("div::text").getall() == ref.css("div::text").getall()
    assert outer.css("::attr(class)").getall() == ref.css("::attr(class)").getall()


def test_element_get_is_selectolax_outer_html() -> None:
    """`.get()` of an element is lexbor's serialization; it differs from lxml's where noted."""
    html = '<p id="a">x&nbsp;<input disabled value=\'say "hi"\'><br></p>'
    sel = Selector(text=html).css("p")
    assert sel.get() == '<p id="a">x&nbsp;<input disabled="" value="say &quot;hi&quot;"><br></p>'
    assert sel.get() == sel[0].html
    # lxml writes the same element otherwise (documented in docs/selectors.md):
    assert parsel.Selector(text=html).css("p").get() == (
        '<p id="a">x\xa0<input disabled value=\'say "hi"\'><br></p>'
    )
    simple = '<div class="a"><a href="/x" title="T">one</a> two</div>'
    assert Selector(text=simple).css("div").get() == parsel.Selector(text=simple).css("div").get()


def test_get_default_getall_and_attrib_on_no_match() -> None:
    """Missing nodes: get() gives the default, getall() [], attrib {}; no exception."""
    sel = Selector(text=AWKWARD)
    assert sel.css("missing::text").get() is None
    assert sel.css("missing::text").get("n/a") == "n/a"
    assert sel.css("missing::text").get(default="") == ""
    assert sel.css("missing").getall() == []
    assert sel.css("missing").attrib == {}
    assert sel.css("a::attr(missing)").get() is None
    assert sel.css("a.next").attrib == {"href": "/page/2", "data-empty": "", "class": "next"}
    assert sel.css("input").attrib["disabled"] == "disabled"  # lxml's reading of a boolean
    assert sel.css("span.text::text").attrib == {}


def test_re_and_re_first_equal_parsel() -> None:
    """.re/.re_first: groups, the "extract" group, entities, no match -> [] / default."""
    ours, theirs = Selector(text=AWKWARD), parsel.Selector(text=AWKWARD)
    cases = [
        ("p::text", r"£(\d+\.\d+)"),
        ("p::text", r"(£|€)(\d+)"),
        ("p::text", r"\d+"),
        ("p::text", r"(?P<extract>€\d+)"),
        ("title::text", r"\w+"),
        ("a", r'href="([^"]+)"'),
        ("dl", r"<dd>(.*?)</dd>"),
        ("p::text", r"nothing here"),
        ("missing::text", r".+"),
    ]
    for query, regex in cases:
        assert ours.css(query).re(regex) == theirs.css(query).re(regex), (query, regex)
        assert ours.css(query).re_first(regex) == theirs.css(query).re_first(regex)
        assert ours.css(query).re_first(regex, "-") == theirs.css(query).re_first(regex, "-")
    assert ours.css("p::text").re("nothing") == []
    assert ours.css("p::text").re_first("nothing") is None
    assert ours.css("p::text")[0].re_first("nothing", default="d") == "d"


def test_re_replaces_entities_as_parsel_does() -> None:
    """Entities in the matched text are replaced, except &lt; and &amp; (parsel's rule)."""
    text = "a &lt;b&gt; &amp; &quot;q&quot; &#233; &#x41; &#150; &nbsp; &bogus; &#0;"
    html = f"<p>{text.replace('&', '&amp;')}</p>"
    ours, theirs = Selector(text=html), parsel.Selector(text=html)
    assert ours.css("p::text").get() == text
    for replace in (True, False):
        assert ours.css("p::text").re(".+", replace) == theirs.css("p::text").re(".+", replace)


def test_non_ascii_text_and_attributes() -> None:
    """Accents, CJK, typographic quotes and symbols come through unchanged."""
    sel = Selector(text=AWKWARD)
    assert sel.css("title::text").get() == "Café & crème — 日本"
    assert sel.css("span.text::text").getall() == [
        "\u201cL\u2019\u00e9t\u00e9\u201d",
        "\u201cSecond\u201d",
    ]
    assert sel.css("small.author::text").get() == "René Châr"
    assert sel.css("a.next::text").get() == "next →"


def test_broken_html_agrees_where_the_parsers_do() -> None:
    """Unclosed <li>/<p> and misnested tags: same texts where both parsers build one tree."""
    ours, theirs = Selector(text=AWKWARD), parsel.Selector(text=AWKWARD)
    assert (
        ours.css("li::text").getall()
        == theirs.css("li::text").getall()
        == [
            "one",
            "two ",
            "three",
        ]
    )
    assert ours.css("section ::text").getall() == theirs.css("section ::text").getall()
    broken = "<div><p>a<table><tr><td>1</td></tr></table><p>b</div></span>"
    ours, theirs = Selector(text=broken), parsel.Selector(text=broken)
    assert ours.css("td::text").getall() == theirs.css("td::text").getall() == ["1"]
    assert ours.css("p::text").getall() == theirs.css("p::text").getall() == ["a", "b"]
    # lexbor parses as HTML5 browsers do: a <table> gets its <tbody>; lxml's libxml2 does not.
    assert ours.css("table > tr").getall() == []
    assert len(theirs.css("table > tr")) == 1


def test_selector_acts_as_the_selectolax_node() -> None:
    """Code written for the nodes css() used to return keeps working on Selectors."""
    response = Response("http://shop.test/", body=AWKWARD.encode())
    quote = response.css("p.quote")[0]
    assert quote.tag == "p"
    assert quote.attributes == {"class": "quote"}
    assert quote.attrs["class"] == "quote"
    assert quote.css_first("small").text() == "René Châr"
    assert quote.text(deep=False, strip=True) == "by"
    assert quote.parent.attributes["id"] == "outer"
    assert [n.tag for n in quote.iter()] == ["span", "small", "a"]
    assert quote.css_matches("p.quote")
    assert quote.html.startswith('<p class="quote">')
    assert [n.tag for n in quote.traverse()][:2] == ["p", "span"]  # forwarded by __getattr__
    assert quote.css("small")[0].text() == "René Châr"
    assert response.css("a")[0] == response.css_first("a")
    inputs = response.css("input")
    assert "disabled" in inputs[0].attributes
    with pytest.raises(AttributeError, match=r"use \.get\(\)"):
        response.css("a::attr(href)")[0].attributes  # noqa: B018


def test_selector_list_is_a_list_of_selectors() -> None:
    """A list subclass: slicing keeps the type, iteration yields Selectors, bool is parsel's."""
    response = Response("http://shop.test/", body=AWKWARD.encode())
    links = response.css("a")
    assert isinstance(links, SelectorList)
    assert isinstance(links, list)
    assert isinstance(links[1:], SelectorList)
    assert links[1:].getall() == links.getall()[1:]
    assert all(isinstance(s, Selector) for s in links)
    assert response.css("a::attr(data-empty)").getall() == [""]
    assert not response.css("a::attr(data-empty)")[0]  # an empty string selects nothing
    assert response.css("a")[0]
    assert "Selector" in repr(links[0])
    assert response.css("li").css("em::text").getall() == ["2"]
    assert response.css("p.quote").css("small::text").getall() == ["René Châr", "Anon"]


def test_unsupported_pseudo_elements_fail_with_one_line() -> None:
    """A pseudo-element parsel does not know, or not at the end, names the selector."""
    sel = Selector(text=AWKWARD)
    with pytest.raises(ValueError, match=r"p::before.*only ::text and ::attr\(name\)"):
        sel.css("p::before")
    with pytest.raises(ValueError, match="only ::text"):
        sel.css("p::text span")
    with pytest.raises(ValueError, match=r"css\('h1::text'\)\.get\(\)"):
        Response("http://shop.test/", body=b"<h1>x</h1>").css_first("h1::text")
    # "::" inside a quoted attribute value is not a pseudo-element.
    html = '<a title="a::b" href="/x">x</a>'
    assert Selector(text=html).css('a[title="a::b"]::attr(href)').getall() == ["/x"]
    assert len(Selector(text=html).css('a[title="a::b"]')) == 1


def test_response_xpath_through_parsel() -> None:
    """response.xpath(): parsel's SelectorList on the whole page, base URL = the page's URL."""
    response = Response("http://shop.test/p/1", body=AWKWARD.encode())
    upc = response.xpath("//dt[text()='UPC']/following-sibling::dd[1]/text()")
    assert isinstance(upc, parsel.SelectorList)
    assert upc.get() == "abc123"
    assert response.xpath("//dt[text()=$name]/following-sibling::dd[1]/text()", name="Price").get()
    assert response.xpath("//a/@href").getall() == ["/author/rene", "/page/2"]
    assert response._parsel is not None
    assert response._parsel.root.base == "http://shop.test/p/1"
    assert response.xpath("//missing").get() is None


def test_xpath_on_a_css_selected_element_sees_its_own_html() -> None:
    """Selector.xpath() runs on the element's own HTML: relative paths work, siblings do not."""
    sel = Selector(text=AWKWARD)
    quote = sel.css("p.quote")[0]
    assert quote.xpath("./small/text()").get() == "René Châr"
    assert quote.xpath("@class").get() == "quote"
    assert quote.xpath(".//a/@href").getall() == ["/author/rene"]
    assert quote.xpath("following-sibling::p").getall() == []  # outside the element
    assert sel.css("dt").xpath("text()").getall() == ["UPC", "Price"]
    assert sel.css("dt::text")[0].xpath(".").getall() == []
    cell = Selector(text=PAGES["product"]).css("tr.upc")[0]
    assert cell.xpath("td/text()").get() == PRODUCTS[3].upc


def test_xml_responses_are_read_as_xml() -> None:
    """An XML content type gets parsel's XML parser (case and namespaces kept)."""
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>http://shop.test/a</loc></url><url><loc>http://shop.test/b</loc></url>"
        b"</urlset>"
    )
    response = Response(
        "http://shop.test/sitemap.xml", headers={"content-type": "application/xml"}, body=body
    )
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    assert response.xpath("//s:loc/text()", namespaces=ns).getall() == [
        "http://shop.test/a",
        "http://shop.test/b",
    ]


def test_follow_takes_selectors() -> None:
    """follow()/follow_all() take ::attr(href) Selectors, element Selectors and parsel's."""
    response = Response("http://shop.test/dir/page.html", body=AWKWARD.encode())
    expected = ["http://shop.test/author/rene", "http://shop.test/page/2"]
    assert [r.url for r in response.follow_all(response.css("a::attr(href)"))] == expected
    assert [r.url for r in response.follow_all(css="a::attr(href)")] == expected
    assert [r.url for r in response.follow_all(css="a")] == expected  # no href: skipped
    assert response.dropped_links["link empty"] == 1
    assert [r.url for r in response.follow_all(response.xpath("//a/@href"))] == expected
    assert [r.url for r in response.follow_all(response.xpath("//a[@href]"))] == expected
    img = response.follow(response.css("img")[0])
    assert img is not None
    assert img.url == "http://shop.test/i.png"


def test_css_does_not_import_parsel_or_lxml() -> None:
    """importing scrapekit and selecting with css() loads neither parsel nor lxml."""
    code = (
        "import sys, json\n"
        "import scrapekit\n"
        "r = scrapekit.Response('http://x.test/', body=b'<a href=/y>y</a>')\n"
        "assert r.css('a::attr(href)').get() == '/y'\n"
        "assert r.css('a')[0].text() == 'y'\n"
        "before = sorted(m for m in sys.modules if m.split('.')[0] in ('parsel', 'lxml'))\n"
        "r.xpath('//a')\n"
        "after = sorted(m for m in sys.modules if m.split('.')[0] in ('parsel', 'lxml'))\n"
        "print(json.dumps([before, 'parsel' in after, 'lxml' in after]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == [[], True, True]


def test_chained_selector_may_reach_ancestors_outside_the_element() -> None:
    """Documented difference: lexbor matches `body p` inside an element through outer ancestors."""
    html = "<body><div><p>x</p></div></body>"
    assert Selector(text=html).css("div")[0].css("body p::text").getall() == ["x"]
    assert parsel.Selector(text=html).css("div")[0].css("body p::text").getall() == []


# -- the fast paths: lazily made Selectors, the shared CSS engine, tags() for bare names ------

LIST_QUERIES = ["a", "p", "li", "missing", "a::attr(href)", "p::text", "h1, p::text", "div"]


def eager(selected: SelectorList) -> SelectorList:
    """The same list with every Selector made up front (the list as it was before)."""
    return SelectorList([Selector(root=sel.root) for sel in list(selected)])


@pytest.mark.parametrize("query", LIST_QUERIES)
def test_lazily_wrapped_list_behaves_as_a_list_of_selectors(query: str) -> None:
    """What css() returns makes its Selectors on first use: every list operation sees them."""
    response = Response("http://shop.test/", body=AWKWARD.encode())
    reference = eager(response.css(query))
    probes = {
        "len": lambda s: len(s),
        "bool": lambda s: bool(s),
        "get": lambda s: s.get(),
        "get default": lambda s: s.get("none"),
        "getall": lambda s: s.getall(),
        "re": lambda s: s.re(r"\w+"),
        "re_first": lambda s: s.re_first(r"\w+"),
        "attrib": lambda s: s.attrib,
        "chained": lambda s: s.css("*::text").getall(),
        "iter": lambda s: [x.get() for x in s],
        "reversed": lambda s: [x.get() for x in reversed(s)],
        "index 0": lambda s: s[0].get() if s else None,
        "index -1": lambda s: s[-1].get() if s else None,
        "slice": lambda s: (type(s[1:]), s[1:].getall()),
        "in": lambda s: bool(s) and s[0] in s,
        "index()": lambda s: s.index(s[-1]) if s else None,
        "count": lambda s: s.count(s[0]) if s else 0,
        "equal": lambda s: s == reference,
        "equal list": lambda s: list(s) == list(reference),
        "add": lambda s: [x.get() for x in s + s],
        "radd": lambda s: [x.get() for x in [] + s],  # noqa: RUF005
        "mul": lambda s: [x.get() for x in s * 2],
        "repr": lambda s: repr(s),
        "copy": lambda s: (type(copy.copy(s)), copy.copy(s).getall()),
        "pop": lambda s: s.pop().get() if s else None,
        "append": lambda s: (s.append(reference[0]) if reference else None, s.getall()),
    }
    for name, probe in probes.items():
        assert probe(response.css(query)) == probe(eager(response.css(query))), name


def test_lazily_wrapped_list_becomes_a_plain_selector_list() -> None:
    """Once an item is seen the list holds Selectors for good: the same object on each access."""
    response = Response("http://shop.test/", body=AWKWARD.encode())
    links = response.css("a")
    first = links[0]
    assert type(links) is SelectorList
    assert links[0] is first
    assert all(isinstance(x, Selector) for x in list.__iter__(links))
    strings = response.css("a::attr(href)")
    assert strings.getall() == ["/author/rene", "/page/2"]
    assert strings.get() == "/author/rene"
    assert type(strings) is not SelectorList  # get()/getall() made no Selector
    assert [type(x) for x in strings] == [Selector, Selector]
    assert type(strings) is SelectorList


def test_adding_lazily_wrapped_lists_keeps_selectors() -> None:
    """`+`, `+=` and `==` between lists see Selectors on both sides; `+=` extends in place."""
    response = Response("http://shop.test/", body=AWKWARD.encode())
    collected = SelectorList()
    same = collected
    collected += response.css("a::attr(href)")
    collected += response.css("img")
    assert collected is same
    assert type(collected) is SelectorList
    assert all(type(x) is Selector for x in list.__iter__(collected))
    joined = [Selector(text="<p>x</p>")] + response.css("a::attr(href)")  # noqa: RUF005
    assert [type(x) for x in joined] == [Selector, Selector, Selector]
    assert response.css("a::attr(href)") == response.css("a::attr(href)")
    assert response.css("a") != response.css("img")


def test_engine_finds_what_selectolax_finds() -> None:
    """find()/find_first() (shared engine, tags() for bare names) give selectolax's own nodes."""
    queries = ["a", "p", "div", "li", "h1", "html", "body", "td", "a[href]", ".price", "ul li"]
    for html in PAGES.values():
        tree = LexborHTMLParser(html)
        for query in queries:
            assert find(tree, query) == tree.css(query), query
            assert find_first(tree, query) == tree.css_first(query), query
            for node in tree.css("div")[:5]:
                assert find(node, query) == node.css(query), query
    fragment = LexborHTMLParser("<p>a</p><div><p>b</p></div>", is_fragment=True)
    assert [n.text() for n in find(fragment, "p")] == ["a", "b"]
    assert find(fragment.root, "p") == fragment.root.css("p")
    assert find_first(fragment, "p") == fragment.css_first("p")


def test_shared_engine_serves_documents_in_turn() -> None:
    """One engine for every document: each query finds its own document's nodes."""
    one = Response("http://a.test/", body=b"<p class=x>one</p>")
    two = Response("http://b.test/", body=b"<p class=x>two</p><p class=x>2</p>")
    for _ in range(3):
        assert one.css(".x::text").getall() == ["one"]
        assert two.css(".x::text").getall() == ["two", "2"]
        first = two.css_first(".x")
        assert first is not None
        assert first.text() == "two"
