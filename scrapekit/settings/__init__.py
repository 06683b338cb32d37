"""Settings: layered values, each remembering its source, validated once at start-up.

Layers, lowest priority first: defaults (`defaults.py`) < project (settings.toml) < spider
(custom_settings) < env (SCRAPEKIT_<KEY>) < cmdline (`-s KEY=VALUE`, `crawl(settings=...)`).
`sources.py` reads the layers and `validate.py` checks the values; docs/settings.md lists them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapekit.settings import sources
from scrapekit.settings.defaults import DEFAULTS
from scrapekit.settings.validate import check, shown

__all__ = ["PRIORITIES", "Settings"]

PRIORITIES = {"default": 0, "project": 10, "spider": 20, "env": 30, "cmdline": 40}
"""Named layer priorities: a value replaces another set at the same or a lower priority."""


@dataclass(slots=True)
class _Entry:
    value: Any
    priority: int
    source: str


class Settings(Mapping[str, Any]):
    """The settings of one crawl: every key's value, the priority it was set at, and its source."""

    def __init__(self) -> None:
        self._entries = {
            key: _Entry(value, PRIORITIES["default"], "default")
            for key, value in copy.deepcopy(DEFAULTS).items()
        }

    @classmethod
    def load(
        cls,
        *,
        project_file: Path | None,
        spider_cls: type | None,
        env: Mapping[str, str],
        cmdline: Sequence[str] = (),
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Build a crawl's settings from every layer, then validate them.

        Args:
            project_file: the project's settings.toml, or None for no project layer.
            spider_cls: the spider class; its `custom_settings` (if any) is the spider layer.
            env: the environment (e.g. `os.environ`); SCRAPEKIT_<KEY> variables are read.
            cmdline: `-s` arguments, each "KEY=VALUE".
            overrides: typed values from `crawl(settings=...)`, set at the cmdline priority
                after `cmdline`, so they win a tie.

        Raises:
            SettingsError: a layer cannot be read, a key is unknown or a value is bad.
        """
        settings = cls()
        layers = [
            ("project", sources.read_project_file(project_file) if project_file else []),
            ("spider", sources.read_custom_settings(spider_cls) if spider_cls else []),
            ("env", sources.read_environment(env)),
            ("cmdline", sources.read_cmdline(cmdline)),
            ("cmdline", sources.read_overrides(overrides or {})),
        ]
        for priority, entries in layers:
            for key, value, source in entries:
                settings.set(key, value, priority=priority, source=source)
        settings.validate()
        return settings

    def set(
        self, key: str, value: Any, *, priority: str | int = "project", source: str | None = None
    ) -> None:
        """Set `key` unless a higher priority already set it; `source` defaults to the priority."""
        level = priority if isinstance(priority, int) else PRIORITIES.get(priority)
        if level is None:
            raise ValueError(f"unknown settings priority {priority!r}; use one of {[*PRIORITIES]}")
        entry = self._entries.get(key)
        if entry is None or level >= entry.priority:
            self._entries[key] = _Entry(value, level, source or str(priority))

    def update(
        self,
        values: Mapping[str, Any],
        *,
        priority: str | int = "project",
        source: str | None = None,
    ) -> None:
        """Set every key of `values` as `set()` would."""
        for key, value in values.items():
            self.set(key, value, priority=priority, source=source)

    def source(self, key: str) -> str:
        """Where the current value of `key` came from, e.g. "settings.toml" or "-s RATE=2"."""
        return self._entries[key].source

    def priority(self, key: str) -> int:
        """The priority the current value of `key` was set at (see PRIORITIES)."""
        return self._entries[key].priority

    def layer(self, key: str) -> str:
        """The name of the layer the current value of `key` came from: "default", "project",
        "spider", "env" or "cmdline" (a value set in code at another priority: the nearest
        named layer below it)."""
        level = self._entries[key].priority
        return max((p, name) for name, p in PRIORITIES.items() if p <= level)[1]

    def validate(self) -> None:
        """Convert every value to its key's type; raise SettingsError for the first bad one."""
        for key, entry in self._entries.items():
            entry.value = check(key, entry.value, entry.source)

    def copy(self) -> Settings:
        """Return an independent deep copy."""
        return copy.deepcopy(self)

    def as_dict(self) -> dict[str, Any]:
        """Return a deep copy of every key's value."""
        return copy.deepcopy({key: entry.value for key, entry in self._entries.items()})

    # Typed accessors: validate() has already converted the values, so these only narrow the type
    # (and catch a getter called on the wrong key).

    def getint(self, key: str) -> int:
        """Return the int value of `key`."""
        value = self[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._not_a(key, "an int")
        return value

    def getfloat(self, key: str) -> float:
        """Return the value of `key` as a float (ints are converted)."""
        value = self[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._not_a(key, "a number")
        return float(value)

    def getbool(self, key: str) -> bool:
        """Return the bool value of `key`."""
        value = self[key]
        if not isinstance(value, bool):
            raise self._not_a(key, "a bool")
        return value

    def getlist(self, key: str) -> list[Any]:
        """Return a copy of the list value of `key`."""
        value = self[key]
        if not isinstance(value, list | tuple):
            raise self._not_a(key, "a list")
        return list(value)

    def getdict(self, key: str) -> dict[Any, Any]:
        """Return a shallow copy of the dict value of `key`."""
        value = self[key]
        if not isinstance(value, Mapping):
            raise self._not_a(key, "a dict")
        return dict(value)

    def _not_a(self, key: str, kind: str) -> TypeError:
        return TypeError(f"{key} is {shown(self[key])} (from {self.source(key)}), not {kind}")

    def __getitem__(self, key: str) -> Any:
        return self._entries[key].value

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<Settings: {len(self)} keys>"
