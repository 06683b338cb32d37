"""Response: decoding, selection and link following."""

from __future__ import annotations

import codecs
import contextlib

import pytest

from scrapekit import Response
from scrapekit.exceptions import NotHTMLError
from scrapekit.scheduler.filters import UrlLengthFilter
from scrapekit.settings.defaults import URL_LENGTH_LIMIT


def html(body: str, charset: str = "utf-8", content_type: str = "text/html") -> Response:
    """A response for an HTML body encoded with `charset`."""
    return Response(
        "http://shop.test/cat/page.html",
        headers={"content-type": content_type},
        body=body.encode(charset),
    )


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        pytest.param(
            "café".encode("cp1252"),
            {"content-type": "text/html; charset=windows-1252"},
            "café",
            id="header-charset",
        ),
        pytest.param(
            "<meta charset='iso-8859-1'>café".encode("latin-1"),
            {"content-type": "text/html"},
            "<meta charset='iso-8859-1'>café",
            id="meta-charset",
        ),
        pytest.param(
            b'<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
            + "мир".encode("koi8-r"),
            {},
            '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">мир',
            id="meta-http-equiv",
        ),
        pytest.param("\ufeffzoë".encode("utf-8"), {}, "\ufeffzoë", id="utf8-bom"),
        pytest.param("zoë".encode("utf-16"), {}, "zoë", id="utf16-bom"),
        pytest.param(
            "naïve ☃".encode(), {"content-type": "text/html"}, "naïve ☃", id="utf8-detected"
        ),
        pytest.param(
            "Съешь же ещё".encode("cp1251"),
            {"content-type": "text/html"},
            "Съешь же ещё".encode("cp1251").decode("cp1252"),
            id="undeclared-cp1251-is-windows-1252-as-in-browsers",
        ),
        pytest.param(
            "café".encode("latin-1"),
            {"content-type": "text/html; charset=bogus-42"},
            "café",
            id="unknown-label-falls-through",
        ),
    ],
)
def test_text_uses_bom_then_header_then_meta_then_utf8_or_1252(
    body: bytes, headers: dict[str, str], expected: str
) -> None:
    """The decoded text is right for each way a page can declare (or not) its charset."""
    assert Response("http://x.test/", headers=headers, body=body).text.lstrip(
        "\ufeff"
    ) == expected.lstrip("\ufeff")


def test_undecodable_bytes_never_raise() -> None:
    """Bytes invalid in the declared charset become U+FFFD instead of an exception."""
    response = Response(
        "http://x.test/",
        headers={"content-type": "text/html; charset=utf-8"},
        body=b"ok \xff\xfe bad",
    )
    assert response.text == "ok \ufffd\ufffd bad"


def test_css_selects_with_selectolax() -> None:
    """css() and css_first() return selectolax nodes from the parsed page."""
    response = html("<ul><li class=a>One</li><li class=a>Two</li></ul><h1> Title </h1>")
    assert [n.text() for n in response.css("li.a")] == ["One", "Two"]
    assert response.css_first("h1").text(strip=True) == "Title"
    assert response.css_first("table") is None


def test_css_on_an_image_raises_a_clear_error() -> None:
    """Selecting from a non-HTML body raises NotHTMLError naming the content type."""
    response = Response(
        "http://x.test/a.png", headers={"content-type": "image/png"}, body=b"\x89PNG"
    )
    assert response.is_html is False
    with pytest.raises(NotHTMLError, match="image/png"):
        response.css("a")


def test_json_parses_the_body() -> None:
    """json() parses the decoded body."""
    response = Response(
        "http://x.test/api",
        headers={"content-type": "application/json"},
        body='{"name": "café"}'.encode(),
    )
    assert response.json() == {"name": "café"}


def test_follow_resolves_relative_links_and_nodes() -> None:
    """follow() accepts an href or a node and resolves it against the page URL."""
    response = html('<a href="../product/1.html">x</a>')
    node = response.css_first("a")
    assert response.follow(node).url == "http://shop.test/product/1.html"
    request = response.follow("?page=2", callback="parse_item", priority=3)
    assert (request.url, request.callback, request.priority) == (
        "http://shop.test/cat/page.html?page=2",
        "parse_item",
        3,
    )


def test_follow_respects_the_base_tag() -> None:
    """A <base href> changes what relative links resolve against."""
    response = html('<head><base href="http://cdn.test/root/"></head><a href="x.html">x</a>')
    assert response.follow_all(css="a")[0].url == "http://cdn.test/root/x.html"


def test_unfollowable_links_are_dropped_and_counted_by_reason() -> None:
    """mailto:, tel:, javascript:, data:, empty and malformed links never raise; each is counted."""
    response = html(
        '<a href="mailto:a@b.c">m</a><a href="tel:+1">t</a><a href="javascript:void(0)">j</a>'
        '<a href="data:text/plain,x">d</a><a href="">e</a><a>none</a><a href="http://[broken">b</a>'
        '<a href="HTTPS://shop.test/ok">ok</a>'
    )
    requests = response.follow_all(css="a")
    assert [r.url for r in requests] == ["HTTPS://shop.test/ok"]
    assert dict(response.dropped_links) == {
        "link scheme mailto": 1,
        "link scheme tel": 1,
        "link scheme javascript": 1,
        "link scheme data": 1,
        "link empty": 2,
        "link malformed": 1,
    }
    assert response.follow("mailto:x@y.z") is None


