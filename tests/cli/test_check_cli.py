"""`scrapekit check`: docstring contracts run against a loopback site, as a child process."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Project

pytestmark = pytest.mark.subprocess

LISTING = """<html><body>
<a class="book" href="/book/1">one</a><a class="book" href="/book/2">two</a>
</body></html>"""
BOOK = "<html><body><h1>One</h1><p class='price'>3.50</p></body></html>"

SPIDER = '''
from scrapekit import Spider


class Books(Spider):
    name = "books"

    def parse(self, response):
        """A listing: one request per book.

        @url {base}/list
        @returns requests 2 2
        @returns items 0 0
        """
        for link in response.css("a.book"):
            yield response.follow(link, callback=self.parse_book)

    def parse_book(self, response{shelf_param}):
        """@url {base}/book/1
        @cb_kwargs {{"shelf": "top"}}
        @returns items 1
        @scrapes title price shelf
        """
        item = {{"title": response.css_first("h1").text()}}
        item["price"] = response.css_first("p.price").text()
        {shelf_line}
        yield item

    def helper(self):
        """Not a callback: no contracts."""
'''


@pytest.fixture
def site(httpserver: HTTPServer) -> HTTPServer:
    """A listing with two book links and a book page."""
    httpserver.expect_request("/list").respond_with_data(LISTING, content_type="text/html")
    httpserver.expect_request("/book/1").respond_with_data(BOOK, content_type="text/html")
    return httpserver


def books_spider(base: str, *, scrapes_shelf: bool) -> str:
    """The spider's source; `scrapes_shelf` makes parse_book yield the field its contract
    asks for (and take the cb_kwargs it is given)."""
    if scrapes_shelf:
        return SPIDER.format(base=base, shelf_param=", shelf", shelf_line='item["shelf"] = shelf')
    source = SPIDER.format(base=base, shelf_param="", shelf_line="")
    return source.replace('        @cb_kwargs {"shelf": "top"}\n', "")


def test_passing_contracts_print_a_table_and_exit_0(project: Project, site: HTTPServer) -> None:
    """Every contract passes: one ok row each, a summary line, exit 0."""
    project.add_spider("books", books_spider(site.url_for("").rstrip("/"), scrapes_shelf=True))
    result = project.run("check", "books")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["SPIDER", "CALLBACK", "CONTRACT", "RESULT", "DETAIL"]
    assert [(r[1], r[-1]) for r in rows[1:-1]] == [
        ("parse", "ok"), ("parse", "ok"), ("parse", "ok"),
        ("parse_book", "ok"), ("parse_book", "ok"), ("parse_book", "ok"),
    ]  # fmt: skip
    assert result.stdout.splitlines()[-1] == "checked 1 spider: 6 passed, 0 failed"


def test_a_failing_contract_says_why_and_exits_1(project: Project, site: HTTPServer) -> None:
    """An item that lacks a @scrapes field fails that row with the field named, exit 1."""
    project.add_spider("books", books_spider(site.url_for("").rstrip("/"), scrapes_shelf=False))
    result = project.run("check")
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if " FAIL " in line]
    assert len(failed) == 1
    assert "@scrapes title price shelf" in failed[0]
    assert failed[0].endswith("item 1 of 1 lacks shelf")
    assert result.stdout.splitlines()[-1] == "checked 1 spider: 5 passed, 1 failed"


def test_returns_bounds_and_fetch_errors_fail(project: Project, site: HTTPServer) -> None:
    """A count outside @returns' bounds, a 404 @url and an unknown contract each fail."""
    base = site.url_for("").rstrip("/")
    project.add_spider(
        "bad",
        f'''
from scrapekit import Spider

class Bad(Spider):
    name = "bad"

    def parse(self, response):
        """@url {base}/list
        @returns requests 3
        """
        for link in response.css("a.book"):
            yield response.follow(link)

    def parse_missing(self, response):
        """@url {base}/gone
        @returns items 1
        """

    def parse_typo(self, response):
        """@url {base}/list
        @retunrs items 1
        """
''',
    )
    site.expect_request("/gone").respond_with_data("gone", status=404)
    result = project.run("check", "bad")
    assert result.returncode == 1
    out = result.stdout
    assert "got 2 requests, expected 3.." in out
    assert "HTTP 404 is not handled" in out
    assert "unknown contract @retunrs" in out
    assert out.splitlines()[-1] == "checked 1 spider: 1 passed, 3 failed"


def test_spider_without_contracts_and_listing(project: Project, site: HTTPServer) -> None:
    """A spider without contracts is reported as such (exit 0); -l lists contracts unrun."""
    project.add_spider(
        "plain", "from scrapekit import Spider\nclass Plain(Spider):\n    name = 'plain'\n"
    )
    project.add_spider("books", books_spider(site.url_for("").rstrip("/"), scrapes_shelf=True))
    result = project.run("check", "plain")
    assert result.returncode == 0
    assert "no contracts in its docstrings" in result.stdout
    listed = project.run("check", "-l")
    assert listed.returncode == 0, listed.stderr
    assert "@returns requests 2 2" in listed.stdout
    assert "plain" in listed.stdout
    assert not site.log  # listing fetches nothing
