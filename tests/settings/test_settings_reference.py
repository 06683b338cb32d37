"""Tests that defaults.py, the validator table and docs/settings.md list the same settings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from scrapekit.settings import defaults
from scrapekit.settings.defaults import DEFAULTS
from scrapekit.settings.validate import VALIDATORS

DOCS = Path(__file__).parents[2] / "docs" / "settings.md"


def documented_keys() -> list[str]:
    """Return the keys of the settings tables in docs/settings.md (rows starting "| `KEY` |")."""
    text = DOCS.read_text(encoding="utf-8")
    return re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", text, flags=re.MULTILINE)


def defaults_groups() -> dict[str, list[tuple[str, str | None]]]:
    """Return defaults.py's settings by "# -- group" comment, each with its docstring."""
    source = Path(defaults.__file__).read_text(encoding="utf-8")
    group_at = {
        number: line.removeprefix("# -- ").strip(" -")
        for number, line in enumerate(source.splitlines(), start=1)
        if line.startswith("# -- ")
    }
    body = ast.parse(source).body
    groups: dict[str, list[tuple[str, str | None]]] = {}
    for index, node in enumerate(body):
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if not isinstance(target, ast.Name) or not target.id.isupper() or target.id == "DEFAULTS":
            continue
        group = group_at[max(line for line in group_at if line < node.lineno)]
        after = body[index + 1] if index + 1 < len(body) else None
        doc = (
            after.value.value
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
            else None
        )
        groups.setdefault(group, []).append((target.id, doc if isinstance(doc, str) else None))
    return groups


def test_validators_cover_exactly_the_defaults() -> None:
    """Every default has a validator, and every validator has a default."""
    assert sorted(set(DEFAULTS) - set(VALIDATORS)) == [], "defaults without a validator"
    assert sorted(set(VALIDATORS) - set(DEFAULTS)) == [], "validators without a default"


def test_every_setting_is_documented() -> None:
    """Every key in defaults.py has a row in docs/settings.md."""
    assert sorted(set(DEFAULTS) - set(documented_keys())) == []


def test_docs_list_no_stale_or_duplicate_settings() -> None:
    """docs/settings.md documents each setting once, and only settings that exist."""
    keys = documented_keys()
    assert sorted(set(keys) - set(DEFAULTS)) == []
    assert len(keys) == len(set(keys))


def test_every_default_has_a_one_line_docstring() -> None:
    """Each setting in defaults.py is followed by a one-line attribute docstring."""
    settings = [item for group in defaults_groups().values() for item in group]
    assert [key for key, _ in settings] == list(DEFAULTS)
    assert [key for key, doc in settings if not doc or "\n" in doc] == []


def test_defaults_are_alphabetical_within_groups() -> None:
    """Within each "# -- group" of defaults.py the keys are in alphabetical order."""
    for group, settings in defaults_groups().items():
        keys = [key for key, _ in settings]
        assert keys == sorted(keys), f"group {group!r} is not alphabetical"
