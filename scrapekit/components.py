"""Components: user classes named by dotted path and order number in settings, loaded by one loader.

Reads no setting itself: callers pass the merged `*_BASE` and custom dicts (PIPELINES_BASE and
PIPELINES today) and the setting's name, so that a failure names where the path came from.
A class or an instance may be given instead of a dotted path (the Python API); it passes through.
A component may define `from_crawler(crawler)`, and may raise `NotConfigured` to switch itself off.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Mapping
from typing import Any, Protocol

from scrapekit.exceptions import ComponentError, NotConfigured


class SettingsLike(Protocol):
    """The part of `scrapekit.settings.Settings` that components and the pipeline manager use."""

    def __getitem__(self, key: str, /) -> Any: ...

    def source(self, key: str, /) -> str:
        """Where the value of `key` came from (e.g. "settings.toml"), for error messages."""
        ...


class CrawlerLike(Protocol):
    """What `from_crawler(crawler)` receives: the crawl's settings and spider."""

    @property
    def settings(self) -> SettingsLike: ...

    @property
    def spider(self) -> Any: ...


def describe(ref: object) -> str:
    """A component's name for messages: its dotted path, or where its class is defined."""
    if isinstance(ref, str):
        return ref
    cls = ref if isinstance(ref, type) else type(ref)
    return f"{cls.__module__}.{cls.__qualname__}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_object(path: str | object, *, setting: str | None = None) -> Any:
    """Import "package.module.Name" and return the attribute; anything not a str passes through.

    Raises:
        ComponentError: one line naming the path, the setting and what is missing.
    """
    if not isinstance(path, str):
        return path

    def fail(problem: str) -> ComponentError:
        where = f" ({setting})" if setting else ""
        return ComponentError(f"cannot load {path!r}{where}: {problem}")

    module_name, _, attr = path.strip().rpartition(".")
    if not module_name or not attr:
        raise fail("expected a dotted path like 'myproject.pipelines.Validate'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Tell "the module in the path does not exist" from "one of its own imports fails".
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise fail(f"no module named {missing!r}") from exc
        raise fail(f"importing module {module_name!r} failed: {_one_line(exc)}") from exc
    except Exception as exc:
        raise fail(f"importing module {module_name!r} failed: {_one_line(exc)}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        problem = f"module {module_name!r} has no attribute {attr!r}"
        public = [name for name in dir(module) if not name.startswith("_")]
        close = difflib.get_close_matches(attr, public, n=1)
        if close:
            problem += f"; did you mean {close[0]!r}?"
        raise fail(problem) from exc


def build_component(obj: str | object, crawler: CrawlerLike, *, setting: str) -> Any:
    """Build a component: `cls.from_crawler(crawler)` if defined, else `cls()`.

    Instances (anything not a class) pass through unchanged.

    A dotted path is loaded first. `NotConfigured` propagates, so the caller can skip the
    component; any other failure becomes a one-line `ComponentError` naming the component.
    """
    loaded = load_object(obj, setting=setting)
    if not isinstance(loaded, type):
        return loaded
    factory = getattr(loaded, "from_crawler", None)
    try:
        component = factory(crawler) if factory is not None else loaded()
    except (NotConfigured, ComponentError):
        raise
    except Exception as exc:
        raise ComponentError(
            f"cannot build {describe(obj)!r} ({setting}): {_one_line(exc)}"
        ) from exc
    if component is None:
        raise ComponentError(
            f"cannot build {describe(obj)!r} ({setting}): from_crawler() returned None"
        )
    return component


def _identity(ref: object) -> object:
    """The key under which two spellings of one component merge (a class matches its own path)."""
    return describe(ref) if isinstance(ref, type | str) else ref


def _same_component(a: object, b: object) -> bool:
    """Whether a dotted path names a class through an already imported module (a re-export).

    Only modules already imported are looked at: merging settings must not import anything.
    """
    if isinstance(a, type) and isinstance(b, str):
        a, b = b, a
    if not (isinstance(a, str) and isinstance(b, type)):
        return False
    module_name, _, attr = a.rpartition(".")
    module = sys.modules.get(module_name)
    return module is not None and getattr(module, attr, None) is b


def ordered_components(
    base: Mapping[Any, Any], custom: Mapping[Any, Any], *, setting: str | None = None
) -> list[Any]:
    """Merge `base` and `custom` (custom wins), drop those set to False or None, sort by order.

    Keys are dotted paths, classes or instances. Equal orders keep their listing order (base
    first). An order that is not an integer raises a one-line `ComponentError`.
    """
    merged: dict[object, tuple[object, Any]] = {}
    for ref, order in [*base.items(), *custom.items()]:
        key = _identity(ref)
        if key not in merged:
            # `{FeedPipeline: False}` must disable "scrapekit.pipelines.FeedPipeline" too.
            key = next((k for k, (r, _) in merged.items() if _same_component(r, ref)), key)
        merged[key] = (ref, order)

    enabled: list[tuple[int, object]] = []
    for ref, order in merged.values():
        if order is None or order is False:
            continue
        if isinstance(order, bool) or not isinstance(order, int):
            where = f"{setting}: " if setting else ""
            raise ComponentError(
                f"{where}order of {describe(ref)!r} must be an integer, or false to disable it;"
                f" got {order!r}"
            )
        enabled.append((order, ref))
    enabled.sort(key=lambda pair: pair[0])  # sort() is stable: ties keep their listing order
    return [ref for _, ref in enabled]
