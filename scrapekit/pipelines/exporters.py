"""Exporters: streaming JSON Lines, JSON and CSV writers for the feeds (FEEDS, FEED_EXPORT_FIELDS).

Each exporter writes one record per `write()` call through a buffered utf-8 text file, so memory
does not grow with the item count and a cancelled crawl never leaves half a record behind.
Appending (`-o`) keeps the file valid: JSON continues the existing array, CSV reuses the
existing header. `close()` writes the trailer (JSON's `]`), flushes and fsyncs.

Resuming (an unfinished crawl, FeedPipeline): the feed truncates the file to the size it
recorded after its last fsync, and the exporter continues it from `state()` as it was then
(JSON: whether the array has items; CSV: the header), so the file ends as one uninterrupted
crawl would have left it.
"""

from __future__ import annotations

import csv
import enum
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from io import TextIOWrapper
from pathlib import Path
from typing import Any, ClassVar, Literal

import structlog

from scrapekit.exceptions import ComponentError, PipelineError
from scrapekit.items import adapter

log = structlog.get_logger(__name__)

#: File extension -> feed format, used when a feed names no format.
EXTENSIONS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".jl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
}
_FORMAT_ALIASES = {ext.lstrip("."): fmt for ext, fmt in EXTENSIONS.items()} | {"jsonlines": "jsonl"}
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_CHUNK = 64 * 1024


def json_default(value: object) -> Any:
    """`json.dumps(default=...)` for values items commonly hold; anything else becomes str()."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if (item_adapter := adapter()).is_item(value):  # a nested dataclass, attrs or pydantic item
        return item_adapter(value).asdict()
    return str(value)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=json_default)


def feed_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The feed format ("jsonl", "json" or "csv"): `format` if given, else from the extension."""
    if format:
        try:
            return _FORMAT_ALIASES[format.lower()]
        except KeyError:
            raise ComponentError(
                f"unknown feed format {format!r} for {os.fspath(path)!r}: use jsonl, json or csv"
            ) from None
    suffix = Path(path).suffix.lower()
    try:
        return EXTENSIONS[suffix]
    except KeyError:
        raise ComponentError(
            f"cannot tell the feed format of {os.fspath(path)!r} from its extension:"
            f" use {', '.join(EXTENSIONS)} or give a format"
        ) from None


def _last_non_blank(raw: Any, end: int) -> int:
    """Offset of the last non-whitespace byte before `end`, or -1; reads backwards in chunks."""
    pos = end
    while pos > 0:
        start = max(0, pos - _CHUNK)
        raw.seek(start)
        kept = raw.read(pos - start).rstrip(_WHITESPACE)
        if kept:
            return start + len(kept) - 1
        pos = start
    return -1


def _first_non_blank(raw: Any) -> bytes:
    """The first non-whitespace byte of the file (after a BOM), or b"" for a blank file."""
    raw.seek(0)
    chunk = raw.read(_CHUNK).removeprefix(_BOM)
    while chunk:
        kept = chunk.lstrip(_WHITESPACE)
        if kept:
            return bytes(kept[:1])
        chunk = raw.read(_CHUNK)
    return b""


def _ends_mid_line(path: Path) -> bool:
    """Whether a non-empty file lacks a final newline (a crawl was killed mid-record)."""
    with path.open("rb") as raw:
        size = raw.seek(0, os.SEEK_END)
        if size == 0:
            return False
        raw.seek(size - 1)
        return raw.read(1) != b"\n"


def _open_text(path: Path, mode: Literal["w", "a"]) -> TextIOWrapper:
    """The buffered utf-8 file records go through; newline="" so no platform rewrites them."""
    return open(path, mode, encoding="utf-8", newline="")


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


