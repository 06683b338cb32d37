"""A crawl with the SQLite frontier stopped part-way and run again writes its feed exactly as
one uninterrupted crawl would: in-process crawls against a real HTTP server, real files."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from scrapekit import Response, Spider, crawl_async, current_item_id
from scrapekit.exceptions import FeedNotResumable

PAGES = 12
PER_PAGE = 3
ids: list[str | None] = []


class Chain(Spider):
    """Each page yields PER_PAGE items (one with a comma, a quote and a newline) and links on."""

    name = "chain"

    def parse(self, response: Response) -> Iterator[Any]:
        n = int(response.url.rsplit("/", 1)[1])
        for i in range(PER_PAGE):
            yield {"page": n, "i": i, "text": f'p{n}, "i{i}"\nend'}
        if n < PAGES - 1:
            yield response.follow(f"/{n + 1}")


class Ids:
    """A custom pipeline that records the id of every item it gets."""

    def process_item(self, item: Any, spider: Spider) -> Any:
        ids.append(current_item_id())
        return item


def serve(httpserver: HTTPServer) -> str:
    for n in range(PAGES):
        httpserver.expect_request(f"/{n}").respond_with_data(
            "<p>page</p>", content_type="text/html"
        )
    return httpserver.url_for("/0")


async def run(url: str, state: Path, out: Path, overwrite: bool, **settings: Any) -> dict[str, Any]:
    return await crawl_async(
        Chain,
        {
            "FRONTIER": "sqlite",
            "STATE_DIR": str(state),
            "FEEDS": {str(out): {"overwrite": overwrite}},
            "PIPELINES": {Ids: 100},
            "CONCURRENCY": 1,
            "ROBOTSTXT_OBEY": False,
            "RATE": 0,
            "LOG_LEVEL": "WARNING",
            **settings,
        },
        start_urls=[url],
    )


def records(fmt: str, text: str) -> list[Any]:
    """The file's records, proving it is valid in its format."""
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text, newline="")))
    return list(json.loads(text))


@pytest.mark.parametrize(
    ("fmt", "overwrite"),
    [("jsonl", False), ("json", True), ("csv", False), ("json", False)],
    ids=["jsonl-append", "json-overwrite", "csv-append", "json-append"],
)
async def test_a_stopped_crawl_run_again_writes_the_uninterrupted_feed(
    httpserver: HTTPServer, tmp_path: Path, fmt: str, overwrite: bool
) -> None:
    """CLOSESPIDER_PAGECOUNT stops run 1 (its feed closed and valid); run 2 resumes it to the
    end; the file equals the one an uninterrupted crawl writes, and the items' ids too."""
    url = serve(httpserver)
    ids.clear()
    whole = tmp_path / "whole" / f"items.{fmt}"
    stats = await run(url, tmp_path / "whole-state", whole, overwrite)
    assert stats["items"] == PAGES * PER_PAGE
    want, want_ids = whole.read_bytes(), list(ids)

    ids.clear()
    out = tmp_path / "parts" / f"items.{fmt}"
    state = tmp_path / "parts-state"
    first = await run(url, state, out, overwrite, CLOSESPIDER_PAGECOUNT=4)
    assert first["finish_reason"] == "closespider_pagecount"
    assert len(records(fmt, out.read_bytes().decode())) == first["items"] == 4 * PER_PAGE
    second = await run(url, state, out, overwrite)
    assert second["finish_reason"] == "finished"
    assert second["items"] == (PAGES - 4) * PER_PAGE
    assert out.read_bytes() == want
    assert len(records(fmt, want.decode())) == PAGES * PER_PAGE
    assert ids == want_ids  # the same stable id for every item
    with sqlite3.connect(state / "chain" / "frontier.db") as conn:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    conn.close()


async def test_a_resume_whose_feed_was_truncated_stops_with_one_line(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The feed is shorter than the stopped crawl left it: the resume raises a config error
    naming the feed (exit code 2 on the command line) and leaves the file alone."""
    url = serve(httpserver)
    out, state = tmp_path / "items.jsonl", tmp_path / "state"
    await run(url, state, out, False, CLOSESPIDER_PAGECOUNT=2)
    out.write_text("{}\n")
    with pytest.raises(FeedNotResumable, match=f"^feed {out} cannot be resumed: "):
        await run(url, state, out, False)
    assert out.read_text() == "{}\n"


async def test_a_feed_left_out_of_a_run_that_delivered_items_does_not_resume_with_a_gap(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Run 1 writes a.jsonl, run 2 (stopped too) writes b.jsonl: a.jsonl lacks run 2's
    items, so run 3 with a.jsonl again stops with one line instead of continuing it."""
    url = serve(httpserver)
    a, b, state = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "state"
    await run(url, state, a, False, CLOSESPIDER_PAGECOUNT=2)
    held = a.read_bytes()
    second = await run(url, state, b, False, CLOSESPIDER_PAGECOUNT=2)
    assert second["items"] == 2 * PER_PAGE  # delivered to b only
    with pytest.raises(FeedNotResumable, match=f"^feed {a} cannot be resumed: runs of this"):
        await run(url, state, a, False)
    assert a.read_bytes() == held
    # b was in every run since it began: it goes on; the crawl can finish with it.
    third = await run(url, state, b, False)
    assert third["finish_reason"] == "finished"
    assert len(b.read_text().splitlines()) == (PAGES - 2) * PER_PAGE
