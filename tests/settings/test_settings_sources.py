"""Tests for reading the settings layers (scrapekit/settings/sources.py) through Settings.load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scrapekit.exceptions import SettingsError
from scrapekit.settings import Settings
from scrapekit.settings.sources import read_cmdline, read_environment


def write_toml(tmp_path: Path, text: str) -> Path:
    """Write a settings.toml with `text` and return its path."""
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


class BooksSpider:
    """A plain class with custom_settings: all Settings.load needs from a spider."""

    name = "books"
    custom_settings: dict[str, Any] = {"CONCURRENCY": 3, "DEPTH_LIMIT": 2}


def load(**kwargs: Any) -> Settings:
    """Settings.load with no layers except those given."""
    return Settings.load(
        project_file=kwargs.pop("project_file", None),
        spider_cls=kwargs.pop("spider_cls", None),
        env=kwargs.pop("env", {}),
        **kwargs,
    )


# -- layering --------------------------------------------------------------------------------


def test_no_layers_gives_defaults() -> None:
    """With no project file, spider, environment or -s, every value is the default."""
    settings = load()
    assert settings.as_dict() == Settings().as_dict()
    assert settings.source("CONCURRENCY") == "default"


@pytest.mark.parametrize(
    ("layers", "value", "source"),
    [
        pytest.param({}, 16, "default", id="default"),
        pytest.param({"toml": True}, 4, "settings.toml", id="project-beats-default"),
        pytest.param(
            {"toml": True, "spider": True}, 3, "custom_settings of spider 'books'", id="spider"
        ),
        pytest.param(
            {"toml": True, "spider": True, "env": True},
            5,
            "environment SCRAPEKIT_CONCURRENCY",
            id="env-beats-spider",
        ),
        pytest.param(
            {"toml": True, "spider": True, "env": True, "cmdline": True},
            8,
            "-s CONCURRENCY=8",
            id="cmdline-beats-env",
        ),
        pytest.param(
            {"toml": True, "spider": True, "env": True, "cmdline": True, "overrides": True},
            9,
            "crawl(settings=...)",
            id="overrides-beat-cmdline",
        ),
        pytest.param({"toml": True, "env": True}, 5, "environment SCRAPEKIT_CONCURRENCY", id="gap"),
    ],
)
def test_each_layer_beats_the_one_below(
    tmp_path: Path, layers: dict[str, bool], value: int, source: str
) -> None:
    """Each layer overrides the ones below it, and source() names the winning layer."""
    settings = load(
        project_file=write_toml(tmp_path, "CONCURRENCY = 4") if layers.get("toml") else None,
        spider_cls=BooksSpider if layers.get("spider") else None,
        env={"SCRAPEKIT_CONCURRENCY": "5"} if layers.get("env") else {},
        cmdline=["CONCURRENCY=8"] if layers.get("cmdline") else [],
        overrides={"CONCURRENCY": 9} if layers.get("overrides") else None,
    )
    assert settings["CONCURRENCY"] == value
    assert settings.source("CONCURRENCY") == source


def test_layers_mix_per_key(tmp_path: Path) -> None:
    """Each key takes its value from its own highest layer."""
    settings = load(
        project_file=write_toml(tmp_path, 'CONCURRENCY = 4\nUSER_AGENT = "bot/1"'),
        spider_cls=BooksSpider,
        cmdline=["HTTP2=true"],
    )
    assert (settings["USER_AGENT"], settings.source("USER_AGENT")) == ("bot/1", "settings.toml")
    assert settings.source("DEPTH_LIMIT") == "custom_settings of spider 'books'"
    assert (settings["HTTP2"], settings.source("HTTP2")) == (True, "-s HTTP2=true")
    assert settings.source("PROGRESS") == "default"


def test_later_cmdline_argument_wins() -> None:
    """Of two -s arguments for the same key, the later one wins."""
    settings = load(cmdline=["CONCURRENCY=2", "CONCURRENCY=7"])
    assert (settings["CONCURRENCY"], settings.source("CONCURRENCY")) == (7, "-s CONCURRENCY=7")


def test_load_validates_typed_layers(tmp_path: Path) -> None:
    """Values from settings.toml are validated and converted by load()."""
    settings = load(project_file=write_toml(tmp_path, 'DOWNLOAD_TIMEOUT = 5\nLOG_LEVEL = "debug"'))
    assert settings["DOWNLOAD_TIMEOUT"] == 5.0
    assert isinstance(settings["DOWNLOAD_TIMEOUT"], float)
    assert settings["LOG_LEVEL"] == "DEBUG"


# -- settings.toml -----------------------------------------------------------------------------


def test_toml_tables(tmp_path: Path) -> None:
    """TOML tables and arrays become dict and list settings."""
    path = write_toml(
        tmp_path,
        'SPIDER_MODULES = ["a", "b"]\n'
        '[PIPELINES]\n"myproject.pipelines.Validate" = 100\n"myproject.pipelines.Old" = false\n'
        '[FEEDS."books.jsonl"]\noverwrite = true\n',
    )
    settings = load(project_file=path)
    assert settings["SPIDER_MODULES"] == ["a", "b"]
    assert settings["PIPELINES"] == {
        "myproject.pipelines.Validate": 100,
        "myproject.pipelines.Old": False,
    }
    assert settings["FEEDS"] == {"books.jsonl": {"overwrite": True}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            'RATE_X = "fast"',
            "RATE_X (settings.toml): unknown setting",
            id="unknown",
        ),
        pytest.param(
            "CONCURENCY = 4",
            "CONCURENCY (settings.toml): unknown setting; did you mean CONCURRENCY?",
            id="typo",
        ),
        pytest.param(
            'CONCURRENCY = "8"',
            "CONCURRENCY (settings.toml): expected an integer >= 1, got '8'",
            id="string-for-int",
        ),
        pytest.param(
            "CONCURRENCY = true",
            "CONCURRENCY (settings.toml): expected an integer >= 1, got True",
            id="bool-for-int",
        ),
        pytest.param(
            "HTTP2 = 1",
            "HTTP2 (settings.toml): expected true or false, got 1",
            id="int-for-bool",
        ),
    ],
)
def test_bad_toml_value(tmp_path: Path, text: str, message: str) -> None:
    """A bad or unknown key in settings.toml fails with one line naming the file as the source."""
    with pytest.raises(SettingsError) as caught:
        load(project_file=write_toml(tmp_path, text))
    assert str(caught.value).startswith(message)


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    """A settings.toml that is not TOML fails naming the file, the line and the fix."""
    path = write_toml(tmp_path, "CONCURRENCY = 4\nUSER_AGENT = bot/1\n")
    with pytest.raises(SettingsError) as caught:
        load(project_file=path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "line 2" in message
    assert "strings need quotes" in message
    assert "\n" not in message


def test_unreadable_project_file(tmp_path: Path) -> None:
    """A project file that cannot be read (here a folder) fails naming it."""
    with pytest.raises(SettingsError, match="cannot read settings"):
        load(project_file=tmp_path)


# -- custom_settings ---------------------------------------------------------------------------


def test_class_without_custom_settings() -> None:
    """A spider class without custom_settings adds no layer."""

    class Plain:
        """A spider with nothing to set."""

    assert load(spider_cls=Plain).as_dict() == Settings().as_dict()


def test_unnamed_spider_is_named_by_class() -> None:
    """A spider without a name attribute is named by its class in sources."""

    class Anonymous:
        """A spider with settings but no name."""

        custom_settings = {"DEPTH_LIMIT": 1}

    settings = load(spider_cls=Anonymous)
    assert settings.source("DEPTH_LIMIT") == "custom_settings of spider 'Anonymous'"


def test_bad_custom_settings_value() -> None:
    """A bad value in custom_settings names the spider as the source."""

    class Broken:
        """A spider with an impossible concurrency."""

        name = "broken"
        custom_settings = {"CONCURRENCY": 0}

    with pytest.raises(SettingsError) as caught:
        load(spider_cls=Broken)
    assert str(caught.value) == (
        "CONCURRENCY (custom_settings of spider 'broken'): expected an integer >= 1, got 0"
    )


def test_custom_settings_not_a_dict() -> None:
    """custom_settings that is not a mapping fails naming the spider."""

    class Listy:
        """A spider whose custom_settings is a list."""

        name = "listy"
        custom_settings = ["CONCURRENCY"]

    with pytest.raises(
        SettingsError, match=r"^custom_settings \(spider 'listy'\): expected a dict"
    ):
        load(spider_cls=Listy)


# -- environment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "key", "value"),
    [
        pytest.param("SCRAPEKIT_CONCURRENCY", "8", "CONCURRENCY", 8, id="int"),
        pytest.param("SCRAPEKIT_DOWNLOAD_TIMEOUT", "2.5", "DOWNLOAD_TIMEOUT", 2.5, id="float"),
        pytest.param("SCRAPEKIT_HTTP2", "false", "HTTP2", False, id="bool"),
        pytest.param("SCRAPEKIT_PROGRESS", "off", "PROGRESS", False, id="bool-off"),
        pytest.param("SCRAPEKIT_SPIDER_MODULES", "a,b", "SPIDER_MODULES", ["a", "b"], id="list"),
        pytest.param("SCRAPEKIT_LOG_LEVEL", "warning", "LOG_LEVEL", "WARNING", id="choice"),
        pytest.param(
            "SCRAPEKIT_FEEDS",
            '{"out.csv": {"format": "csv"}}',
            "FEEDS",
            {"out.csv": {"format": "csv"}},
            id="feeds-json",
        ),
    ],
)
def test_environment_text_is_parsed(name: str, text: str, key: str, value: object) -> None:
    """SCRAPEKIT_<KEY> variables are parsed by the key's type and named in source()."""
    settings = load(env={name: text})
    assert settings[key] == value
    assert settings.source(key) == f"environment {name}"


