"""Request: construction, validation, copying and storage records."""

from __future__ import annotations

import json

import pytest

from scrapekit import Request, Spider
from scrapekit.exceptions import InvalidURL


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("example.com/page", "no scheme", id="no-scheme"),
        pytest.param("mailto:a@example.com", "scheme 'mailto'", id="mailto"),
        pytest.param("ftp://example.com/", "scheme 'ftp'", id="ftp"),
        pytest.param("http://", "no host", id="no-host"),
        pytest.param("http://[broken/", "malformed", id="bad-ipv6"),
        pytest.param("http://example.com:99999/", "malformed", id="bad-port"),
        pytest.param("http://%zz/", "host '%zz'", id="bad-percent-host"),
        pytest.param("http://a%3Cb.test/", "is not a host name", id="forbidden-in-host"),
    ],
)
def test_bad_urls_raise_invalid_url_naming_the_problem(url: str, problem: str) -> None:
    """A URL that cannot be fetched raises InvalidURL whose message says why."""
    with pytest.raises(InvalidURL, match=problem):
        Request(url)


def test_method_defaults_to_get_and_to_post_with_a_body() -> None:
    """GET is the default; data or json make it a POST unless a method is given."""
    assert Request("http://x.test/").method == "GET"
    assert Request("http://x.test/", data={"a": "1"}).method == "POST"
    assert Request("http://x.test/", json={"a": 1}).method == "POST"
    assert Request("http://x.test/", "put", data=b"x").method == "PUT"


def test_form_data_is_urlencoded_with_its_content_type() -> None:
    """A mapping given as data becomes an urlencoded body."""
    request = Request("http://x.test/", data={"q": "a b", "n": ["1", "2"]})
    assert request.body == b"q=a+b&n=1&n=2"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_json_body_keeps_unicode() -> None:
    """json= serialises compactly, keeps non-ASCII text and sets the content type."""
    request = Request("http://x.test/", json={"name": "café"})
    assert json.loads(request.body) == {"name": "café"}
    assert request.headers["Content-Type"] == "application/json"


def test_params_extend_an_existing_query_before_the_fragment() -> None:
    """params are appended to the query string, keeping the fragment last."""
    request = Request("http://x.test/p?a=1#top", params={"b": "2 3"})
    assert request.url == "http://x.test/p?a=1&b=2+3#top"


def test_replace_copies_and_validates() -> None:
    """replace() changes the named attributes on a copy and rejects unknown ones."""
    original = Request("http://x.test/", meta={"k": 1}, priority=3)
    copy = original.replace(url="http://y.test/")
    copy.meta["k"] = 2
    assert (copy.url, copy.priority, original.meta["k"]) == ("http://y.test/", 3, 1)
    with pytest.raises(TypeError, match="nope"):
        original.replace(nope=1)


class _Shop(Spider):
    name = "shop"

    def parse_item(self, response: object) -> None:
        """A callback stored by name."""


def test_record_round_trip_keeps_callbacks_by_name() -> None:
    """to_record()/from_record() survive JSON and resolve back to the spider method."""
    spider = _Shop()
    request = Request(
        "http://x.test/p",
        data=b"\x00\xff",
        callback=spider.parse_item,
        priority=5,
        meta={"a": [1]},
        cb_kwargs={"n": 2},
        dont_filter=True,
        depth=4,
    )
    restored = Request.from_record(json.loads(json.dumps(request.to_record())))
    assert restored.to_record() == request.to_record()
    assert restored.callback == "parse_item"
    assert spider.resolve_callback(restored.callback) == spider.parse_item


def test_record_refuses_a_plain_function_callback() -> None:
    """Only spider methods can be stored; a lambda cannot be found again after a restart."""
    with pytest.raises(ValueError, match="not a spider method"):
        Request("http://x.test/", callback=lambda r: None).to_record()
