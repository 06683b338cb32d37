"""Tests for scrapekit.pipelines.feeds: FEEDS entries written through the pipeline manager."""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from scrapekit.exceptions import ComponentError, DropItem, PipelineError
from scrapekit.pipelines import FeedPipeline, PipelineManager
from tests.fakes import FakeCrawler, pipeline_crawler


def crawler(**settings: Any) -> FakeCrawler:
    """A crawler whose settings came from the command line (-o/-O)."""
    return pipeline_crawler(where="cmdline", **settings)


class DropOdd:
    def process_item(self, item: dict[str, Any], spider: Any) -> dict[str, Any]:
        if item["n"] % 2:
            raise DropItem("odd")
        return item


@dataclasses.dataclass
class Product:
    name: str
    price: float


class FrozenMapping(Mapping[str, Any]):
    def __init__(self, **data: Any) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


async def crawl(feeds: dict[str, dict[str, Any]], items: list[Any], **settings: Any) -> None:
    manager = PipelineManager.from_crawler(crawler(FEEDS=feeds, **settings))
    async with manager:
        for item in items:
            await manager.process_item(item)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("name", "format", "want"),
    [
        pytest.param("items.jsonl", None, "jsonl", id="extension"),
        pytest.param("items.data", "csv", "csv", id="explicit"),
    ],
)
def test_format_from_entry_or_extension(name: str, format: str | None, want: str) -> None:
    """The feed's format is the entry's, else the file extension's."""
    assert FeedPipeline(name, overwrite=False, format=format).format == want


def test_unknown_extension_fails_at_construction() -> None:
    """An unknown extension fails before anything is opened, naming FEEDS and its source."""
    with pytest.raises(ComponentError) as info:
        PipelineManager.from_crawler(crawler(FEEDS={"items.txt": {"overwrite": True}}))
    assert str(info.value) == (
        "FEEDS from cmdline: cannot tell the feed format of 'items.txt' from its extension:"
        " use .jsonl, .jl, .ndjson, .json, .csv or give a format"
    )


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(True, id="not-a-table"),
        pytest.param({"overwrite": True, "indent": 2}, id="unknown-option"),
    ],
)
def test_bad_feed_options_fail_in_one_line(options: object) -> None:
    """A FEEDS entry whose options are not {overwrite, format} is refused in one line."""
    with pytest.raises(ComponentError, match=r"^FEEDS from cmdline: ") as info:
        PipelineManager.from_crawler(crawler(FEEDS={"items.json": options}))
    assert "\n" not in str(info.value)


async def test_feed_gets_the_items_that_survive(tmp_path: Path) -> None:
    """Feeds run after the user pipelines, so dropped items are not exported."""
    path = tmp_path / "out" / "items.json"
    await crawl(
        {str(path): {"overwrite": True}}, [{"n": n} for n in range(5)], PIPELINES={DropOdd: 1}
    )
    assert read_json(path) == [{"n": 0}, {"n": 2}, {"n": 4}]


async def test_every_feed_gets_every_item(tmp_path: Path) -> None:
    """Two FEEDS entries each get the same items, in their own formats."""
    jsonl, csv_path = tmp_path / "a.jsonl", tmp_path / "a.csv"
    feeds = {str(jsonl): {"overwrite": True}, str(csv_path): {"overwrite": True}}
    await crawl(feeds, [{"n": 1, "s": "x"}, {"n": 2, "s": "y"}])
    assert jsonl.read_text(encoding="utf-8") == '{"n": 1, "s": "x"}\n{"n": 2, "s": "y"}\n'
    assert csv_path.read_bytes() == b"n,s\r\n1,x\r\n2,y\r\n"


async def test_dataclass_and_mapping_items_are_exported(tmp_path: Path) -> None:
    """Items may be dataclasses or any Mapping, not only dicts."""
    path = tmp_path / "items.jsonl"
    await crawl({str(path): {}}, [Product("tea", 2.5), FrozenMapping(name="cup", price=4)])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"name": "tea", "price": 2.5},
        {"name": "cup", "price": 4},
    ]


