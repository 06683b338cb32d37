"""Tests for scrapekit.pipelines.exporters: streaming JSONL, JSON and CSV files that stay valid."""

from __future__ import annotations

import csv
import dataclasses
import json
import tracemalloc
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from scrapekit.exceptions import ComponentError, PipelineError
from scrapekit.pipelines.exporters import (
    CsvExporter,
    JsonExporter,
    JsonLinesExporter,
    exporter_for,
    feed_format,
    json_default,
)

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

NASTY: dict[str, Any] = {
    "quotes": "double \" and 'single', with, commas; and semicolons",
    "lines": "first\nsecond\r\nthird\rfourth",
    "tab": "a\tb",
    "backslash": "C:\\path\\to\\file and a literal \\n",
    "unicode": "Zoë — ĳ 中文 עברית Ω",
    "emoji": "🕷️🎉👩‍👩‍👧",
    "none": None,
    "nested": {"list": [1, "two", {"three": 3.0}], "empty": {}, "quote": '"'},
    "list": ["a,b", 'c"d', None],
    "int": 42,
    "float": 3.5,
    "bool": True,
    "when": WHEN,
}
# What JSON gives back for NASTY: everything as written, the datetime as ISO text.
NASTY_JSON = {**NASTY, "when": WHEN.isoformat()}
# What CSV gives back: text cells; None empty; lists/dicts as JSON.
NASTY_CSV = {
    **{key: value for key, value in NASTY.items() if isinstance(value, str)},
    "none": "",
    "nested": json.dumps(NASTY["nested"], ensure_ascii=False),
    "list": json.dumps(NASTY["list"], ensure_ascii=False),
    "int": "42",
    "float": "3.5",
    "bool": "True",
    "when": WHEN.isoformat(),
}


