"""Contracts parsed from docstrings: names, arguments, {attribute} URLs, and bad contracts."""

from __future__ import annotations

from scrapekit import Spider
from scrapekit.contracts import Contract, parse_docstring, spider_contracts


class Shop(Spider):
    name = "shop"
    base_url = "http://shop.test"

    def parse(self, response: object) -> None:
        """A listing.

        @url {base_url}/list
        @meta {"page": 1}
        @returns requests 1 5
        """

    def parse_item(self, response: object) -> None:
        """@returns items 1
        @scrapes title
        """

    def parse_odd(self, response: object) -> None:
        """@url {nowhere}/x
        @returns things 1
        @cb_kwargs [1]
        """

    def helper(self) -> None:
        """No contracts here."""


def test_docstring_lines_become_contracts_in_order() -> None:
    """Each `@name args` line is one contract; other lines are ignored."""
    doc = "Text.\n\n  @url http://a.test/x \n@returns items 1 2\n@ lonely\nnot @this"
    assert parse_docstring(doc) == [
        Contract("url", "http://a.test/x"),
        Contract("returns", "items 1 2"),
        Contract("", "lonely"),
    ]


def test_url_fills_in_spider_attributes_and_reads_meta() -> None:
    """`{base_url}` comes from the spider; @meta is parsed; a valid callback has no problem."""
    parse = spider_contracts(Shop())[0]
    assert parse.callback == "parse"
    assert parse.url == "http://shop.test/list"
    assert parse.meta == {"page": 1}
    assert parse.problem is None
    assert [str(c) for c in parse.checks] == ["@returns requests 1 5"]


def test_bad_contracts_are_problems_not_skipped() -> None:
    """No @url, an unknown attribute, a bad @returns kind and non-object JSON each say why;
    a method without contracts is not listed."""
    by_name = {c.callback: c for c in spider_contracts(Shop())}
    assert set(by_name) == {"parse", "parse_item", "parse_odd"}
    assert by_name["parse_item"].problem == (
        "no @url line: add the page to check the other contracts against"
    )
    odd = by_name["parse_odd"].problem or ""
    assert "@url {nowhere}/x: cannot fill in 'nowhere'" in odd
    assert "@returns things 1: expected @returns items|requests [MIN [MAX]]" in odd
    assert "@cb_kwargs [1]: expected a JSON object" in odd


class Hostile(Spider):
    name = "hostile"

    def parse_scheme(self, response: object) -> None:
        """@url notaurl
        @returns items 1
        """

    def parse_bounds(self, response: object) -> None:
        """@url http://shop.test/x
        @returns items 3 1
        @scrapes
        """


def test_bad_url_bounds_and_empty_scrapes_are_problems() -> None:
    """An @url that cannot be fetched, MIN above MAX and @scrapes without fields fail their
    callback's row (a bad @url used to stop the whole check with no table)."""
    by_name = {c.callback: c for c in spider_contracts(Hostile())}
    assert by_name["parse_scheme"].problem == (
        "@url notaurl: no scheme; use an absolute http(s) URL or response.follow()"
    )
    bounds = by_name["parse_bounds"].problem or ""
    assert (
        "@returns items 3 1: expected @returns items|requests [MIN [MAX]], 0 <= MIN <= MAX"
        in bounds
    )
    assert "@scrapes names no field" in bounds
