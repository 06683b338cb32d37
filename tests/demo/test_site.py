"""The demo site over real loopback HTTP: listings, product pages, the API, transport, CLI."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import httpx2
import pytest

from scrapekit.demo import DemoSite
from scrapekit.demo.catalogue import CATEGORIES, build_catalogue
from scrapekit.demo.sessions import DEMO_SECRET, SessionToken, sign_token
from tests.demo.helpers import css_text, first, parse

HOME = "/catalogue/page-1.html"


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite() as demo:
        yield demo


def crawl_listing(http: httpx2.Client, start: str) -> tuple[list[str], list[str]]:
    """Follow `li.next a` from `start`; return the pages visited and the product paths found."""
    url, pages, products = start, [], []
    while url:
        response = http.get(url)
        assert response.status_code == 200, url
        page = parse(response)
        pages.append(httpx2.URL(url).path)
        products += [
            httpx2.URL(urljoin(url, a.attributes["href"] or "")).path
            for a in page.css("article.product h3 a")
        ]
        next_link = page.css_first("ul.pager li.next a")
        url = urljoin(url, next_link.attributes["href"] or "") if next_link else ""
    return pages, products


def test_root_redirects_to_first_listing_page(client: httpx2.Client) -> None:
    """`/` is a 302 to the first listing page."""
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["location"] == HOME


def test_listing_pages_link_every_product_once(site: DemoSite, client: httpx2.Client) -> None:
    """Following the pager visits 25 pages of 20 products and finds each product exactly once."""
    pages, products = crawl_listing(client, site.url + HOME)
    assert pages == [f"/catalogue/page-{n}.html" for n in range(1, 26)]
    assert products == [p.path for p in site.products]
    last = parse(client.get("/catalogue/page-25.html"))
    assert css_text(last, "ul.pager li.current") == "Page 25 of 25"
    assert first(last, "ul.pager li.previous a").attributes["href"] == "page-24.html"


def test_listing_page_shape(site: DemoSite, client: httpx2.Client) -> None:
    """A listing page is a 5-10 KB HTML5 page with prices, categories and the odd footer links."""
    response = client.get(HOME)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert 5_000 < len(response.content) < 10_500
    page = parse(response)
    article = first(page, "article.product")
    assert css_text(article, "p.price") == site.products[0].price_text
    assert first(article, "h3 a").attributes["title"] == site.products[0].title
    categories = [a.attributes["href"] for a in page.css("ul.categories a")]
    assert categories == [f"/catalogue/category/{slug}/" for slug, _ in CATEGORIES]
    hrefs = {a.attributes["href"] for a in page.css("footer a")}
    odd = {"mailto:", "tel:", "javascript:void(0)", "#content", "http://[broken"}
    assert all(any(marker in (h or "") for h in hrefs) for marker in odd)
    assert page.css_first("a.login") is not None
    assert page.css_first("ul.pager li.previous") is None


def test_category_pages_partition_the_catalogue(site: DemoSite, client: httpx2.Client) -> None:
    """Each category's paginated listing holds exactly the products of that category."""
    seen: list[str] = []
    for slug, _name in CATEGORIES:
        _, paths = crawl_listing(client, f"{site.url}/catalogue/category/{slug}/")
        assert paths == [p.path for p in site.products if p.category_slug == slug]
        seen += paths
    assert sorted(seen) == sorted(p.path for p in site.products)


def test_product_page_fields(site: DemoSite, client: httpx2.Client) -> None:
    """A product page shows title, price, UPC, category and the unicode description, no stock."""
    product = next(p for p in site.products if "\n" in p.description and not p.title.isascii())
    page = parse(client.get(product.path))
    assert css_text(page, "h1") == product.title
    assert css_text(page, "p.price") == product.price_text
    assert css_text(page, "table.product-info tr.upc td") == product.upc
    assert css_text(page, "table.product-info tr.category td") == product.category
    assert css_text(page, "div.description") == product.description
    assert page.css_first("p.stock") is None
    assert first(page, "p.login-required a").attributes["href"] == "/login"
    base = site.url + product.path
    crumbs = [urljoin(base, a.attributes["href"] or "") for a in page.css(".breadcrumb a")]
    assert crumbs == [site.url + HOME, f"{site.url}/catalogue/category/{product.category_slug}/"]


def test_every_product_has_a_unique_upc(site: DemoSite, client: httpx2.Client) -> None:
    """All 500 product pages serve, each with its own UPC."""
    upcs = [css_text(parse(client.get(p.path)), "tr.upc td") for p in site.products]
    assert upcs == [p.upc for p in site.products]
    assert len(set(upcs)) == 500