def read_back(path: Path) -> list[dict[str, Any]]:
    """Parse a feed file with the standard library, by its extension."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        assert isinstance(data, list)
        return data
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line]
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def write_items(path: Path, items: list[dict[str, Any]], *, overwrite: bool = False) -> None:
    exporter = exporter_for(path, overwrite=overwrite)
    for item in items:
        exporter.write(item)
    exporter.close()


FORMATS = [
    pytest.param("out.jsonl", id="jsonl"),
    pytest.param("out.json", id="json"),
    pytest.param("out.csv", id="csv"),
]


def expected(name: str, item: dict[str, Any]) -> dict[str, Any]:
    if name.endswith(".csv"):
        return {key: "" if value is None else str(value) for key, value in item.items()}
    return item


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_of_nasty_values(tmp_path: Path, name: str) -> None:
    """Unicode, quotes, commas, newlines, tabs, backslashes, None, nesting and dates read back."""
    path = tmp_path / name
    write_items(path, [NASTY, NASTY])
    want = NASTY_CSV if name.endswith(".csv") else NASTY_JSON
    assert read_back(path) == [want, want]


@pytest.mark.parametrize("name", FORMATS)
def test_append_keeps_a_valid_file(tmp_path: Path, name: str) -> None:
    """Two appending runs give one valid file holding the items of both."""
    path = tmp_path / name
    first = [{"n": 1, "s": 'a,"b"\n'}, {"n": 2, "s": "é"}]
    second = [{"n": 3, "s": "🕷"}]
    write_items(path, first)
    write_items(path, second)
    assert read_back(path) == [expected(name, item) for item in first + second]


@pytest.mark.parametrize("name", FORMATS)
def test_overwrite_truncates(tmp_path: Path, name: str) -> None:
    """Overwrite replaces what an earlier run wrote."""
    path = tmp_path / name
    write_items(path, [{"n": 1}, {"n": 2}])
    write_items(path, [{"n": 3}], overwrite=True)
    assert read_back(path) == [expected(name, {"n": 3})]


@pytest.mark.parametrize("name", FORMATS)
def test_append_with_no_new_items_keeps_the_file(tmp_path: Path, name: str) -> None:
    """An appending run that exports nothing leaves the earlier items intact and valid."""
    path = tmp_path / name
    write_items(path, [{"n": 1}])
    write_items(path, [])
    assert read_back(path) == [expected(name, {"n": 1})]


def test_empty_json_is_an_empty_array(tmp_path: Path) -> None:
    """Closing a JSON exporter after zero items leaves `[]`."""
    path = tmp_path / "out.json"
    write_items(path, [])
    assert json.loads(path.read_text(encoding="utf-8")) == []


def test_empty_jsonl_is_an_empty_file(tmp_path: Path) -> None:
    """Closing a JSON Lines exporter after zero items leaves an empty file."""
    path = tmp_path / "out.jsonl"
    write_items(path, [])
    assert path.read_bytes() == b""


def test_empty_csv_without_fields_is_empty(tmp_path: Path) -> None:
    """A CSV with no items and no configured fields is an empty file."""
    path = tmp_path / "out.csv"
    write_items(path, [])
    assert path.read_bytes() == b""


def test_empty_csv_with_fields_is_header_only(tmp_path: Path) -> None:
    """A CSV with no items but configured fields holds just the header."""
    path = tmp_path / "out.csv"
    CsvExporter(path, overwrite=True, fields=["a", "b"]).close()
    assert path.read_bytes() == b"a,b\r\n"


def test_json_append_continues_an_empty_array(tmp_path: Path) -> None:
    """Appending to `[]` adds elements without a leading comma."""
    path = tmp_path / "out.json"
    path.write_text("  [ ]\n\n", encoding="utf-8")
    write_items(path, [{"n": 1}, {"n": 2}])
    assert read_back(path) == [{"n": 1}, {"n": 2}]


def test_json_append_onto_blank_file_starts_an_array(tmp_path: Path) -> None:
    """A file holding only whitespace is treated as empty."""
    path = tmp_path / "out.json"
    path.write_text(" \n", encoding="utf-8")
    write_items(path, [{"n": 1}])
    assert read_back(path) == [{"n": 1}]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('{"n": 1}\n', id="object"),
        pytest.param('[{"n": 1},\n{"n": 2}', id="unterminated"),
        pytest.param("hello", id="text"),
    ],
)
def test_json_append_onto_non_array_fails_in_one_line(tmp_path: Path, content: str) -> None:
    """Appending to a file that is not a JSON array fails at open, leaving the file alone."""
    path = tmp_path / "out.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PipelineError) as info:
        JsonExporter(path, overwrite=False)
    assert str(info.value) == f"{path} is not a JSON array; use -O to overwrite it"
    assert path.read_text(encoding="utf-8") == content


def test_csv_append_reuses_the_existing_header(tmp_path: Path) -> None:
    """Appending to a CSV writes rows in the file's column order and no second header."""
    path = tmp_path / "out.csv"
    path.write_text("b,a\r\n1,2\r\n", encoding="utf-8")
    write_items(path, [{"a": "x", "b": "y"}])
    assert path.read_bytes() == b"b,a\r\n1,2\r\ny,x\r\n"


def test_jsonl_append_after_a_cut_line_starts_a_new_line(tmp_path: Path) -> None:
    """A killed crawl's half-written last line does not swallow the next run's first record."""
    path = tmp_path / "out.jsonl"
    path.write_text('{"n": 1}\n{"n": 2, "cut', encoding="utf-8")
    write_items(path, [{"n": 3}])
    assert path.read_text(encoding="utf-8").splitlines()[-1] == '{"n": 3}'


def test_csv_fields_come_from_the_first_item(tmp_path: Path) -> None:
    """Without configured fields, the first item's keys set the columns and their order."""
    path = tmp_path / "out.csv"
    with capture_logs() as logs:
        write_items(path, [{"b": 1, "a": 2}, {"a": 3, "extra": 4, "more": 5}, {"extra": 6}])
    assert read_back(path) == [{"b": "1", "a": "2"}, {"b": "", "a": "3"}, {"b": "", "a": ""}]
    dropped = sorted(entry["field"] for entry in logs if entry["event"] == "csv field dropped")
    assert dropped == ["extra", "more"]
    assert all(entry["log_level"] == "warning" for entry in logs)