async def test_feed_export_fields_choose_the_columns(tmp_path: Path) -> None:
    """FEED_EXPORT_FIELDS reach the exporter."""
    path = tmp_path / "items.csv"
    await crawl({str(path): {}}, [{"a": 1, "b": 2}], FEED_EXPORT_FIELDS=["b"])
    assert path.read_bytes() == b"b\r\n2\r\n"


async def test_append_then_overwrite(tmp_path: Path) -> None:
    """`-o` twice appends to a valid array; `-O` then starts the file over."""
    path = tmp_path / "items.json"
    await crawl({str(path): {"overwrite": False}}, [{"n": 1}])
    await crawl({str(path): {"overwrite": False}}, [{"n": 2}])
    assert read_json(path) == [{"n": 1}, {"n": 2}]
    await crawl({str(path): {"overwrite": True}}, [{"n": 3}])
    assert read_json(path) == [{"n": 3}]


async def test_append_onto_a_non_array_fails_at_open(tmp_path: Path) -> None:
    """Appending to a JSON file that is not an array stops the crawl at open, in one line."""
    path = tmp_path / "items.json"
    path.write_text('{"not": "an array"}', encoding="utf-8")
    with pytest.raises(PipelineError) as info:
        await crawl({str(path): {}}, [{"n": 1}])
    assert str(info.value) == (
        f"pipeline FeedPipeline failed to open: {path} is not a JSON array; use -O to overwrite it"
    )


async def test_cancelled_crawl_leaves_a_valid_json_file(tmp_path: Path) -> None:
    """A crawl cancelled mid-way still gets its closing bracket from aclose()."""
    path = tmp_path / "items.json"
    manager = PipelineManager.from_crawler(crawler(FEEDS={str(path): {"overwrite": True}}))
    exported = asyncio.Event()

    async def run() -> None:
        async with manager:
            for n in range(3):
                await manager.process_item({"n": n})
            exported.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(run())
    await exported.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert read_json(path) == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_close_logs_the_item_count(tmp_path: Path) -> None:
    """Closing a feed logs "feed written" with its path and the number of items."""
    path = tmp_path / "items.jsonl"
    with capture_logs() as logs:
        await crawl({str(path): {}}, [{"n": 1}, {"n": 2}])
    [written] = [entry for entry in logs if entry["event"] == "feed written"]
    assert (written["path"], written["items"]) == (str(path), 2)


def test_item_before_open_is_an_error(tmp_path: Path) -> None:
    """process_item before open() raises instead of losing the item silently."""
    feed = FeedPipeline(tmp_path / "items.jsonl", overwrite=True)
    with pytest.raises(RuntimeError, match="before open"):
        feed.process_item({"n": 1}, None)


def test_close_without_open_is_harmless(tmp_path: Path) -> None:
    """Closing a feed that never opened does nothing and creates no file."""
    feed = FeedPipeline(tmp_path / "items.jsonl", overwrite=True)
    feed.close(None)
    assert not (tmp_path / "items.jsonl").exists()


async def overwrite(path: Path, items: list[Any], *, failed: bool = False) -> None:
    """An `-O` feed run through the manager; `failed` marks the crawl as failed before close."""
    manager = PipelineManager.from_crawler(crawler(FEEDS={str(path): {"overwrite": True}}))
    async with manager:
        for item in items:
            await manager.process_item(item)
        if failed:
            manager.crawl_failed()


@pytest.mark.parametrize(
    ("items", "failed", "want"),
    [
        pytest.param([], True, [{"n": "old"}], id="failed-without-items-keeps-the-old-file"),
        pytest.param([{"n": 1}], True, [{"n": 1}], id="failed-with-items-replaces"),
        pytest.param([], False, [], id="success-without-items-replaces"),
        pytest.param([{"n": 1}], False, [{"n": 1}], id="success-replaces"),
    ],
)
async def test_overwrite_replaces_the_file_only_at_close(
    tmp_path: Path, items: list[Any], failed: bool, want: list[Any]
) -> None:
    """-O replaces the file when the crawl ends, except a failed crawl that got no item."""
    path = tmp_path / "items.json"
    path.write_text('[{"n": "old"}]\n', encoding="utf-8")
    await overwrite(path, items, failed=failed)
    assert read_json(path) == want
    assert sorted(os.listdir(tmp_path)) == ["items.json"]  # no temp file left


