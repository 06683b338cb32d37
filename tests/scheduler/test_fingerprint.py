"""Canonical URLs and request fingerprints."""

from __future__ import annotations

import pytest

from scrapekit import Request
from scrapekit.scheduler import canonicalize_url, fingerprint


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("HTTP://Shop.Test/a", "http://shop.test/a", id="scheme-host-case"),
        pytest.param("http://shop.test:80/a", "http://shop.test/a", id="default-http-port"),
        pytest.param("https://shop.test:443/a", "https://shop.test/a", id="default-https-port"),
        pytest.param("http://shop.test", "http://shop.test/", id="empty-path"),
        pytest.param("http://shop.test/a#top", "http://shop.test/a", id="fragment"),
        pytest.param("http://shop.test/a?b=2&a=1", "http://shop.test/a?a=1&b=2", id="query-order"),
        pytest.param("http://shop.test/%7euser", "http://shop.test/~user", id="unreserved-escape"),
        pytest.param("http://shop.test/a%2fb", "http://shop.test/a%2Fb", id="escape-case"),
        pytest.param("http://shop.test/caf\u00e9", "http://shop.test/caf%C3%A9", id="non-ascii"),
        pytest.param("http://shop.test/a b", "http://shop.test/a%20b", id="space"),
        pytest.param("http://shop.test./a", "http://shop.test/a", id="trailing-dot-host"),
        pytest.param("http://shop.test/?a=1&&b=", "http://shop.test/?b=&a=1", id="empty-pairs"),
    ],
)
def test_equivalent_urls_share_one_canonical_form(a: str, b: str) -> None:
    """URLs that name the same resource canonicalise identically."""
    assert canonicalize_url(a) == canonicalize_url(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("http://shop.test/a", "https://shop.test/a", id="scheme"),
        pytest.param("http://shop.test:8080/a", "http://shop.test/a", id="port"),
        pytest.param("http://shop.test/a%2Fb", "http://shop.test/a/b", id="escaped-slash"),
        pytest.param("http://shop.test/A", "http://shop.test/a", id="path-case"),
        pytest.param("http://shop.test/?a=1", "http://shop.test/?a=2", id="query-value"),
        pytest.param("http://shop.test/?a", "http://shop.test/", id="blank-query-kept"),
    ],
)
def test_different_resources_keep_different_forms(a: str, b: str) -> None:
    """Canonicalisation never merges URLs that may name different resources."""
    assert canonicalize_url(a) != canonicalize_url(b)


def test_fingerprint_covers_method_and_body_but_not_headers() -> None:
    """Method and body change the fingerprint; headers and fragments do not."""
    base = fingerprint(Request("http://shop.test/a?x=1&y=2"))
    assert fingerprint(Request("http://shop.test/a?y=2&x=1#f", headers={"X": "1"})) == base
    assert fingerprint(Request("http://shop.test/a?x=1&y=2", "HEAD")) != base
    post_a = fingerprint(Request("http://shop.test/a", data={"q": "1"}))
    post_b = fingerprint(Request("http://shop.test/a", data={"q": "2"}))
    assert post_a != post_b
    assert len(base) == 16