class Exporter(ABC):
    """Writes items to one file as they come; the file is a valid document after `close()`."""

    format: ClassVar[str]

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        fields: Sequence[str] | None = None,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.fields: list[str] | None = list(fields) if fields else None
        self.items_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._open(overwrite) if resume is None else self._continue(resume)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({os.fspath(self.path)!r})"

    @abstractmethod
    def _open(self, overwrite: bool) -> TextIOWrapper:
        """Open the file for writing: truncated, or positioned so that new records keep it valid."""

    def _continue(self, state: Mapping[str, Any]) -> TextIOWrapper:
        """Continue a file the feed truncated to a recorded size, from `state()` as it was."""
        return _open_text(self.path, "a")

    def state(self) -> dict[str, Any]:
        """What `_continue` needs to go on from the file as it is now (JSON-compatible)."""
        return {}

    def sync(self) -> int:
        """Flush to the operating system; return the file's size (fsync is the caller's)."""
        self._file.flush()
        return os.fstat(self._file.fileno()).st_size

    def fileno(self) -> int:
        return self._file.fileno()

    @abstractmethod
    def write(self, item: Mapping[str, Any]) -> None:
        """Write one item as one record, in a single call to the file's write()."""

    def _finish(self) -> None:  # noqa: B027 - optional hook: most formats need no trailer
        """Write whatever the format needs after the last record."""

    def _select(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.fields is None:
            return item
        return {key: item[key] for key in self.fields if key in item}

    def flush(self) -> None:
        """Hand buffered records to the operating system."""
        self._file.flush()

    def close(self, *, fsync: bool = True) -> None:
        """Write the trailer, flush, fsync (unless told not to) and close; then a no-op."""
        if self._file.closed:
            return
        try:
            self._finish()
            self._file.flush()
            if fsync:
                os.fsync(self._file.fileno())
        finally:
            self._file.close()


class JsonLinesExporter(Exporter):
    """One JSON object per line; appending adds lines."""

    format = "jsonl"

    def _open(self, overwrite: bool) -> TextIOWrapper:
        if overwrite:
            return _open_text(self.path, "w")
        broken_tail = self.path.exists() and _ends_mid_line(self.path)
        file = _open_text(self.path, "a")
        if broken_tail:
            # Start on a fresh line, so the half record a killed crawl left stays on its own.
            file.write("\n")
        return file

    def write(self, item: Mapping[str, Any]) -> None:
        """Write the item as one line."""
        self._file.write(_dumps(self._select(item)) + "\n")
        self.items_written += 1


class JsonExporter(Exporter):
    """A JSON array, one item per line; appending continues the existing array."""

    format = "json"

    def _open(self, overwrite: bool) -> TextIOWrapper:
        self._separator = "\n"
        if not overwrite and _has_content(self.path):
            with self.path.open("r+b") as raw:
                resume = self._array_end(raw)
                if resume is not None:
                    end, has_items = resume
                    raw.truncate(end)
                    if has_items:
                        self._separator = ",\n"
                    return _open_text(self.path, "a")
        file = _open_text(self.path, "w")
        file.write("[")
        return file

    def _array_end(self, raw: Any) -> tuple[int, bool] | None:
        """Where to continue an existing array (after its last element) and whether it has any.

        None for a blank file. Only the first and last bytes are checked, not the whole file.
        """
        first = _first_non_blank(raw)
        if not first:
            return None
        last = _last_non_blank(raw, raw.seek(0, os.SEEK_END))
        raw.seek(last)
        if first != b"[" or raw.read(1) != b"]":
            raise PipelineError(
                f"{os.fspath(self.path)} is not a JSON array; use -O to overwrite it"
            )
        before = _last_non_blank(raw, last)
        raw.seek(before)
        return before + 1, raw.read(1) != b"["

    def _continue(self, state: Mapping[str, Any]) -> TextIOWrapper:
        self._separator = ",\n" if state.get("has_items") else "\n"
        return _open_text(self.path, "a")

    def state(self) -> dict[str, Any]:
        return {"has_items": self._separator == ",\n"}

    def write(self, item: Mapping[str, Any]) -> None:
        """Write the item as the next array element."""
        self._file.write(self._separator + _dumps(self._select(item)))
        self._separator = ",\n"
        self.items_written += 1

    def _finish(self) -> None:
        self._file.write("\n]\n" if self._separator == ",\n" else "]\n")


class CsvExporter(Exporter):
    """CSV with a header row. Fields: FEED_EXPORT_FIELDS, else the first item's keys in order.

    Appending reuses the existing header. Keys outside the fields are dropped, with one warning
    per key unless the fields were chosen explicitly.
    """

    format = "csv"

    def _open(self, overwrite: bool) -> TextIOWrapper:
        self._warn_extra = self.fields is None
        self._warned: set[str] = set()
        if not overwrite and _has_content(self.path):
            with self.path.open(encoding="utf-8-sig", newline="") as existing:
                header = next(csv.reader(existing), [])
            if not header:
                raise PipelineError(
                    f"{os.fspath(self.path)} has no CSV header row; use -O to overwrite it"
                )
            if self.fields is not None and self.fields != header:
                log.warning("csv header kept", path=os.fspath(self.path), header=header)
            self.fields, self._warn_extra = header, True
            broken_tail = _ends_mid_line(self.path)
            file = _open_text(self.path, "a")
            if broken_tail:
                file.write("\r\n")
            self._writer = csv.writer(file)
            return file
        file = _open_text(self.path, "w")
        self._writer = csv.writer(file)
        if self.fields is not None:
            self._writer.writerow(self.fields)
        return file

    def _continue(self, state: Mapping[str, Any]) -> TextIOWrapper:
        fields = state.get("fields")
        self.fields = list(fields) if fields else None
        self._warn_extra = bool(state.get("warn_extra", self.fields is None))
        self._warned = set()
        file = _open_text(self.path, "a")
        self._writer = csv.writer(file)
        return file

    def state(self) -> dict[str, Any]:
        return {"fields": self.fields, "warn_extra": self._warn_extra}

    def write(self, item: Mapping[str, Any]) -> None:
        """Write the item as one row; missing fields are empty cells."""
        if self.fields is None:
            self.fields = list(item)
            self._writer.writerow(self.fields)
        if self._warn_extra:
            for key in item.keys() - set(self.fields) - self._warned:
                self._warned.add(key)
                log.warning("csv field dropped", field=key, path=os.fspath(self.path))
        self._writer.writerow([_cell(item.get(key)) for key in self.fields])
        self.items_written += 1


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str | int | float):  # bool is an int: written as True/False
        return value
    if isinstance(value, list | dict | tuple | set | frozenset | Mapping):
        return _dumps(value)
    converted = json_default(value)
    return converted if isinstance(converted, str | int | float) else _dumps(converted)


EXPORTERS: dict[str, type[Exporter]] = {
    "jsonl": JsonLinesExporter,
    "json": JsonExporter,
    "csv": CsvExporter,
}


def exporter_for(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    overwrite: bool,
    fields: Sequence[str] | None = None,
    resume: Mapping[str, Any] | None = None,
) -> Exporter:
    """An opened exporter for `path`; the format is `format`, else guessed from the extension.

    Raises:
        ComponentError: unknown format or extension.
        PipelineError: appending to a file that is not of that format (e.g. not a JSON array).
    """
    cls = EXPORTERS[feed_format(path, format)]
    return cls(path, overwrite=overwrite, fields=fields, resume=resume)
