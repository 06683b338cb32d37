"""PipelineManager: runs every item through the pipeline stages, in order (PIPELINES, FEEDS).

Reads PIPELINES_BASE and PIPELINES (dotted path or class -> order; false disables one), then
adds one FeedPipeline per FEEDS entry, last, so feeds see only the items that survived.
Each stage's `open`, `process_item` and `close` are optional and may be sync or async.
An item's failure never stops the crawl: drops are counted by reason, errors are logged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Self

import structlog

from scrapekit._resource import AsyncResource
from scrapekit._types import ItemLike
from scrapekit.components import (
    CrawlerLike,
    SettingsLike,
    build_component,
    describe,
    ordered_components,
)
from scrapekit.exceptions import (
    ComponentError,
    DropItem,
    FeedNotResumable,
    FeedUnwritable,
    NotConfigured,
    PipelineError,
    ScrapekitError,
)
from scrapekit.pipelines.feeds import FeedPipeline, mark_missed, missed
from scrapekit.scheduler.frontier.base import FeedMark

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineStatistics:
    """What the pipeline manager has seen so far."""

    items_in: int
    """Items handed to `process_item`."""
    items_out: int
    """Items that came out of the last stage."""
    dropped: Mapping[str, int] = field(default_factory=dict)
    """Dropped items by reason (the DropItem message, or the stage's class name)."""
    errors: int = 0
    """Items lost to an unexpected exception in a stage."""
    feeds: Mapping[str, int] = field(default_factory=dict)
    """Items each feed (by path) holds from this crawl once closed: 0 for a feed that failed
    to close or kept its previous file."""


@dataclass(slots=True)
class _Stage:
    """One stage with its hooks looked up, and sync/async decided, once at load."""

    obj: object
    name: str
    process: Callable[..., Any] | None
    process_is_async: bool
    open: Callable[..., Any] | None
    close: Callable[..., Any] | None

    @classmethod
    def of(cls, obj: object) -> _Stage:
        if isinstance(obj, type):
            raise TypeError(
                f"pipeline stage {obj.__name__} is a class: pass an instance, or list it in"
                " PIPELINES and use PipelineManager.from_crawler()"
            )
        process = getattr(obj, "process_item", None)
        return cls(
            obj=obj,
            name=type(obj).__name__,
            process=process,
            process_is_async=inspect.iscoroutinefunction(process),
            open=getattr(obj, "open", None),
            close=getattr(obj, "close", None),
        )


async def _call(hook: Callable[..., Any], *args: Any) -> Any:
    """Call a hook that may be sync or async (open and close run once: no need to cache this)."""
    result = hook(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _describe_error(exc: BaseException) -> str:
    # Our own errors already read as a sentence; others need their type to make sense.
    text = " ".join(str(exc).split())
    if isinstance(exc, ScrapekitError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _setting(settings: SettingsLike, key: str, default: Any) -> Any:
    try:
        value = settings[key]
    except KeyError:
        return default
    return default if value is None else value


def _where(settings: SettingsLike, key: str) -> str:
    """`KEY from <source>` for messages, or just `KEY` when the source is unknown."""
    try:
        source = settings.source(key)
    except (KeyError, AttributeError):
        return key
    return f"{key} from {source}" if source else key


class PipelineManager(AsyncResource):
    """Opens the stages, passes each item through them in order, closes them in reverse.

    An async resource: use `async with manager:` (or `aclose()` in a finally).
    """

    def __init__(self, stages: Sequence[object], spider: Any = None) -> None:
        self.spider = spider
        self._stages = [_Stage.of(stage) for stage in stages]
        # (name, process_item, is_async, feed path or None) per stage that has process_item:
        # the per-item hot path.
        self._chain = [
            (
                stage.name,
                stage.process,
                stage.process_is_async,
                str(stage.obj.path) if isinstance(stage.obj, FeedPipeline) else None,
            )
            for stage in self._stages
            if stage.process is not None
        ]
        self._opened: list[_Stage] = []
        self._state = "new"
        self._items_in = 0
        self._items_out = 0
        self._dropped: dict[str, int] = {}
        self._errors = 0
        self._absent: list[FeedMark] = []  # marks of feeds the crawl wrote and this run does not

    @classmethod
    def from_crawler(cls, crawler: CrawlerLike) -> Self:
        """Build the stages from PIPELINES_BASE, PIPELINES, FEEDS and FEED_EXPORT_FIELDS.

        Raises:
            ComponentError: a component that does not load or build, or a bad FEEDS entry.
        """
        settings = crawler.settings
        base = _setting(settings, "PIPELINES_BASE", {})
        custom = _setting(settings, "PIPELINES", {})
        stages: list[object] = []
        for ref in ordered_components(base, custom, setting=_where(settings, "PIPELINES")):
            key = "PIPELINES" if ref in custom else "PIPELINES_BASE"
            try:
                stages.append(build_component(ref, crawler, setting=_where(settings, key)))
            except NotConfigured as exc:
                log.debug("pipeline disabled", pipeline=describe(ref), reason=str(exc))
        fields = _setting(settings, "FEED_EXPORT_FIELDS", None) or None
        for path, options in _setting(settings, "FEEDS", {}).items():
            stages.append(_feed(path, options, fields, _where(settings, "FEEDS")))
        return cls(stages, crawler.spider)

    @property
    def stages(self) -> list[object]:
        """The stages, in the order items go through them."""
        return [stage.obj for stage in self._stages]

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def open(self) -> None:
        """Open every stage in order; if one fails, close those already open and raise.

        Raises:
            PipelineError: one line naming the stage that failed and why.
        """
        if self._state != "new":
            raise RuntimeError(f"PipelineManager cannot be opened twice (it is {self._state})")
        self._state = "open"
        for stage in self._stages:
            if stage.open is not None:
                try:
                    await _call(stage.open, self.spider)
                except BaseException as exc:
                    await self._close_opened()
                    if not isinstance(exc, Exception) or isinstance(
                        exc, FeedNotResumable | FeedUnwritable
                    ):
                        raise  # cancelled, or a one-line error of its own: let it go as is
                    raise PipelineError(
                        f"pipeline {stage.name} failed to open: {_describe_error(exc)}"
                    ) from exc
            self._opened.append(stage)

    async def aclose(self) -> None:
        """Close the opened stages in reverse order, all of them even if one fails.

        Raises:
            PipelineError: after closing the rest, naming the stages whose close failed.
        """
        failures = await self._close_opened()
        if failures:
            raise PipelineError(
                "; ".join(
                    f"pipeline {name} failed to close: {_describe_error(exc)}"
                    for name, exc in failures
                )
            ) from failures[0][1]

    async def _close_opened(self) -> list[tuple[str, Exception]]:
        self._state = "closed"
        failures: list[tuple[str, Exception]] = []
        interrupted: BaseException | None = None
        while self._opened:
            stage = self._opened.pop()
            if stage.close is None:
                continue
            try:
                await _call(stage.close, self.spider)
            except Exception as exc:
                log.exception("pipeline close failed", stage=stage.name, error=_describe_error(exc))
                failures.append((stage.name, exc))
            except BaseException as exc:
                # Cancelled while closing one stage: still close the others (a feed must get
                # its closing bracket), then let the cancellation through.
                interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted
        return failures

    async def process_item(self, item: ItemLike) -> ItemLike | None:
        """Run the item through every stage; the final item, or None if dropped or failed.

        A stage's failure is logged with its traceback and counted, and the crawl goes on,
        except a feed that cannot write: that raises PipelineError, since every later item
        would be lost too.
        """
        self._items_in += 1
        for name, process, is_async, feed in self._chain:
            try:
                if is_async:
                    result = await process(item, self.spider)
                else:
                    result = process(item, self.spider)
                    # The Pipeline protocol lets a plain function return an awaitable.
                    if inspect.isawaitable(result):
                        result = await result
            except DropItem as exc:
                self._drop(str(exc) or name, name)
                return None
            except Exception as exc:
                self._errors += 1
                if feed is not None:
                    raise PipelineError(
                        f"feed {feed} cannot be written: {_describe_error(exc)}; the crawl "
                        "stops so that no more items are lost"
                    ) from exc
                log.exception("pipeline error", stage=name, error=_describe_error(exc))
                return None
            if result is None:
                log.error(
                    "pipeline returned none",
                    stage=name,
                    fix="return the item to keep it, or raise DropItem to drop it",
                )
                self._drop(f"{name} returned None", name)
                return None
            item = result
        self._items_out += 1
        return item

    def _drop(self, reason: str, stage: str) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1
        log.debug("item dropped", reason=reason, stage=stage)

    def crawl_failed(self) -> None:
        """The crawl failed: an overwritten feed that got no item keeps its previous file."""
        for feed in self.feeds:
            feed.failed = True

    @property
    def feeds(self) -> list[FeedPipeline]:
        """The feed stages, in order."""
        return [stage.obj for stage in self._stages if isinstance(stage.obj, FeedPipeline)]

    def resume_feeds(self, marks: Mapping[str, FeedMark]) -> None:
        """Before open: each feed an unfinished crawl wrote continues its file from its mark.

        A feed it wrote that this run does not (another -o) is said once, and its mark kept
        for `missed_marks`.
        """
        feeds = self.feeds
        for feed in feeds:
            feed.resume(marks.get(feed.key))
        keys = {feed.key for feed in feeds}
        self._absent = [m for key, m in marks.items() if key not in keys and not missed(m)]
        for mark in self._absent:
            log.warning(
                "feed left out",
                path=mark.key,
                reason="the unfinished crawl wrote it and this run does not: it misses this "
                "run's items and cannot be resumed once it has",
            )

    def missed_marks(self, delivered: int) -> list[FeedMark]:
        """The marks of the feeds left out that the items up to `delivered` passed, each once,
        flagged so that the feed refuses to resume (recorded as the outbox rows go)."""
        passed = [mark for mark in self._absent if mark.seq < delivered]
        self._absent = [mark for mark in self._absent if mark.seq >= delivered]
        return [mark_missed(mark) for mark in passed]

    @property
    def error_count(self) -> int:
        """Stage failures so far (items lost to an exception, not to DropItem)."""
        return self._errors

    def statistics(self) -> PipelineStatistics:
        """A snapshot of the counters."""
        return PipelineStatistics(
            items_in=self._items_in,
            items_out=self._items_out,
            dropped=MappingProxyType(dict(self._dropped)),
            errors=self._errors,
            feeds=MappingProxyType({str(feed.path): feed.items_written for feed in self.feeds}),
        )


def _feed(path: object, options: object, fields: list[str] | None, where: str) -> FeedPipeline:
    """A FeedPipeline for one FEEDS entry, or a one-line ComponentError saying what is wrong."""
    if not isinstance(options, Mapping):
        raise ComponentError(
            f"{where}: the options of feed {path!r} must be a table like"
            ' {overwrite = false, format = "jsonl"}'
        )
    unknown = sorted(set(options) - {"overwrite", "format"})
    if unknown:
        raise ComponentError(
            f"{where}: unknown option {unknown[0]!r} for feed {path!r}; known: format, overwrite"
        )
    try:
        return FeedPipeline(
            str(path),
            overwrite=bool(options.get("overwrite", False)),
            format=options.get("format"),
            fields=fields,
        )
    except ComponentError as exc:
        raise ComponentError(f"{where}: {exc}") from exc