def test_csv_configured_fields_select_and_order(tmp_path: Path) -> None:
    """FEED_EXPORT_FIELDS choose the columns; other keys are left out without a warning."""
    path = tmp_path / "out.csv"
    exporter = CsvExporter(path, overwrite=True, fields=["c", "a"])
    with capture_logs() as logs:
        exporter.write({"a": 1, "b": 2, "c": 3})
    exporter.close()
    assert path.read_bytes() == b"c,a\r\n3,1\r\n"
    assert logs == []


def test_json_configured_fields_select_and_order(tmp_path: Path) -> None:
    """Configured fields also choose and order the keys of JSON records."""
    path = tmp_path / "out.jsonl"
    exporter = JsonLinesExporter(path, overwrite=True, fields=["c", "a", "missing"])
    exporter.write({"a": 1, "b": 2, "c": 3})
    exporter.close()
    assert path.read_text(encoding="utf-8") == '{"c": 3, "a": 1}\n'


def test_exporter_creates_parent_folders(tmp_path: Path) -> None:
    """Opening an exporter creates missing parent folders."""
    path = tmp_path / "a" / "b" / "out.jsonl"
    write_items(path, [{"n": 1}])
    assert read_back(path) == [{"n": 1}]


def test_close_twice_is_harmless(tmp_path: Path) -> None:
    """A second close() does nothing (and writes no second closing bracket)."""
    path = tmp_path / "out.json"
    exporter = JsonExporter(path, overwrite=True)
    exporter.write({"n": 1})
    exporter.close()
    exporter.close()
    assert read_back(path) == [{"n": 1}]


@pytest.mark.parametrize(
    ("name", "format", "want"),
    [
        pytest.param("x.jsonl", None, "jsonl", id="jsonl"),
        pytest.param("x.jl", None, "jsonl", id="jl"),
        pytest.param("x.NDJSON", None, "jsonl", id="ndjson-upper"),
        pytest.param("x.json", None, "json", id="json"),
        pytest.param("x.csv", None, "csv", id="csv"),
        pytest.param("x.txt", "csv", "csv", id="format-wins"),
        pytest.param("x.json", "jsonl", "jsonl", id="format-over-extension"),
    ],
)
def test_feed_format(name: str, format: str | None, want: str) -> None:
    """The format is the one given, else the extension's."""
    assert feed_format(name, format) == want


def test_unknown_extension_fails_in_one_line() -> None:
    """An unknown extension without a format names the file and the accepted extensions."""
    with pytest.raises(ComponentError) as info:
        exporter_for("out.txt", overwrite=True)
    assert str(info.value) == (
        "cannot tell the feed format of 'out.txt' from its extension:"
        " use .jsonl, .jl, .ndjson, .json, .csv or give a format"
    )


def test_unknown_format_fails_in_one_line() -> None:
    """An unknown format name is refused with the known ones."""
    with pytest.raises(ComponentError, match="unknown feed format 'xml'"):
        feed_format("out.xml", "xml")


@dataclasses.dataclass
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    ("value", "want"),
    [
        pytest.param(datetime(2024, 5, 6, 7, 8, 9), "2024-05-06T07:08:09", id="datetime"),
        pytest.param(date(2024, 5, 6), "2024-05-06", id="date"),
        pytest.param(Decimal("1.10"), "1.10", id="decimal"),
        pytest.param(b"caf\xc3\xa9 \xff", "café \ufffd", id="bytes"),
        pytest.param({3}, [3], id="set"),
        pytest.param(Point(1, 2), {"x": 1, "y": 2}, id="dataclass"),
        pytest.param(Path("a/b"), "a/b", id="fallback-str"),
    ],
)
def test_json_default(value: object, want: object) -> None:
    """Values json cannot encode are converted to the nearest JSON value."""
    assert json_default(value) == want


@pytest.mark.slow  # tracemalloc slows the 100k writes to ~3 s per format
@pytest.mark.parametrize("name", FORMATS)
def test_streaming_memory_stays_flat(tmp_path: Path, name: str) -> None:
    """Writing 100k items keeps traced memory small: records are not kept."""
    path = tmp_path / name
    tracemalloc.start()
    try:
        exporter = exporter_for(path, overwrite=True)
        for n in range(100_000):
            exporter.write({"n": n, "title": f"item {n}", "tags": ["a", "b"]})
        exporter.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024
    assert len(read_back(path)) == 100_000