async def test_overwrite_leaves_the_old_file_in_place_while_running(tmp_path: Path) -> None:
    """Until the feed closes, readers (and a crash) see yesterday's file, not a truncated one."""
    path = tmp_path / "items.jsonl"
    path.write_text('{"n": "old"}\n', encoding="utf-8")
    manager = PipelineManager.from_crawler(crawler(FEEDS={str(path): {"overwrite": True}}))
    async with manager:
        await manager.process_item({"n": 1})
        assert path.read_text(encoding="utf-8") == '{"n": "old"}\n'
    assert path.read_text(encoding="utf-8") == '{"n": 1}\n'


async def test_overwrite_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    """`-O link.jsonl` (-> real.csv) writes JSON lines, as named, into the link's target."""
    real = tmp_path / "real.csv"
    real.write_text("a,b\r\n1,2\r\n", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    await overwrite(link, [{"n": 1}])
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8") == '{"n": 1}\n'


async def test_overwrite_gives_the_permissions_a_direct_write_would(tmp_path: Path) -> None:
    """A new file gets 0666 less the umask; an existing file keeps its mode."""
    umask = os.umask(0o022)
    os.umask(umask)
    new = tmp_path / "new.jsonl"
    await overwrite(new, [{"n": 1}])
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    kept = tmp_path / "kept.jsonl"
    kept.write_text("", encoding="utf-8")
    kept.chmod(0o640)
    await overwrite(kept, [{"n": 1}])
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def part_files(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".part"))


async def test_overwrite_removes_part_files_of_dead_writers(tmp_path: Path, dead_pid: int) -> None:
    """A `.NAME.<pid>.<random>.part` whose writer is gone (kill -9) is removed at the next open;
    other feeds' files and part files without a pid (older versions) are left alone."""
    path = tmp_path / "items.jsonl"
    stale = tmp_path / f".items.jsonl.{dead_pid}.0badc0de.part"
    stale.write_text('{"n": "half"', encoding="utf-8")
    other = tmp_path / f".other.jsonl.{dead_pid}.0badc0de.part"
    other.write_text("", encoding="utf-8")
    legacy = tmp_path / ".items.jsonl.0badc0de.part"
    legacy.write_text("", encoding="utf-8")
    with capture_logs() as logs:
        await overwrite(path, [{"n": 1}])
    assert path.read_text(encoding="utf-8") == '{"n": 1}\n'
    assert part_files(tmp_path) == sorted([other.name, legacy.name])
    assert [e["path"] for e in logs if e["event"] == "stale part file removed"] == [str(stale)]


async def test_overwrite_keeps_part_files_of_live_writers(tmp_path: Path, dead_pid: int) -> None:
    """Never a live crawl's file: one of a running process (this one), or one whose lock is
    held, whatever its pid says (a writer in another PID namespace sharing the folder)."""
    path = tmp_path / "items.jsonl"
    locked = tmp_path / f".items.jsonl.{dead_pid}.feedf00d.part"
    locked.write_text("", encoding="utf-8")
    fd = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        live = FeedPipeline(path, overwrite=True)
        live.open(None)
        try:
            [live_part] = set(part_files(tmp_path)) - {locked.name}
            assert live_part.startswith(f".items.jsonl.{os.getpid()}.")
            await overwrite(path, [{"n": 2}])  # a second writer of the same feed opens
            assert set(part_files(tmp_path)) == {locked.name, live_part}
        finally:
            live.close(None)
    finally:
        os.close(fd)
    assert part_files(tmp_path) == [locked.name]