def test_links_longer_than_the_url_length_limit_are_dropped_and_counted() -> None:
    """In a crawl (its UrlLengthFilter active), an absolute or relative link whose URL passes
    URL_LENGTH_LIMIT is dropped, not followed."""
    long_path = "p" * 3000
    response = html(
        f'<a href="http://far.test/{long_path}">abs</a>'
        f'<a href="{"q" * 2070}">rel</a>'  # short enough alone, too long once joined
        '<a href="/ok">ok</a>'
    )
    with UrlLengthFilter(URL_LENGTH_LIMIT).active():
        requests = response.follow_all(css="a")
    assert URL_LENGTH_LIMIT == 2083
    assert [r.url for r in requests] == ["http://shop.test/ok"]
    assert dict(response.dropped_links) == {"url too long": 2}
    assert UrlLengthFilter.current() is None  # the crawl's filter goes with the crawl


@pytest.mark.parametrize("active", [True, False], ids=["limit-zero", "outside-a-crawl"])
def test_url_length_limit_zero_follows_any_length(active: bool) -> None:
    """URL_LENGTH_LIMIT = 0 turns the limit off; outside a crawl follow() leaves it to the
    scheduler."""
    response = Response(
        "http://shop.test/",
        headers={"content-type": "text/html"},
        body=b'<a href="/' + b"p" * 5000 + b'">x</a>',
    )
    with UrlLengthFilter(0).active() if active else contextlib.nullcontext():
        followed = response.follow_all(css="a")
    assert len(followed[0].url) == len("http://shop.test/") + 5000
    assert not response.dropped_links


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        pytest.param("iso-8859-1", "cp1252", id="iso-8859-1"),
        pytest.param("Latin1", "cp1252", id="latin1"),
        pytest.param("us-ascii", "cp1252", id="us-ascii"),
        pytest.param('"ascii"', "cp1252", id="quoted"),
        pytest.param("utf8", "utf-8", id="utf8"),
        pytest.param("unicode-1-1-utf-8", "utf-8", id="unicode-1-1-utf-8"),
        pytest.param("utf-16", "utf-16-le", id="utf-16-is-le"),
        pytest.param("gb2312", "gb18030", id="gb2312-is-gbk"),
        pytest.param("iso-8859-9", "cp1254", id="latin5-is-1254"),
        pytest.param("shift_jis", "cp932", id="shift_jis"),
        pytest.param("x-user-defined", "x-user-defined", id="x-user-defined"),
        pytest.param("iso-2022-kr", "replacement", id="replacement"),
        # Python codecs no browser knows: never used, so they cannot raise or hide markup.
        pytest.param("rot13", "utf-8", id="rot13-ignored"),
        pytest.param("base64", "utf-8", id="base64-ignored"),
        pytest.param("undefined", "utf-8", id="undefined-ignored"),
        pytest.param("utf-7", "utf-8", id="utf-7-ignored"),
        pytest.param("latin-1", "utf-8", id="not-a-whatwg-label"),
    ],
)
def test_charset_labels_are_read_as_browsers_read_them(label: str, codec: str) -> None:
    """Header labels go through the WHATWG label table; unknown ones fall through."""
    response = Response(
        "http://x.test/", headers={"content-type": f"text/html; charset={label}"}, body=b"ok"
    )
    assert response.encoding == codec
    assert response.text in ("ok", "\ufffd", b"ok".decode("utf-16-le"))


def test_x_user_defined_and_replacement_decode_as_in_browsers() -> None:
    """x-user-defined maps 0x80-0xFF to U+F780-U+F7FF; replacement encodings give one U+FFFD."""
    user = Response("http://x.test/", headers={"content-type": "text/html; charset=x-user-defined"},
                    body=b"a\x80\xff")  # fmt: skip
    assert user.text == "a\uf780\uf7ff"
    hidden = Response("http://x.test/", headers={"content-type": "text/html; charset=hz-gb-2312"},
                      body=b"<script>~{x</script>")  # fmt: skip
    assert hidden.text == "\ufffd"


@pytest.mark.parametrize("name", ["replacement", "x-user-defined", "x_user_defined"])
def test_scrapekit_registers_no_codec_for_the_whole_process(name: str) -> None:
    """The two WHATWG-only encodings are decoded inside Response: user code importing
    scrapekit does not find them as Python codecs."""
    assert html("x", content_type="text/html; charset=" + name.replace("_", "-")).text
    with pytest.raises(LookupError):
        codecs.lookup(name)


def test_a_bom_beats_the_header_and_meta_utf16_means_utf8() -> None:
    """As in browsers: the BOM wins over Content-Type; <meta charset=utf-16> is read as UTF-8."""
    bom = Response("http://x.test/", headers={"content-type": "text/html; charset=windows-1252"},
                   body=codecs.BOM_UTF8 + "café".encode())  # fmt: skip
    assert bom.encoding == "utf-8"
    meta = Response("http://x.test/", body='<meta charset="utf-16">café'.encode())
    assert meta.encoding == "utf-8"
    assert meta.text.endswith("café")


@pytest.mark.parametrize(
    "href",
    [
        pytest.param("http://[broken", id="unjoinable"),
        pytest.param("javascript:void(0)", id="not-http"),
        pytest.param("ftp://files.test/pub/", id="ftp"),
        pytest.param("http://cdn.test:99999/", id="bad-port"),
        pytest.param("//%zz/", id="bad-percent-host"),
        pytest.param("http://a%2Fb.test/", id="slash-in-host"),
        pytest.param("//%ff.test/", id="host-not-utf8"),
        pytest.param("  ", id="blank"),
    ],
)
def test_a_broken_base_href_is_ignored(href: str) -> None:
    """Links then resolve against the page URL, and the first link is not lost as malformed."""
    response = html(f'<head><base href="{href}"></head><a href="x.html">x</a><a href="/y">y</a>')
    assert response.base_url == "http://shop.test/cat/page.html"
    assert [r.url for r in response.follow_all(css="a")] == [
        "http://shop.test/cat/x.html",
        "http://shop.test/y",
    ]
    assert not response.dropped_links
