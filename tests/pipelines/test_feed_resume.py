"""Feeds of a durable crawl go on after a crash: each truncates its file to the size it
recorded and the outbox replays what it may not hold, so the file ends as one uninterrupted
crawl would have written it. Real files and a real SQLite frontier under tmp_path.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scrapekit.exceptions import FeedNotResumable
from scrapekit.pipelines import FeedPipeline, PipelineManager
from scrapekit.pipelines.outbox import OutboxReader
from scrapekit.request import Request
from scrapekit.scheduler.frontier import Entry
from scrapekit.scheduler.frontier.base import PageItem
from scrapekit.scheduler.frontier.sqlite import SqliteFrontier
from scrapekit.stats import CrawlStats

FORMATS = ["jsonl", "csv", "json"]
#: What an earlier crawl left in an appended feed, per format.
EARLIER = {
    "jsonl": '{"n": -1, "text": "old"}\n',
    "csv": "n,text\r\n-1,old\r\n",
    "json": '[\n{"n": -1, "text": "old"}\n]\n',
}
TORN = {"jsonl": '{"n": 99, "te', "csv": '99,"half', "json": ',\n{"n": 99'}
N = 12


def item(n: int) -> dict[str, Any]:
    return {"n": n, "text": f'line {n}, "quoted"\nand é'}


@dataclass
class Crawl:
    """One run of a crawl's item path: frontier, feed, pipelines and outbox reader."""

    frontier: SqliteFrontier
    pipelines: PipelineManager
    feed: FeedPipeline
    reader: OutboxReader

    async def emit(self, numbers: range) -> None:
        """Commit items (as a page would) and wait until the feed has them."""
        page = [PageItem(f"start:{n}", item(n), None) for n in numbers]
        await self.frontier.commit(None, (), page)
        # The reader has no event for "this seq went through": poll it.
        while self.reader.delivered < self.frontier.last_seq:  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    async def close(self) -> None:
        """A graceful end: the backlog delivered, the marks recorded, the feed closed."""
        await self.reader.aclose()
        await self.pipelines.aclose()
        await self.frontier.aclose()

    async def crash(self) -> None:
        """What a kill leaves: records written past the last mark (flushed, not recorded), a
        torn record after them, no trailer, the part file's lock gone, the reader stopped."""
        task = self.reader._task
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        exporter = self.feed._exporter
        assert exporter is not None
        exporter.flush()
        fd = os.open(exporter.path, os.O_WRONLY | os.O_APPEND)
        os.write(fd, TORN[self.feed.format].encode())
        os.close(fd)
        exporter._file.close()
        self.feed._exporter = None
        self.feed._unlock()
        await self.frontier.aclose()


async def start(db: Path, out: Path, overwrite: bool) -> Crawl:
    """Open a run of the crawl: a resume if the frontier holds the feed's mark."""
    frontier = SqliteFrontier(db)
    await frontier.__aenter__()
    feed = FeedPipeline(out, overwrite=overwrite)
    pipelines = PipelineManager([feed])
    pipelines.resume_feeds(await frontier.feed_marks())
    try:
        await pipelines.open()
    except BaseException:
        await frontier.aclose()
        raise
    reader = OutboxReader(
        frontier, pipelines, CrawlStats(), stop=lambda _: None, count_error=lambda _: None,
        sync_every=3600,  # marks only where the test asks (and at open and close)
    )  # fmt: skip
    await reader.__aenter__()
    return Crawl(frontier, pipelines, feed, reader)


def pending() -> Entry:
    """A request left pending, so the crawl is unfinished after a graceful stop."""
    return Entry(Request("http://a.test/later"), b"later", "a.test")


async def crash_after_four(db: Path, out: Path) -> None:
    """An unfinished crawl (a request pending) killed with 4 items in its feed's mark."""
    crawl = await start(db, out, False)
    await crawl.frontier.push([pending()])
    await crawl.emit(range(4))
    await crawl.reader._sync()
    await crawl.crash()


async def uninterrupted(tmp_path: Path, fmt: str, overwrite: bool) -> str:
    out = tmp_path / "uninterrupted" / f"items.{fmt}"
    out.parent.mkdir()
    if not overwrite:
        out.write_bytes(EARLIER[fmt].encode())
    crawl = await start(tmp_path / "uninterrupted" / "state" / "frontier.db", out, overwrite)
    await crawl.emit(range(N))
    await crawl.close()
    return out.read_bytes().decode()