def test_environment_ignores_other_variables() -> None:
    """Variables without the SCRAPEKIT_ prefix are not settings and are ignored."""
    assert read_environment({"HOME": "/root", "CONCURRENCY": "lots", "scrapekit_x": "1"}) == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"SCRAPEKIT_CONCURRENCY": "lots"},
            "SCRAPEKIT_CONCURRENCY (environment): expected an integer >= 1, got 'lots'",
            id="bad-int",
        ),
        pytest.param(
            {"SCRAPEKIT_HTTP2": "maybe"},
            "SCRAPEKIT_HTTP2 (environment): expected true/false, 1/0, yes/no or on/off, "
            "got 'maybe'",
            id="bad-bool",
        ),
        pytest.param(
            {"SCRAPEKIT_CONCURENCY": "8"},
            "SCRAPEKIT_CONCURENCY (environment): unknown setting; "
            "did you mean SCRAPEKIT_CONCURRENCY?",
            id="unknown",
        ),
    ],
)
def test_bad_environment_variable(env: dict[str, str], message: str) -> None:
    """A bad or unknown SCRAPEKIT_* variable fails with one line naming the variable."""
    with pytest.raises(SettingsError) as caught:
        load(env=env)
    assert str(caught.value) == message


# -- -s KEY=VALUE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "key", "value"),
    [
        pytest.param("CONCURRENCY=8", "CONCURRENCY", 8, id="int"),
        pytest.param("DOWNLOAD_TIMEOUT=2.5", "DOWNLOAD_TIMEOUT", 2.5, id="float"),
        pytest.param("HTTP2=false", "HTTP2", False, id="bool"),
        pytest.param("SPIDER_MODULES=a,b", "SPIDER_MODULES", ["a", "b"], id="list"),
        pytest.param(
            "HTTPERROR_ALLOWED_CODES=403,404", "HTTPERROR_ALLOWED_CODES", [403, 404], id="ints"
        ),
        pytest.param("USER_AGENT=bot/1 (x=y)", "USER_AGENT", "bot/1 (x=y)", id="equals-in-value"),
        pytest.param("STATS_FILE=", "STATS_FILE", "", id="empty"),
        pytest.param(
            'FEEDS={"out.jsonl": {"overwrite": true}}',
            "FEEDS",
            {"out.jsonl": {"overwrite": True}},
            id="feeds-json",
        ),
    ],
)
def test_cmdline_text_is_parsed(arg: str, key: str, value: object) -> None:
    """-s KEY=VALUE is parsed by the key's type, and source() is the argument itself."""
    settings = load(cmdline=[arg])
    assert settings[key] == value
    assert settings.source(key) == f"-s {arg}"


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        pytest.param(
            "CONCURRENCY",
            "'CONCURRENCY' (-s): expected KEY=VALUE, e.g. -s CONCURRENCY=8",
            id="no-eq",
        ),
        pytest.param("=8", "'=8' (-s): expected KEY=VALUE", id="no-key"),
        pytest.param(
            "CONCURRENCY=lots",
            "CONCURRENCY (-s): expected an integer >= 1, got 'lots'",
            id="bad-value",
        ),
        pytest.param(
            "CONCURENCY=8", "CONCURENCY (-s): unknown setting; did you mean CONCURRENCY?", id="typo"
        ),
    ],
)
def test_bad_cmdline_argument(arg: str, message: str) -> None:
    """A malformed, unknown or bad -s argument fails with one line naming -s as the source."""
    with pytest.raises(SettingsError) as caught:
        read_cmdline([arg])
    assert str(caught.value).startswith(message)


# -- crawl(settings=...) -----------------------------------------------------------------------


def test_overrides_are_typed_values() -> None:
    """Overrides are typed values at the cmdline priority, named crawl(settings=...)."""

    class Validate:
        """A pipeline passed as a class, not a path."""

    settings = load(overrides={"PIPELINES": {Validate: 100}, "DOWNLOAD_TIMEOUT": 3})
    assert settings["PIPELINES"] == {Validate: 100}
    assert settings["DOWNLOAD_TIMEOUT"] == 3.0
    assert settings.source("PIPELINES") == "crawl(settings=...)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"CONCURRENCY": "8"},
            "CONCURRENCY (crawl(settings=...)): expected an integer >= 1, got '8'",
            id="text-is-not-parsed",
        ),
        pytest.param(
            {"DEPHT_LIMIT": 1},
            "DEPHT_LIMIT (crawl(settings=...)): unknown setting; did you mean DEPTH_LIMIT?",
            id="unknown",
        ),
    ],
)
def test_bad_override(overrides: dict[str, Any], message: str) -> None:
    """A bad or unknown override fails naming crawl(settings=...) as the source."""
    with pytest.raises(SettingsError) as caught:
        load(overrides=overrides)
    assert str(caught.value) == message
