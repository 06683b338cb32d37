"""Sitemap files parsed as hostile input: no entity expansion, no file or network access, and
gzip inflated within the body limit."""

from __future__ import annotations

import tracemalloc
import zlib
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from scrapekit.exceptions import DecodingError, ResponseTooLarge
from scrapekit.session.body import gunzip
from scrapekit.spiders.sitemapxml import MalformedSitemap, parse_sitemap

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def test_entries_carry_their_fields_and_alternates() -> None:
    """Each entry is a dict of its fields by local name, with its alternate hrefs."""
    body = f"""<?xml version="1.0"?>
    <urlset {NS} xmlns:xhtml="http://www.w3.org/1999/xhtml">
      <url><loc> http://h/a </loc><lastmod>2026-01-02</lastmod>
        <xhtml:link rel="alternate" hreflang="de" href="http://h/de/a"/></url>
      <url><lastmod>2026-01-03</lastmod></url>
    </urlset>""".encode()
    sitemap = parse_sitemap(body)
    assert sitemap.type == "urlset"
    assert sitemap.entries == [
        {"loc": "http://h/a", "lastmod": "2026-01-02", "alternate": ["http://h/de/a"]}
    ]
    assert sitemap.errors == ""


def test_an_external_entity_is_never_read(tmp_path: Path) -> None:
    """A sitemap declaring an external entity (XXE) does not get the file's content."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = f"""<?xml version="1.0"?>
    <!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://{secret}">]>
    <urlset {NS}><url><loc>http://h/&xxe;</loc></url></urlset>""".encode()
    sitemap = parse_sitemap(body)
    assert "TOP-SECRET" not in repr(sitemap)
    assert [entry["loc"] for entry in sitemap.entries] == ["http://h/&xxe;"]  # left as written


def test_an_entity_on_the_network_is_never_fetched(httpserver: HTTPServer) -> None:
    """An external entity (or DTD) on a server is not requested."""
    httpserver.expect_request("/evil.dtd").respond_with_data('<!ENTITY e "x">')
    body = f"""<?xml version="1.0"?>
    <!DOCTYPE urlset SYSTEM "{httpserver.url_for("/evil.dtd")}">
    <urlset {NS}><url><loc>http://h/a</loc></url></urlset>""".encode()
    assert [entry["loc"] for entry in parse_sitemap(body).entries] == ["http://h/a"]
    assert len(httpserver.log) == 0


def test_nested_entities_do_not_expand() -> None:
    """A billion-laughs sitemap stays small: entities are never substituted (libxml2 even
    stops at the declarations' amplification), so nothing large comes out."""
    levels = "".join(
        f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' if n else '<!ENTITY l0 "lol">' for n in range(10)
    )
    body = f"""<?xml version="1.0"?><!DOCTYPE urlset [{levels}]>
    <urlset {NS}><url><loc>http://h/&l9;</loc></url></urlset>""".encode()
    sitemap = parse_sitemap(body)
    assert len(repr(sitemap)) < 1000
    assert all("lol" not in entry["loc"] for entry in sitemap.entries)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"", "not XML", id="empty"),
        pytest.param(b"just text", "not XML", id="text"),
        pytest.param(b"<rss><channel/></rss>", "root element is <rss>", id="rss"),
    ],
)
def test_a_body_that_is_no_sitemap_is_malformed(body: bytes, message: str) -> None:
    """Bodies that are not a sitemap raise MalformedSitemap saying why."""
    with pytest.raises(MalformedSitemap, match=message):
        parse_sitemap(body)


def test_gunzip_inflates_a_gzip_file_within_the_limit() -> None:
    """A gzip file under the limit comes back whole, several members included."""
    member = zlib.compressobj(6, zlib.DEFLATED, 31)
    data = member.compress(b"a" * 1000) + member.flush()
    assert gunzip(data + data, 4000, "http://h/s.xml.gz") == b"a" * 2000


def test_gunzip_of_a_bomb_stops_at_the_limit_in_bounded_memory() -> None:
    """A gzip bomb (256 MiB of zeros) raises ResponseTooLarge at the limit, allocating about
    the limit, not the bomb's size."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    bomb = b"".join([*(packer.compress(block) for _ in range(256)), packer.flush()])
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge, match="MAX_RESPONSE_BYTES=2097152"):
            gunzip(bomb, 2 << 20, "http://h/bomb.xml.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_gunzip_of_garbage_is_a_decoding_error() -> None:
    """Bytes that only start like gzip are refused, naming the URL."""
    with pytest.raises(DecodingError, match=r"http://h/s\.xml\.gz: the gzip .* is corrupt"):
        gunzip(b"\x1f\x8b\x08\x00 not really", 1000, "http://h/s.xml.gz")


def test_gunzip_of_a_truncated_header_is_a_decoding_error() -> None:
    """A gzip header with nothing after it inflates to nothing: refused, not an empty file."""
    with pytest.raises(DecodingError, match="corrupt or truncated"):
        gunzip(b"\x1f\x8b\x08\x00", 1000, "http://h/s.xml.gz")


def test_a_sitemap_over_10_mb_reads_whole_and_clean() -> None:
    """libxml2 refuses one buffer over 10 MB without huge_tree: a legal sitemap that size (the
    protocol allows 50 MB) once read as malformed. Fed in chunks, every entry is read."""
    path = "a" * 250
    urls = "".join(f"<url><loc>http://h/{path}/{i}</loc></url>\n" for i in range(40_000))
    body = f"<urlset {NS}>{urls}</urlset>".encode()
    assert len(body) > 10_000_000
    sitemap = parse_sitemap(body)
    assert sitemap.errors == ""
    assert len(sitemap.entries) == 40_000
    assert sitemap.entries[-1]["loc"] == f"http://h/{path}/39999"
