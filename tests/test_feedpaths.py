"""Feed path placeholders: which are known, how they expand, and the errors for the rest."""

from __future__ import annotations

import calendar

import pytest

from scrapekit import feedpaths
from scrapekit.feedpaths import PlaceholderError

STARTED = calendar.timegm((2026, 12, 2, 13, 39, 33)) + 0.75


def test_expand_fills_in_spider_time_and_run() -> None:
    path = "out/{spider}/{time}-{run:03d}.jsonl"
    assert feedpaths.expand(path, spider="shop", started=STARTED, run=7) == (
        "out/shop/2026-12-02T13-39-33Z-007.jsonl"
    )


def test_a_path_without_placeholders_is_unchanged_and_braces_can_be_escaped() -> None:
    assert feedpaths.expand("items.jsonl", spider="s", started=0, run=None) == "items.jsonl"
    assert feedpaths.expand("{{x}}-{run}.csv", spider="s", started=0, run=2) == "{x}-2.csv"
    assert feedpaths.used("{{spider}}.csv") == set()
    assert feedpaths.expand("{{x}}.csv", spider="s", started=0, run=None) == "{x}.csv"


def test_time_text_is_utc_without_colons() -> None:
    text = feedpaths.time_text(STARTED)
    assert text == "2026-12-02T13-39-33Z"
    assert ":" not in text


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("{spidr}.jsonl", "unknown placeholder {spidr}; did you mean {spider}?"),
        ("{date}.jsonl", "unknown placeholder {date}; known: {spider}, {time}, {run}"),
        ("{}.jsonl", "unknown placeholder {}"),
        ("{spider.jsonl", "expected '}' before end of string"),
        ("spider}.jsonl", "Single '}' encountered"),
        ("{run!r}.jsonl", "{run!r}: conversions are not supported"),
        ("{spider:d}.jsonl", "cannot expand"),
    ],
)
def test_bad_paths_are_refused_with_a_reason(path: str, message: str) -> None:
    with pytest.raises(PlaceholderError) as caught:
        feedpaths.used(path)
    assert message in str(caught.value)


def test_run_needs_a_run_number() -> None:
    with pytest.raises(PlaceholderError, match=r"\{run\} needs numbered runs"):
        feedpaths.expand("{run}.jsonl", spider="s", started=0, run=None)
    assert feedpaths.expand("{time}.jsonl", spider="s", started=0, run=None) == (
        "1970-01-01T00-00-00Z.jsonl"
    )


def test_expand_feeds_keeps_options_and_refuses_two_feeds_in_one_file() -> None:
    feeds = {"a-{spider}.jsonl": {"overwrite": True}, "b.csv": {}}
    assert feedpaths.expand_feeds(feeds, spider="s", started=0, run=1) == {
        "a-s.jsonl": {"overwrite": True},
        "b.csv": {},
    }
    with pytest.raises(PlaceholderError, match=r"expands to 'a-s\.jsonl', which another feed"):
        feedpaths.expand_feeds(
            {"a-s.jsonl": {}, "a-{spider}.jsonl": {}}, spider="s", started=0, run=1
        )