def test_unknown_paths_are_404_html(client: httpx2.Client) -> None:
    """Unknown paths, pages past the end and wrong slugs are 404 HTML pages."""
    for path in ["/nope", "/catalogue/page-26.html", "/catalogue/product/wrong-1/index.html"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert css_text(parse(response), "h1") == "Page not found"


def test_post_to_a_page_is_405(client: httpx2.Client) -> None:
    """Only /login accepts POST."""
    response = client.post(HOME, data={"a": "b"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_head_matches_get_without_body(client: httpx2.Client) -> None:
    """HEAD sends GET's status and Content-Length with no body."""
    get, head = client.get(HOME), client.head(HOME)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))


def test_json_api(site: DemoSite, client: httpx2.Client) -> None:
    """`/api/products?page=N` lists that page's products; bad pages are 400/404 JSON."""
    response = client.get("/api/products", params={"page": 2})
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert (data["page"], data["pages"], data["total"]) == (2, 25, 500)
    assert data["next"] == "/api/products?page=3"
    assert [p["upc"] for p in data["products"]] == [p.upc for p in site.products[20:40]]
    assert "stock" not in data["products"][0]
    assert client.get("/api/products", params={"page": 26}).status_code == 404
    assert client.get("/api/products", params={"page": "x"}).status_code == 400


def test_robots_txt(client: httpx2.Client) -> None:
    """robots.txt allows everything."""
    response = client.get("/robots.txt")
    assert response.text == "User-agent: *\nAllow: /\n"
    assert response.headers["content-type"].startswith("text/plain")


def test_keep_alive_reuses_the_connection(site: DemoSite) -> None:
    """Two requests travel over one HTTP/1.1 connection."""
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
    try:
        conn.request("GET", HOME)
        response = conn.getresponse()
        response.read()
        sock = conn.sock
        conn.request("GET", "/robots.txt")
        second = conn.getresponse()
        assert second.read() == b"User-agent: *\nAllow: /\n"
        assert not response.will_close
        assert conn.sock is sock
    finally:
        conn.close()


def test_stats_count_concurrent_requests() -> None:
    """Counters stay exact under concurrent requests."""
    with DemoSite(products=20) as demo:

        def fetch(_: int) -> None:
            with httpx2.Client(base_url=demo.url) as http:
                for _ in range(10):
                    http.get(HOME)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(fetch, range(8)))
        stats = demo.stats
        assert stats.requests == 80
        assert stats.by_path == {"/catalogue/page-": 80}


def test_delay_and_slow_endpoint() -> None:
    """`delay` slows every reply and `/slow?seconds=N` waits N seconds."""
    with DemoSite(products=1, delay=0.15) as demo, httpx2.Client(base_url=demo.url) as http:
        started = time.monotonic()
        http.get("/robots.txt")
        assert time.monotonic() - started >= 0.15
        started = time.monotonic()
        assert http.get("/slow", params={"seconds": 0.1}).status_code == 200
        assert time.monotonic() - started >= 0.25


def test_client_disconnects_are_quiet(site: DemoSite, capfd: pytest.CaptureFixture[str]) -> None:
    """Clients that vanish mid-request or mid-response make the server print nothing."""
    with socket.create_connection(("127.0.0.1", site.port)) as sock:
        sock.sendall(b"GET /catalogue/page-1.html HTTP/1.1\r\nHost: x\r\n")  # never finished
    with socket.create_connection(("127.0.0.1", site.port)) as sock:
        sock.sendall(b"GET /catalogue/page-2.html HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert httpx2.get(site.url + "/robots.txt").status_code == 200
    time.sleep(0.05)
    assert capfd.readouterr() == ("", "")


def test_stop_is_idempotent_and_closes_connections() -> None:
    """`stop()` twice is fine, and open keep-alive connections are closed by it."""
    demo = DemoSite(products=1)
    url = demo.start()
    assert demo.start() == url
    with httpx2.Client() as http:
        assert http.get(url + "/robots.txt").status_code == 200
        demo.stop()
        demo.stop()
        with pytest.raises(httpx2.TransportError):
            http.get(url + "/robots.txt")
    with pytest.raises(RuntimeError):
        demo.start()


async def test_async_context_manager() -> None:
    """`async with DemoSite()` starts and stops the site without blocking the loop."""
    async with DemoSite(products=1) as demo, httpx2.AsyncClient(base_url=demo.url) as http:
        assert (await http.get("/robots.txt")).status_code == 200
    assert "stopped" in repr(demo)


@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_serve(tmp_path: Path, signum: signal.Signals) -> None:
    """`serve` prints its URL, writes --url-file, serves with --secret, exits 0 on the signal."""
    url_file = tmp_path / "url.txt"
    command = [sys.executable, "-m", "scrapekit.demo", "serve", "--port", "0"]
    command += ["--url-file", str(url_file), "--products", "30", "--session-max-requests", "5"]
    command += ["--secret", "cli-secret"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        deadline = time.monotonic() + 10
        while not url_file.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no URL file within 10 s"
            time.sleep(0.02)
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # printed (and flushed) before the file is written
        assert url.startswith("http://127.0.0.1:")
        assert url_file.read_text() == url + "\n"
        page = parse(httpx2.get(url + "/catalogue/page-2.html"))
        assert css_text(page, "ul.pager li.current") == "Page 2 of 2"
        product = build_catalogue(30)[0].path
        for secret, status in [("cli-secret", 200), (DEMO_SECRET, 302)]:
            token = sign_token(secret, SessionToken("demo", int(time.time() * 1000), "n" * 16))
            response = httpx2.get(url + product, cookies={"sessionid": token})
            assert response.status_code == status, secret
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=5)
        assert proc.returncode == 0, stderr
        assert (stdout, stderr) == ("", "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
