"""Tests for the Settings class: priorities, sources, copies and typed accessors."""

from __future__ import annotations

import pytest

from scrapekit._version import __version__
from scrapekit.exceptions import SettingsError
from scrapekit.settings import PRIORITIES, Settings
from scrapekit.settings.defaults import DEFAULTS


def test_priorities() -> None:
    """The named priorities are ordered default < project < spider < env < cmdline."""
    assert PRIORITIES == {"default": 0, "project": 10, "spider": 20, "env": 30, "cmdline": 40}


def test_new_settings_hold_every_default() -> None:
    """Settings() holds every default, with source "default"."""
    settings = Settings()
    assert settings.as_dict() == DEFAULTS
    assert all(settings.source(key) == "default" for key in DEFAULTS)
    assert settings["USER_AGENT"] == f"scrapekit/{__version__}"


def test_defaults_are_valid() -> None:
    """Every default passes its own validator unchanged."""
    settings = Settings()
    settings.validate()
    assert settings.as_dict() == DEFAULTS


def test_defaults_are_not_shared() -> None:
    """Changing a Settings' list or dict value leaves the module defaults alone."""
    Settings()["SPIDER_MODULES"].append("changed")
    assert DEFAULTS["SPIDER_MODULES"] == ["spiders"]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        pytest.param("project", "cmdline", (2, "second"), id="higher-replaces"),
        pytest.param("cmdline", "project", (1, "first"), id="lower-ignored"),
        pytest.param("env", "env", (2, "second"), id="same-replaces"),
        pytest.param("spider", 25, (2, "second"), id="int-priority"),
        pytest.param("cmdline", 35, (1, "first"), id="int-priority-lower"),
    ],
)
def test_set_respects_priority(
    first: str | int, second: str | int, expected: tuple[int, str]
) -> None:
    """set() replaces a value set at the same or a lower priority, and ignores a lower one."""
    settings = Settings()
    settings.set("CONCURRENCY", 1, priority=first, source="first")
    settings.set("CONCURRENCY", 2, priority=second, source="second")
    assert (settings["CONCURRENCY"], settings.source("CONCURRENCY")) == expected


def test_set_source_defaults_to_priority_name() -> None:
    """Without a source, set() records the priority's name."""
    settings = Settings()
    settings.set("HTTP2", True, priority="env")
    assert settings.source("HTTP2") == "env"


def test_set_unknown_priority() -> None:
    """An unknown priority name is a programming error."""
    with pytest.raises(ValueError, match="unknown settings priority 'urgent'"):
        Settings().set("HTTP2", True, priority="urgent")


def test_update_sets_every_key() -> None:
    """update() sets each key at the given priority and source."""
    settings = Settings()
    settings.update({"HTTP2": True, "DEPTH_LIMIT": 3}, priority="project", source="settings.toml")
    assert (settings["HTTP2"], settings["DEPTH_LIMIT"]) == (True, 3)
    assert settings.source("DEPTH_LIMIT") == "settings.toml"


def test_mapping_access() -> None:
    """Settings reads like a mapping: [], get(), in, len() and iteration."""
    settings = Settings()
    assert settings["CONCURRENCY"] == 16
    assert settings.get("NOPE", "fallback") == "fallback"
    assert "CONCURRENCY" in settings
    assert "NOPE" not in settings
    assert list(settings) == list(DEFAULTS)
    assert len(settings) == len(DEFAULTS)
    with pytest.raises(KeyError):
        settings["NOPE"]


def test_copy_is_independent() -> None:
    """A copy keeps values and sources, and changes to it do not reach the original."""
    settings = Settings()
    settings.set("DEPTH_LIMIT", 2, priority="spider", source="spider x")
    clone = settings.copy()
    clone.set("DEPTH_LIMIT", 5, priority="cmdline")
    clone["FEEDS"]["a.csv"] = {}
    assert (settings["DEPTH_LIMIT"], settings.source("DEPTH_LIMIT"), settings["FEEDS"]) == (
        2,
        "spider x",
        {},
    )
    assert clone["DEPTH_LIMIT"] == 5


