"""Tests for scrapekit.components: loading dotted paths, building components, ordering them."""

from __future__ import annotations

import json

import pytest

from scrapekit.components import build_component, describe, load_object, ordered_components
from scrapekit.exceptions import ComponentError, NotConfigured
from tests.fakes import FakeCrawler, FakeSettings, MakeModule


class Plain:
    pass


class WithFromCrawler:
    def __init__(self, crawler: FakeCrawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: FakeCrawler) -> WithFromCrawler:
        return cls(crawler)


class SwitchedOff:
    def __init__(self) -> None:
        raise NotConfigured("no API key")


class Broken:
    def __init__(self) -> None:
        raise ValueError("bad\nconfig")


# -- load_object ----------------------------------------------------------------------------


def test_load_object_passes_objects_through() -> None:
    """A class or instance given instead of a path is returned unchanged."""
    instance = Plain()
    assert load_object(Plain) is Plain
    assert load_object(instance) is instance


def test_load_object_imports_a_dotted_path() -> None:
    """A dotted path is imported and its attribute returned."""
    assert load_object("json.dumps") is json.dumps


def test_load_object_missing_attribute_is_one_line(make_module: MakeModule) -> None:
    """A misspelt attribute names the path, the setting, the module and a close match."""
    module = make_module("class Validate:\n    pass\n")
    with pytest.raises(ComponentError) as info:
        load_object(f"{module}.Validat", setting="PIPELINES")
    assert str(info.value) == (
        f"cannot load '{module}.Validat' (PIPELINES): module '{module}' has no attribute"
        " 'Validat'; did you mean 'Validate'?"
    )


def test_load_object_missing_module_is_one_line() -> None:
    """A module that does not exist is named in a one-line error."""
    with pytest.raises(ComponentError) as info:
        load_object("nope_pkg_for_tests.pipelines.Validate", setting="PIPELINES")
    assert str(info.value) == (
        "cannot load 'nope_pkg_for_tests.pipelines.Validate' (PIPELINES):"
        " no module named 'nope_pkg_for_tests'"
    )


def test_load_object_failing_import_inside_the_module(make_module: MakeModule) -> None:
    """A module whose own import fails is reported as such, not as a missing module."""
    module = make_module("import nope_dependency_for_tests\n")
    with pytest.raises(ComponentError, match="importing module") as info:
        load_object(f"{module}.Thing")
    assert "nope_dependency_for_tests" in str(info.value)
    assert "\n" not in str(info.value)


def test_load_object_module_raising_on_import(make_module: MakeModule) -> None:
    """Any exception while importing the module becomes a one-line ComponentError."""
    module = make_module("raise RuntimeError('boom\\nsecond line')\n")
    with pytest.raises(ComponentError) as info:
        load_object(f"{module}.Thing", setting="PIPELINES")
    assert str(info.value) == (
        f"cannot load '{module}.Thing' (PIPELINES): importing module '{module}' failed:"
        " RuntimeError: boom second line"
    )


@pytest.mark.parametrize(
    "path", ["Validate", ".Validate", "pkg."], ids=["bare", "dot-first", "dot-last"]
)
def test_load_object_rejects_a_path_without_module(path: str) -> None:
    """A string that is not "module.Name" fails with a hint of the expected shape."""
    with pytest.raises(ComponentError, match="expected a dotted path"):
        load_object(path)


# -- build_component ------------------------------------------------------------------------


def test_build_component_prefers_from_crawler() -> None:
    """A class with from_crawler is built by it and receives the crawler."""
    crawler = FakeCrawler(FakeSettings())
    component = build_component(WithFromCrawler, crawler, setting="PIPELINES")
    assert isinstance(component, WithFromCrawler)
    assert component.crawler is crawler


def test_build_component_calls_the_class_without_from_crawler() -> None:
    """A class without from_crawler is called with no arguments."""
    assert isinstance(build_component(Plain, FakeCrawler(FakeSettings()), setting="X"), Plain)


def test_build_component_passes_instances_through() -> None:
    """An instance is used as it is."""
    instance = Plain()
    assert build_component(instance, FakeCrawler(FakeSettings()), setting="X") is instance


def test_build_component_loads_dotted_paths(make_module: MakeModule) -> None:
    """A dotted path is loaded, then built."""
    module = make_module("class Thing:\n    pass\n")
    component = build_component(f"{module}.Thing", FakeCrawler(FakeSettings()), setting="X")
    assert type(component).__name__ == "Thing"


def test_build_component_lets_not_configured_through() -> None:
    """NotConfigured propagates so the caller can skip the component."""
    with pytest.raises(NotConfigured, match="no API key"):
        build_component(SwitchedOff, FakeCrawler(FakeSettings()), setting="PIPELINES")


def test_build_component_wraps_other_failures_in_one_line() -> None:
    """A constructor failure becomes a one-line ComponentError naming the component."""
    with pytest.raises(ComponentError) as info:
        build_component(Broken, FakeCrawler(FakeSettings()), setting="PIPELINES")
    assert str(info.value) == (
        f"cannot build '{describe(Broken)}' (PIPELINES): ValueError: bad config"
    )


# -- ordered_components ---------------------------------------------------------------------


def test_ordered_components_sorts_by_order_not_listing() -> None:
    """Components come out by order number, whatever the dict order."""
    assert ordered_components({"a.C": 300, "a.A": 100}, {"a.B": 200}) == ["a.A", "a.B", "a.C"]


def test_ordered_components_ties_keep_listing_order() -> None:
    """Equal order numbers keep base-then-custom listing order."""
    assert ordered_components({"a.X": 5, "a.Y": 5}, {"a.Z": 5, "a.W": 1}) == [
        "a.W",
        "a.X",
        "a.Y",
        "a.Z",
    ]


@pytest.mark.parametrize("off", [False, None], ids=["false", "none"])
def test_ordered_components_disables_base_entries(off: object) -> None:
    """False or None in the custom dict removes a component listed in base."""
    assert ordered_components({"a.A": 1, "a.B": 2}, {"a.A": off}) == ["a.B"]


def test_ordered_components_custom_order_wins() -> None:
    """The custom dict can move a base component."""
    assert ordered_components({"a.A": 1, "a.B": 2}, {"a.A": 3}) == ["a.B", "a.A"]


def test_ordered_components_class_disables_its_path() -> None:
    """A class key disables the same component listed by dotted path (also a re-export)."""
    path = f"{__name__}.Plain"
    assert ordered_components({path: 1, "a.B": 2}, {Plain: False}) == ["a.B"]
    assert ordered_components({Plain: 1}, {path: 5, "a.B": 2}) == ["a.B", path]


def test_ordered_components_rejects_non_integer_order() -> None:
    """An order that is not an integer fails in one line naming the setting."""
    with pytest.raises(ComponentError) as info:
        ordered_components({}, {"a.A": "high"}, setting="PIPELINES")
    assert str(info.value) == (
        "PIPELINES: order of 'a.A' must be an integer, or false to disable it; got 'high'"
    )


def test_ordered_components_rejects_true() -> None:
    """True is not an order number."""
    with pytest.raises(ComponentError, match="must be an integer"):
        ordered_components({}, {"a.A": True})
