"""The small validators settings are checked with: each checks and converts one value.

`convert()` takes a typed value (settings.toml, custom_settings, `crawl(settings=...)`);
`parse_text()` takes a string (SCRAPEKIT_* environment, `-s KEY=VALUE`). Both raise `Invalid`
with an "expected …, got …" phrase, which `validate.check()` turns into a one-line
`SettingsError` naming the key and the source.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from scrapekit import feedpaths
from scrapekit.log import hide_userinfo


class Invalid(ValueError):
    """A value a validator rejects; the message is a phrase such as "expected …, got …"."""


def shown(value: object) -> str:
    """Return `value`'s repr, cut short so an error message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _bounds(low: float | None, high: float | None, above: float | None = None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    if above is not None:
        return f" > {above}"
    return f" <= {high}" if high is not None else ""


def suggest(word: str, choices: list[str], quote: bool = False) -> str:
    """ "; did you mean X?" for the closest choice, or "" when none is close."""
    close = difflib.get_close_matches(word, choices, n=1)
    if not close:
        return ""
    return f"; did you mean {close[0]!r}?" if quote else f"; did you mean {close[0]}?"


class Validator(ABC):
    """Checks and converts the value of one setting."""

    describe: str
    """What a good value is, as the phrase after "expected" (e.g. "an integer >= 1")."""

    @abstractmethod
    def convert(self, value: object) -> Any:
        """Return `value` converted to the setting's type; raise `Invalid` if it is not valid."""

    def parse_text(self, text: str) -> Any:
        """Return the checked value a string from the environment or `-s` stands for."""
        return self.convert(text)

    def reject(self, value: object, detail: str = "") -> Invalid:
        """Return the standard "expected <describe>, got <value>" error."""
        return Invalid(f"expected {self.describe}, got {shown(value)}{detail}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.describe}>"


class Int(Validator):
    """An integer (never a bool) within optional bounds."""

    def __init__(self, *, min: int | None = None, max: int | None = None, unit: str = "") -> None:
        self.min, self.max = min, max
        self.describe = (f"a whole number of {unit}" if unit else "an integer") + _bounds(min, max)

    def convert(self, value: object) -> int:
        # bool is an int subclass, but `CONCURRENCY = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.reject(value)
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            raise self.reject(value)
        return value

    def parse_text(self, text: str) -> int:
        try:
            return self.convert(int(text.strip()))
        except ValueError:  # Invalid too: the message shows the text as typed
            raise self.reject(text) from None


class Float(Validator):
    """A finite number (an int is fine) within optional bounds; `gt` is an exclusive minimum."""

    def __init__(
        self,
        *,
        min: float | None = None,
        gt: float | None = None,
        max: float | None = None,
        unit: str = "",
    ) -> None:
        self.min, self.gt, self.max = min, gt, max
        self.describe = (f"a number of {unit}" if unit else "a number") + _bounds(min, max, gt)

    def convert(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.reject(value)
        number = float(value)
        if (
            not math.isfinite(number)
            or (self.min is not None and number < self.min)
            or (self.gt is not None and number <= self.gt)
            or (self.max is not None and number > self.max)
        ):
            raise self.reject(value)
        return number

    def parse_text(self, text: str) -> float:
        try:
            return self.convert(float(text.strip()))
        except ValueError:  # Invalid too: the message shows the text as typed
            raise self.reject(text) from None


_DURATION = re.compile(r"(?i)\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h|d|w)?\s*")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """Seconds for a duration like `90`, `90s`, `30m`, `2h`, `7d` or `1w`; None if it is not one."""
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    number, unit = match.groups()
    seconds = float(number) * _UNIT_SECONDS[(unit or "s").lower()]
    return seconds if math.isfinite(seconds) else None


class Duration(Float):
    """A number of seconds, or text with a unit: `90s`, `30m`, `2h`, `7d`, `1w`."""

    def __init__(self) -> None:
        super().__init__(min=0, unit="seconds")
        self.describe = "a duration >= 0 (seconds, or with a unit: 90s, 30m, 2h, 7d)"

    def convert(self, value: object) -> float:
        if isinstance(value, str):
            return self.parse_text(value)
        return super().convert(value)

    def parse_text(self, text: str) -> float:
        seconds = parse_duration(text)
        if seconds is None:
            raise self.reject(text)
        return super().convert(seconds)


class Bool(Validator):
    """A real bool; text may be true/false, 1/0, yes/no or on/off in any case."""

    describe = "true or false"
    TEXT: ClassVar[Mapping[str, bool]] = {
        **dict.fromkeys(("true", "1", "yes", "on"), True),
        **dict.fromkeys(("false", "0", "no", "off"), False),
    }

    def convert(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.reject(value)
        return value

    def parse_text(self, text: str) -> bool:
        try:
            return self.TEXT[text.strip().lower()]
        except KeyError:
            raise Invalid(
                f"expected true/false, 1/0, yes/no or on/off, got {shown(text)}"
            ) from None


class Str(Validator):
    """A string; with `path=True` also an `os.PathLike`, converted to str."""

    def __init__(self, *, path: bool = False) -> None:
        self.path = path
        self.describe = "a path" if path else "a string"

    def convert(self, value: object) -> str:
        if self.path and isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise self.reject(value)
        return value


class Choice(Validator):
    """One of a fixed set of strings; `ignore_case` accepts any case and returns the listed one."""

    def __init__(self, *choices: str, ignore_case: bool = False) -> None:
        self.choices, self.ignore_case = choices, ignore_case
        self.describe = "one of " + ", ".join(repr(choice) for choice in choices)

    def convert(self, value: object) -> str:
        if isinstance(value, str):
            for choice in self.choices:
                if value == choice or (self.ignore_case and value.lower() == choice.lower()):
                    return choice
        raise self.reject(value)


class ProxyUrl(Validator):
    """One proxy URL, http:// or https://, with optional `user:password@`; "" for none.

    Messages never show the credentials (see `log.hide_userinfo`).
    """

    describe = "an http:// or https:// proxy URL such as http://user:password@proxy:3128"

    def convert(self, value: object) -> str:
        if not isinstance(value, str):
            raise self.reject(value)
        if value and (problem := proxy_problem(value)):
            raise Invalid(f"expected {self.describe}, got {shown(hide_userinfo(value))}: {problem}")
        return value


def proxy_problem(url: str) -> str:
    """What is wrong with a proxy URL, in words; "" when nothing is."""
    if any(char.isspace() for char in url):
        return "it contains whitespace"
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": a '[' or ']' outside an IPv6 host
        return "it is not a valid URL (percent-encode '[', ']', '@', ':', '/' in the password)"
    if parts.scheme.lower() not in ("http", "https"):
        return "the scheme must be http or https"
    try:
        port = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError:
        hostport = parts.netloc.rpartition("@")[2]
        given = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
        given = given.partition(":")[2]  # all of it: "1:2" after "host:" is not a port
        if given.isdigit():
            return f"the port {given} is out of range (1-65535)"
        return "the port is not a number (percent-encode ':', '/', '@' in the password)"
    if port == 0:
        return "the port 0 is out of range (1-65535)"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "a proxy URL has no path (percent-encode '/', '?', '#' in the password)"
    if not parts.hostname:
        return "it names no host"
    return ""


def _text_list(validator: Validator, text: str) -> Any:
    """Split `text` on commas, or decode it as JSON when it starts with "["."""
    if not text.lstrip().startswith("["):
        return [piece.strip() for piece in text.split(",") if piece.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise Invalid(
            f"expected {validator.describe} as a JSON list, got {shown(text)}: {error}"
        ) from None


def _text_object(validator: Validator, text: str) -> Any:
    """Decode `text` as a JSON object and convert it."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise Invalid(
            f"expected {validator.describe} as a JSON object, got {shown(text)}: {error}"
        ) from None
    return validator.convert(value)


class StrList(Validator):
    """A list of strings; text is comma-separated (`a,b`) or a JSON list."""

    describe = "a list of strings"

    def convert(self, value: object) -> list[str]:
        if not isinstance(value, list | tuple):
            raise self.reject(value)
        for item in value:
            if not isinstance(item, str):
                raise self.reject(value, f" (bad item {shown(item)})")
        return list(value)

    def parse_text(self, text: str) -> list[str]:
        return self.convert(_text_list(self, text))


class IntList(Validator):
    """A list of integers within bounds; text is comma-separated (`403,404`) or a JSON list."""

    def __init__(
        self, *, min: int | None = None, max: int | None = None, unit: str = "integers"
    ) -> None:
        self.item = Int(min=min, max=max)
        self.describe = f"a list of {unit}{_bounds(min, max)}"

    def convert(self, value: object) -> list[int]:
        if not isinstance(value, list | tuple):
            raise self.reject(value)
        for item in value:
            try:
                self.item.convert(item)
            except Invalid:
                raise self.reject(value, f" (bad item {shown(item)})") from None
        return list(value)

    def parse_text(self, text: str) -> list[int]:
        items = _text_list(self, text)
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, str):
                    try:
                        items[index] = int(item)
                    except ValueError:
                        raise self.reject(text, f" (bad item {shown(item)})") from None
        return self.convert(items)


class StrMap(Validator):
    """A table of strings to strings (e.g. HTTP headers); text is a JSON object."""

    describe = "a table of strings to strings"

    def convert(self, value: object) -> dict[str, str]:
        if not isinstance(value, Mapping):
            raise self.reject(value)
        for name, item in value.items():
            if not isinstance(name, str) or not isinstance(item, str):
                raise self.reject(value, f" (bad entry {shown(name)}: {shown(item)})")
        return dict(value)

    def parse_text(self, text: str) -> dict[str, str]:
        return _text_object(self, text)  # type: ignore[no-any-return]


_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


class ComponentMap(Validator):
    """Dotted paths (or, from the Python API, classes) to an int order, or false to disable."""

    describe = "a table of dotted paths to an integer order, or false to disable"

    def convert(self, value: object) -> dict[Any, int | bool]:
        if not isinstance(value, Mapping):
            raise self.reject(value)
        for path, order in value.items():
            if isinstance(path, str) and not _DOTTED.fullmatch(path):
                raise Invalid(
                    f"expected a dotted path like 'myproject.pipelines.Validate', got {shown(path)}"
                )
            # Objects pass through for components.py, so crawl(settings=...) can take classes.
            if not isinstance(path, str) and not callable(path):
                raise Invalid(f"expected a dotted path or a class, got {shown(path)}")
            if order is not False and (isinstance(order, bool) or not isinstance(order, int)):
                raise Invalid(
                    f"expected an integer order or false for {shown(path)}, got {shown(order)}"
                )
        return dict(value)

    def parse_text(self, text: str) -> dict[Any, int | bool]:
        return _text_object(self, text)  # type: ignore[no-any-return]


class FeedMap(Validator):
    """Output paths to a table of feed options (see OPTIONS); text is a JSON object."""

    describe = "a table of output paths to feed options"
    OPTIONS: ClassVar[Mapping[str, Validator]] = {
        "format": Choice("jsonl", "json", "csv"),
        "overwrite": Bool(),
    }
    """Every feed option and its validator; pipelines/feeds.py reads these."""

    def convert(self, value: object) -> dict[str, dict[str, Any]]:
        if not isinstance(value, Mapping):
            raise self.reject(value)
        feeds: dict[str, dict[str, Any]] = {}
        for path, options in value.items():
            path = os.fspath(path) if isinstance(path, os.PathLike) else path
            if not isinstance(path, str) or not path:
                raise Invalid(f"expected a feed path, got {shown(path)}")
            try:
                feedpaths.used(path)
            except feedpaths.PlaceholderError as error:
                raise Invalid(f"feed {path!r}: {error}") from None
            if not isinstance(options, Mapping):
                raise Invalid(
                    f"expected a table of options for feed {path!r}, got {shown(options)}"
                )
            feeds[path] = {}
            for name, option in options.items():
                validator = self.OPTIONS.get(name)
                if validator is None:
                    hint = suggest(str(name), list(self.OPTIONS), quote=True)
                    raise Invalid(f"feed {path!r}: unknown option {shown(name)}{hint}")
                try:
                    feeds[path][name] = validator.convert(option)
                except Invalid as error:
                    raise Invalid(f"feed {path!r}, option {name!r}: {error}") from None
        return feeds

    def parse_text(self, text: str) -> dict[str, dict[str, Any]]:
        return _text_object(self, text)  # type: ignore[no-any-return]


# Same groups and order as defaults.py.
