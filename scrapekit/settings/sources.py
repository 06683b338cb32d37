"""Reading the settings layers: settings.toml, custom_settings, SCRAPEKIT_* and `-s KEY=VALUE`.

Each reader returns `Entry(key, value, source)` triples for `Settings.load` to set at its layer's
priority. Typed layers (settings.toml, a spider's custom_settings, `crawl(settings=...)`) pass
values through for `Settings.validate`. Text layers (the environment and `-s`) are parsed by the
key's validator as they are read, so a bad string fails naming exactly what the user typed,
even when a higher layer would have overridden it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from scrapekit.exceptions import SettingsError
from scrapekit.settings.validate import check_text, shown

ENV_PREFIX = "SCRAPEKIT_"
"""Environment variables named SCRAPEKIT_<KEY> set the setting KEY."""

ENV_NOT_SETTINGS: frozenset[str] = frozenset()
"""SCRAPEKIT_* variables that are not settings, so are not rejected as unknown ones (none yet)."""

OVERRIDES_SOURCE = "crawl(settings=...)"


class Entry(NamedTuple):
    """One value read from a layer, with where it came from (for error messages)."""

    key: str
    value: Any
    source: str


def _entries(values: Mapping[Any, Any], source: str) -> list[Entry]:
    for key in values:
        if not isinstance(key, str):
            raise SettingsError(shown(key), "a setting name must be a string", source)
    return [Entry(key, value, source) for key, value in values.items()]


def read_project_file(path: Path) -> list[Entry]:
    """Read the project layer from a settings.toml; its top-level keys are settings."""
    try:
        with path.open("rb") as file:
            values = tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(
            str(path),
            f"not valid TOML: {error}; fix that line (strings need quotes, tables are [NAME])",
        ) from error
    except OSError as error:
        raise SettingsError(str(path), f"cannot read settings: {error.strerror}") from error
    return _entries(values, path.name)


def read_custom_settings(spider_cls: type) -> list[Entry]:
    """Read the spider layer from `spider_cls.custom_settings`, if the class has one."""
    custom = getattr(spider_cls, "custom_settings", None)
    if custom is None:
        return []
    name = getattr(spider_cls, "name", None)
    name = name if isinstance(name, str) and name else spider_cls.__name__
    if not isinstance(custom, Mapping):
        raise SettingsError(
            "custom_settings",
            f"expected a dict of settings, got {shown(custom)}",
            f"spider {name!r}",
        )
    return _entries(custom, f"custom_settings of spider {name!r}")


def read_environment(env: Mapping[str, str]) -> list[Entry]:
    """Read the env layer: every SCRAPEKIT_<KEY> variable, parsed by KEY's type."""
    entries = []
    for name, text in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and name not in ENV_NOT_SETTINGS:
            key = name.removeprefix(ENV_PREFIX)
            value = check_text(key, text, "environment", prefix=ENV_PREFIX)
            entries.append(Entry(key, value, f"environment {name}"))
    return entries


def read_cmdline(args: Sequence[str]) -> list[Entry]:
    """Read the cmdline layer from `-s` arguments, each "KEY=VALUE" parsed by KEY's type."""
    entries = []
    for arg in args:
        key, equals, text = arg.partition("=")
        key = key.strip()
        if not equals or not key:
            raise SettingsError(shown(arg), "expected KEY=VALUE, e.g. -s CONCURRENCY=8", "-s")
        entries.append(Entry(key, check_text(key, text, "-s"), f"-s {key}={text}"))
    return entries


def read_overrides(overrides: Mapping[str, Any]) -> list[Entry]:
    """Read the typed values given to the Python API's `crawl(settings=...)`."""
    return _entries(overrides, OVERRIDES_SOURCE)
