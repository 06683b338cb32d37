"""Tests for scrapekit.pipelines.manager: loading, ordering, running and closing the stages."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from scrapekit.exceptions import ComponentError, DropItem, PipelineError
from scrapekit.pipelines import FeedPipeline, PipelineManager, PipelineStatistics
from tests.fakes import FakeCrawler, FakeSettings, MakeModule, pipeline_crawler


def crawler(**settings: Any) -> FakeCrawler:
    """A crawler whose settings came from settings.toml, for a spider called "spider"."""
    return pipeline_crawler(spider="spider", **settings)


class Recorder:
    """A stage that records its calls into a shared journal, tagging items with its name."""

    def __init__(self, journal: list[str], name: str) -> None:
        self.journal = journal
        self.name = name

    def open(self, spider: Any) -> None:
        self.journal.append(f"open {self.name}")

    def process_item(self, item: dict[str, Any], spider: Any) -> dict[str, Any]:
        item.setdefault("seen", []).append(self.name)
        return item

    def close(self, spider: Any) -> None:
        self.journal.append(f"close {self.name}")


class AsyncRecorder:
    """Recorder with async hooks."""

    def __init__(self, journal: list[str], name: str) -> None:
        self.journal = journal
        self.name = name

    async def open(self, spider: Any) -> None:
        self.journal.append(f"open {self.name}")

    async def process_item(self, item: dict[str, Any], spider: Any) -> dict[str, Any]:
        item.setdefault("seen", []).append(self.name)
        return item

    async def close(self, spider: Any) -> None:
        self.journal.append(f"close {self.name}")


class DropOdd:
    def process_item(self, item: dict[str, Any], spider: Any) -> dict[str, Any]:
        if item["n"] % 2:
            raise DropItem("odd number")
        return item


class DropSilently:
    async def process_item(self, item: dict[str, Any], spider: Any) -> dict[str, Any]:
        raise DropItem


class ReturnsNone:
    def process_item(self, item: dict[str, Any], spider: Any) -> None:
        item["touched"] = True


class FailsOnTwo:
    def process_item(self, item: dict[str, Any], spider: Any) -> dict[str, Any]:
        if item["n"] == 2:
            raise KeyError("price")
        return item


async def test_stages_run_in_order_number_order(make_module: MakeModule) -> None:
    """Stages loaded from PIPELINES run by order number, not by dict order."""
    module = make_module(
        """
        class Tag:
            def process_item(self, item, spider):
                item["seen"].append(type(self).__name__)
                return item
        class A(Tag): pass
        class B(Tag): pass
        class C(Tag): pass
        """
    )
    manager = PipelineManager.from_crawler(
        crawler(PIPELINES={f"{module}.C": 300, f"{module}.A": 100, f"{module}.B": 200})
    )
    async with manager:
        item = await manager.process_item({"seen": []})
    assert item == {"seen": ["A", "B", "C"]}


async def test_sync_and_async_stages_mix() -> None:
    """Sync and async stages run in one chain, and both kinds are opened and closed."""
    journal: list[str] = []
    stages: list[object] = [
        Recorder(journal, "s1"),
        AsyncRecorder(journal, "a1"),
        Recorder(journal, "s2"),
    ]
    async with PipelineManager(stages, "spider") as manager:
        item = await manager.process_item({})
    assert item == {"seen": ["s1", "a1", "s2"]}
    assert journal == ["open s1", "open a1", "open s2", "close s2", "close a1", "close s1"]


async def test_sync_stage_returning_an_awaitable_is_awaited() -> None:
    """A plain process_item that returns an awaitable (the Pipeline protocol allows it) works."""

    class Deferring:
        def process_item(self, item: dict[str, Any], spider: Any) -> Any:
            return AsyncRecorder([], "late").process_item(item, spider)

    async with PipelineManager([Deferring()]) as manager:
        assert await manager.process_item({}) == {"seen": ["late"]}


async def test_stage_without_process_item_is_skipped() -> None:
    """A stage with only open/close takes part in opening and closing, not in the chain."""
    journal: list[str] = []

    class OnlyHooks:
        def open(self, spider: Any) -> None:
            journal.append("open")

        def close(self, spider: Any) -> None:
            journal.append("close")

    async with PipelineManager([OnlyHooks()]) as manager:
        assert await manager.process_item({"n": 1}) == {"n": 1}
    assert journal == ["open", "close"]


async def test_drops_are_counted_by_reason() -> None:
    """DropItem's message is the reason; an empty message falls back to the stage's name."""
    manager = PipelineManager([DropOdd()])
    async with manager:
        results = [await manager.process_item({"n": n}) for n in range(5)]
    assert results == [{"n": 0}, None, {"n": 2}, None, {"n": 4}]
    silent = PipelineManager([DropSilently()])
    async with silent:
        assert await silent.process_item({"n": 0}) is None
    assert manager.statistics() == PipelineStatistics(
        items_in=5, items_out=3, dropped={"odd number": 2}, errors=0
    )
    assert silent.statistics().dropped == {"DropSilently": 1}


async def test_drop_is_logged_at_debug() -> None:
    """A drop logs "item dropped" at debug with its reason."""
    with capture_logs() as logs:
        async with PipelineManager([DropOdd()]) as manager:
            await manager.process_item({"n": 1})
    dropped = {"event": "item dropped", "reason": "odd number", "stage": "DropOdd"}
    assert {**dropped, "log_level": "debug"} in logs


async def test_none_return_counts_as_a_drop_and_logs_an_error() -> None:
    """A stage returning None drops the item and logs an error saying what to do instead."""
    later: list[str] = []
    manager = PipelineManager([ReturnsNone(), Recorder(later, "after")])
    with capture_logs() as logs:
        async with manager:
            assert await manager.process_item({"n": 1}) is None
    assert manager.statistics().dropped == {"ReturnsNone returned None": 1}
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["stage"] == "ReturnsNone"
    assert "DropItem" in errors[0]["fix"]
    assert "return the item" in errors[0]["fix"]


async def test_an_exception_is_counted_and_the_next_item_goes_through() -> None:
    """A stage raising on one item loses that item only; the error is logged with a traceback."""
    manager = PipelineManager([FailsOnTwo()])
    with capture_logs() as logs:
        async with manager:
            results = [await manager.process_item({"n": n}) for n in (1, 2, 3)]
    assert results == [{"n": 1}, None, {"n": 3}]
    stats = manager.statistics()
    assert (stats.items_in, stats.items_out, stats.errors, dict(stats.dropped)) == (3, 2, 1, {})
    [error] = [entry for entry in logs if entry["event"] == "pipeline error"]
    assert error["stage"] == "FailsOnTwo"
    assert error["error"] == "KeyError: 'price'"
    assert error["exc_info"] is True


async def test_open_failure_closes_opened_stages_and_raises() -> None:
    """If a stage fails to open, the ones before it close in reverse and PipelineError is raised."""
    journal: list[str] = []

    class FailsToOpen(Recorder):
        def open(self, spider: Any) -> None:
            raise OSError("disk\nfull")

    stages: list[object] = [
        Recorder(journal, "one"),
        AsyncRecorder(journal, "two"),
        FailsToOpen(journal, "three"),
        Recorder(journal, "four"),
    ]
    manager = PipelineManager(stages)
    with pytest.raises(PipelineError) as info:
        async with manager:
            pytest.fail("the body must not run")
    assert str(info.value) == "pipeline FailsToOpen failed to open: OSError: disk full"
    assert isinstance(info.value.__cause__, OSError)
    assert journal == ["open one", "open two", "close two", "close one"]


async def test_close_runs_in_reverse_even_when_one_fails() -> None:
    """Every opened stage is closed in reverse order; a failing close is raised afterwards."""
    journal: list[str] = []

    class FailsToClose(AsyncRecorder):
        async def close(self, spider: Any) -> None:
            journal.append(f"close {self.name}")
            raise RuntimeError("flush failed")

    manager = PipelineManager(
        [Recorder(journal, "one"), FailsToClose(journal, "two"), Recorder(journal, "three")]
    )
    with capture_logs() as logs, pytest.raises(PipelineError) as info:
        async with manager:
            pass
    assert journal[3:] == ["close three", "close two", "close one"]
    assert str(info.value) == "pipeline FailsToClose failed to close: RuntimeError: flush failed"
    assert [entry["stage"] for entry in logs if entry["event"] == "pipeline close failed"] == [
        "FailsToClose"
    ]


async def test_aclose_twice_closes_once() -> None:
    """A second aclose() has nothing left to close."""
    journal: list[str] = []
    manager = PipelineManager([Recorder(journal, "one")])
    await manager.open()
    await manager.aclose()
    await manager.aclose()
    assert journal == ["open one", "close one"]


def test_classes_are_refused_by_the_direct_constructor() -> None:
    """The direct constructor wants instances; classes go through PIPELINES."""
    with pytest.raises(TypeError, match="pass an instance"):
        PipelineManager([Recorder])


def test_not_configured_skips_a_stage(make_module: MakeModule) -> None:
    """A component raising NotConfigured is left out, and the others load."""
    module = make_module(
        """
        from scrapekit.exceptions import NotConfigured
        class Off:
            def __init__(self):
                raise NotConfigured("no API key")
        class On:
            def process_item(self, item, spider):
                return item
        """
    )
    with capture_logs() as logs:
        manager = PipelineManager.from_crawler(
            crawler(PIPELINES={f"{module}.Off": 1, f"{module}.On": 2})
        )
    assert [type(stage).__name__ for stage in manager.stages] == ["On"]
    assert any(entry["event"] == "pipeline disabled" for entry in logs)


def test_from_crawler_uses_from_crawler_and_the_spider() -> None:
    """Classes given directly are built with from_crawler, and the manager keeps the spider."""
    seen: list[object] = []

    class Built:
        @classmethod
        def from_crawler(cls, crawler: Any) -> Built:
            seen.append(crawler)
            return cls()

    fake = crawler(PIPELINES={Built: 1})
    manager = PipelineManager.from_crawler(fake)
    assert seen == [fake]
    assert manager.spider == "spider"


def test_bad_attribute_is_a_one_line_component_error(make_module: MakeModule) -> None:
    """A misspelt class names the path, the setting and its source, and what is missing."""
    module = make_module("class Validate:\n    pass\n")
    with pytest.raises(ComponentError) as info:
        PipelineManager.from_crawler(crawler(PIPELINES={f"{module}.Validat": 100}))
    assert str(info.value) == (
        f"cannot load '{module}.Validat' (PIPELINES from settings.toml): module '{module}'"
        " has no attribute 'Validat'; did you mean 'Validate'?"
    )


def test_bad_module_is_a_one_line_component_error() -> None:
    """A module that does not exist is named, with the setting."""
    with pytest.raises(ComponentError) as info:
        PipelineManager.from_crawler(crawler(PIPELINES={"no_such_project.pipelines.X": 1}))
    assert str(info.value) == (
        "cannot load 'no_such_project.pipelines.X' (PIPELINES from settings.toml):"
        " no module named 'no_such_project'"
    )


def test_false_disables_a_base_component(make_module: MakeModule) -> None:
    """PIPELINES can switch off a PIPELINES_BASE component with False."""
    module = make_module(
        """
        class Builtin:
            def process_item(self, item, spider): return item
        class Mine(Builtin): pass
        """
    )
    fake = crawler(
        PIPELINES_BASE={f"{module}.Builtin": 100},
        PIPELINES={f"{module}.Builtin": False, f"{module}.Mine": 200},
    )
    manager = PipelineManager.from_crawler(fake)
    assert [type(stage).__name__ for stage in manager.stages] == ["Mine"]


def test_base_errors_name_the_base_setting() -> None:
    """A broken PIPELINES_BASE entry is reported under PIPELINES_BASE."""
    with pytest.raises(ComponentError, match=r"\(PIPELINES_BASE from settings.toml\)"):
        PipelineManager.from_crawler(crawler(PIPELINES_BASE={"no_such_base.X": 1}))


def test_feeds_come_last(tmp_path: Path) -> None:
    """One FeedPipeline per FEEDS entry is added after the user pipelines."""
    fake = crawler(
        PIPELINES={DropOdd: 500},
        FEEDS={str(tmp_path / "a.jsonl"): {"overwrite": True}, str(tmp_path / "b.csv"): {}},
        FEED_EXPORT_FIELDS=["n"],
    )
    stages = PipelineManager.from_crawler(fake).stages
    assert [type(stage).__name__ for stage in stages] == ["DropOdd", "FeedPipeline", "FeedPipeline"]
    feeds = [stage for stage in stages if isinstance(stage, FeedPipeline)]
    assert [(feed.format, feed.overwrite, feed.fields) for feed in feeds] == [
        ("jsonl", True, ["n"]),
        ("csv", False, ["n"]),
    ]


def test_statistics_are_frozen() -> None:
    """statistics() is a snapshot that cannot be changed from outside."""
    stats = PipelineManager([]).statistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.errors = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats.dropped["x"] = 1  # type: ignore[index]


def test_manager_needs_no_settings_package() -> None:
    """The stand-in settings are enough: missing keys fall back to empty defaults."""
    manager = PipelineManager.from_crawler(FakeCrawler(FakeSettings(), "spider"))
    assert manager.stages == []