def test_as_dict_is_a_snapshot() -> None:
    """as_dict() returns a copy that can be changed freely."""
    settings = Settings()
    settings.as_dict()["DEFAULT_REQUEST_HEADERS"]["X"] = "y"
    assert "X" not in settings["DEFAULT_REQUEST_HEADERS"]


def test_validate_converts_values() -> None:
    """validate() stores each value converted to its type."""
    settings = Settings()
    settings.update({"DOWNLOAD_TIMEOUT": 5, "LOG_LEVEL": "debug", "SPIDER_MODULES": ("a",)})
    settings.validate()
    assert settings.as_dict() == {
        **DEFAULTS,
        "DOWNLOAD_TIMEOUT": 5.0,
        "LOG_LEVEL": "DEBUG",
        "SPIDER_MODULES": ["a"],
    }
    assert isinstance(settings["DOWNLOAD_TIMEOUT"], float)


def test_validate_raises_for_first_bad_value() -> None:
    """validate() raises SettingsError for the first bad value, naming its source."""
    settings = Settings()
    settings.set("CONCURRENCY", 0, priority="cmdline", source="-s CONCURRENCY=0")
    settings.set("HTTP2", "no", priority="project", source="settings.toml")
    with pytest.raises(SettingsError) as caught:
        settings.validate()
    assert str(caught.value) == "CONCURRENCY (-s CONCURRENCY=0): expected an integer >= 1, got 0"


def test_validate_rejects_unknown_key() -> None:
    """validate() rejects a key that is not a setting, suggesting the closest one."""
    settings = Settings()
    settings.update({"CONCURENCY": 1}, priority="project", source="settings.toml")
    with pytest.raises(SettingsError) as caught:
        settings.validate()
    assert str(caught.value) == (
        "CONCURENCY (settings.toml): unknown setting; did you mean CONCURRENCY?"
    )


def test_typed_accessors() -> None:
    """The typed accessors return each validated value in its type."""
    settings = Settings()
    settings.set("CLOSESPIDER_TIMEOUT", 2)
    assert settings.getint("CONCURRENCY") == 16
    assert settings.getfloat("CLOSESPIDER_TIMEOUT") == 2.0
    assert isinstance(settings.getfloat("CLOSESPIDER_TIMEOUT"), float)
    assert settings.getbool("HTTP2") is False
    assert settings.getlist("SPIDER_MODULES") == ["spiders"]
    assert settings.getdict("DEFAULT_REQUEST_HEADERS")["Accept-Language"] == "en"


def test_list_and_dict_accessors_return_copies() -> None:
    """getlist() and getdict() return copies, so callers cannot change the settings."""
    settings = Settings()
    settings.getlist("SPIDER_MODULES").append("x")
    settings.getdict("FEEDS")["x.csv"] = {}
    assert (settings["SPIDER_MODULES"], settings["FEEDS"]) == (["spiders"], {})


@pytest.mark.parametrize(
    ("getter", "key"),
    [
        pytest.param(Settings.getint, "DOWNLOAD_TIMEOUT", id="int-of-float"),
        pytest.param(Settings.getint, "HTTP2", id="int-of-bool"),
        pytest.param(Settings.getfloat, "USER_AGENT", id="float-of-str"),
        pytest.param(Settings.getbool, "CONCURRENCY", id="bool-of-int"),
        pytest.param(Settings.getlist, "FEEDS", id="list-of-dict"),
        pytest.param(Settings.getdict, "SPIDER_MODULES", id="dict-of-list"),
    ],
)
def test_accessor_on_wrong_type(getter: object, key: str) -> None:
    """A typed accessor used on a key of another type raises TypeError naming key and source."""
    assert callable(getter)
    with pytest.raises(TypeError, match=rf"^{key} is .* \(from default\), not "):
        getter(Settings(), key)


def test_accessor_on_unknown_key() -> None:
    """A typed accessor on a key that does not exist raises KeyError."""
    with pytest.raises(KeyError):
        Settings().getint("NOPE")
