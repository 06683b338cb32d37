"""One exit-code table: the README's, which `scrapekit --help` shows row for row."""

from __future__ import annotations

import re

import pytest

from scrapekit.cli import EXIT_CODES
from tests.conftest import REPO, Project

ROW = re.compile(r"^\| (\d+) \| (.+) \|$", re.MULTILINE)


def readme_table() -> list[tuple[int, str]]:
    """The rows of the README's `| exit code | meaning |` table, Markdown code marks removed."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| exit code | meaning |") :].split("\n\n", 1)[0]
    return [(int(code), meaning.replace("`", "")) for code, meaning in ROW.findall(table)]


def test_cli_table_says_what_the_readme_says() -> None:
    """Same codes, same meanings, same order: a change to one is a change to both."""
    rows = readme_table()
    assert [code for code, _ in rows] == [0, 1, 2, 3, 75]
    assert list(EXIT_CODES) == rows


@pytest.mark.subprocess
def test_help_shows_every_row(project: Project) -> None:
    """`scrapekit --help` ends with the table, each meaning whole (only rewrapped)."""
    result = project.run("--help")
    assert result.returncode == 0, result.stderr
    help_text = " ".join(result.stdout[result.stdout.index("exit codes:") :].split())
    for code, meaning in readme_table():
        assert f" {code} {meaning}" in help_text
