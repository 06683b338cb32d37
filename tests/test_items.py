"""Items through itemadapter: Mappings, dataclasses, attrs classes and pydantic models."""

from __future__ import annotations

import json
from collections import UserDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import Response, Spider, crawl_async
from scrapekit.items import is_item, to_dict


@dataclass
class Book:
    title: str
    price: float


def test_dicts_mappings_and_dataclasses_are_items() -> None:
    """A dict, another Mapping and a dataclass instance are items; a class or a str is not."""
    assert is_item({"a": 1})
    assert is_item(UserDict(a=1))
    assert is_item(Book("x", 1.0))
    assert not is_item(Book)
    assert not is_item("text")
    assert not is_item(["a", 1])


def test_to_dict_keeps_field_order_and_is_shallow() -> None:
    """Fields come in declared order; nested items stay as they are for the exporters."""
    nested = Book("inner", 2.0)
    assert to_dict(Book("x", 1.0)) == {"title": "x", "price": 1.0}
    assert list(to_dict(Book("x", 1.0))) == ["title", "price"]
    assert to_dict(UserDict(a=nested)) == {"a": nested}


def test_a_non_item_is_a_one_line_type_error() -> None:
    """to_dict of something that is no item names its type and what to yield instead."""
    with pytest.raises(TypeError) as info:
        to_dict(42)
    assert str(info.value).startswith("int is not an item: yield a dict, a Mapping, a dataclass")
    assert "\n" not in str(info.value)


def test_attrs_instances_are_items() -> None:
    """An attrs class instance is an item, its fields in declared order."""
    attr = pytest.importorskip("attr")

    @attr.s(auto_attribs=True)
    class Quote:
        text: str
        author: str

    assert is_item(Quote("t", "a"))
    assert to_dict(Quote("t", "a")) == {"text": "t", "author": "a"}


def test_pydantic_models_are_items() -> None:
    """A pydantic model instance is an item (pydantic is in the test extra: never skipped)."""
    from pydantic import BaseModel

    class Quote(BaseModel):
        text: str
        author: str

    assert is_item(Quote(text="t", author="a"))
    assert to_dict(Quote(text="t", author="a")) == {"text": "t", "author": "a"}


async def test_every_item_kind_reaches_the_feed(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A crawl's callbacks yield a dict, a dataclass and an attrs instance (a nested dataclass
    inside one): the feed holds each as a JSON object."""
    attr = pytest.importorskip("attr")

    @attr.s(auto_attribs=True)
    class Shelf:
        name: str
        top: Book

    class Kinds(Spider):
        name = "kinds"

        def parse(self, response: Response) -> Any:
            yield {"kind": "dict"}
            yield Book("dataclass", 1.5)
            yield Shelf("attrs", Book("nested", 2.5))

    httpserver.expect_request("/").respond_with_data("<p>x</p>", content_type="text/html")
    out = tmp_path / "items.jsonl"
    await crawl_async(
        Kinds,
        {"STATE_DIR": str(tmp_path / "state"), "FEEDS": {str(out): {}}, "LOG_LEVEL": "WARNING"},
        start_urls=[httpserver.url_for("/")],
    )
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"kind": "dict"},
        {"title": "dataclass", "price": 1.5},
        {"name": "attrs", "top": {"title": "nested", "price": 2.5}},
    ]