def parse(fmt: str, text: str) -> list[Any]:
    """The file's records, proving it is valid in its format."""
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    if fmt == "csv":
        return list(csv.reader(text.splitlines(keepends=True)))
    return list(json.loads(text))


def prepare(tmp_path: Path, fmt: str, overwrite: bool) -> Path:
    out = tmp_path / "crawl" / f"items.{fmt}"
    out.parent.mkdir()
    out.write_bytes((EARLIER[fmt] if not overwrite else "yesterday's file\n").encode())
    return out


@pytest.mark.parametrize("overwrite", [False, True], ids=["append", "overwrite"])
@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_crashed_feed_resumes_to_the_uninterrupted_file(
    tmp_path: Path, fmt: str, overwrite: bool
) -> None:
    """Crash after a sync with more items written past it and a torn tail; resume twice."""
    want = await uninterrupted(tmp_path, fmt, overwrite)
    out = prepare(tmp_path, fmt, overwrite)
    db = tmp_path / "crawl" / "state" / "frontier.db"
    crawl = await start(db, out, overwrite)
    await crawl.emit(range(4))
    await crawl.reader._sync()  # the feed's mark: 4 items
    await crawl.emit(range(4, 7))  # in the file, not in the mark
    await crawl.crash()
    if overwrite:
        assert out.read_text() == "yesterday's file\n"  # the target is untouched meanwhile
    crawl = await start(db, out, overwrite)  # resumed: replays 5..7
    await crawl.emit(range(7, 8))
    await crawl.crash()  # before any sync of this run: its first mark holds
    crawl = await start(db, out, overwrite)
    await crawl.emit(range(8, N))
    await crawl.close()
    text = out.read_bytes().decode()
    assert text == want
    assert len(parse(fmt, text)) == len(parse(fmt, want))
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("overwrite", [False, True], ids=["append", "overwrite"])
async def test_a_graceful_stop_then_resume_keeps_one_json_array(
    tmp_path: Path, overwrite: bool
) -> None:
    """A stopped crawl's JSON feed is closed with `]` (valid), and the resume truncates it
    back to its mark and continues the same array."""
    want = await uninterrupted(tmp_path, "json", overwrite)
    out = prepare(tmp_path, "json", overwrite)
    db = tmp_path / "crawl" / "state" / "frontier.db"
    crawl = await start(db, out, overwrite)
    await crawl.frontier.push([pending()])  # the crawl is unfinished
    await crawl.emit(range(5))
    await crawl.close()
    assert [row["n"] for row in json.loads(out.read_text())][-1] == 4
    crawl = await start(db, out, overwrite)
    await crawl.emit(range(5, N))
    await crawl.close()
    assert out.read_bytes().decode() == want


async def test_a_feed_file_shorter_than_its_mark_stops_the_resume(tmp_path: Path) -> None:
    """Someone truncated the file since the crash: one line naming the feed, nothing cut."""
    out = prepare(tmp_path, "jsonl", False)
    db = tmp_path / "crawl" / "state" / "frontier.db"
    await crash_after_four(db, out)
    out.write_text("short\n")
    with pytest.raises(FeedNotResumable, match=f"feed {out} cannot be resumed: .* is shorter"):
        await start(db, out, False)
    assert out.read_text() == "short\n"


async def test_a_replaced_feed_file_stops_the_resume(tmp_path: Path) -> None:
    """Another file now at the feed's path (same size or longer) is not truncated either."""
    out = prepare(tmp_path, "jsonl", False)
    db = tmp_path / "crawl" / "state" / "frontier.db"
    await crash_after_four(db, out)
    data = out.read_bytes().replace(b"line", b"LINE") + b"more\n"  # another file
    os.unlink(out)
    out.write_bytes(data)
    with pytest.raises(FeedNotResumable, match="is not the file the unfinished crawl wrote"):
        await start(db, out, False)
    assert out.read_bytes() == data


async def test_a_feed_resumed_in_another_format_stops_the_resume(tmp_path: Path) -> None:
    """FEEDS now gives the same file another format: one line, no csv rows after jsonl."""
    out = prepare(tmp_path, "jsonl", False)
    db = tmp_path / "crawl" / "state" / "frontier.db"
    await crash_after_four(db, out)
    held = out.read_bytes()
    async with SqliteFrontier(db) as frontier:
        pipelines = PipelineManager([FeedPipeline(out, overwrite=False, format="csv")])
        pipelines.resume_feeds(await frontier.feed_marks())
        with pytest.raises(FeedNotResumable, match="it holds jsonl and this run would add csv"):
            await pipelines.open()
    assert out.read_bytes() == held
