"""The README's and docs/commands.md's command tables list every command of `scrapekit --help`
once, in its order."""

from __future__ import annotations

import argparse
import re

import pytest

from scrapekit.cli import build_parser
from tests.conftest import REPO

ROW = re.compile(r"^\| `(?:scrapekit )?([a-z]+)\b[^|]*` \|", re.MULTILINE)


def help_commands() -> list[str]:
    """The subcommands as `scrapekit --help` lists them."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(commands.choices)


def table_commands(path: str) -> list[str]:
    """The command of each row of the file's first `| command | does |` table."""
    text = (REPO / path).read_text(encoding="utf-8")
    table = text[text.index("| command | does |") :].split("\n\n", 1)[0]
    return ROW.findall(table)


@pytest.mark.parametrize("path", ["README.md", "docs/commands.md"])
def test_the_command_table_matches_help(path: str) -> None:
    """One row per command, none missing or repeated, in --help's order."""
    assert len(help_commands()) == 14
    assert table_commands(path) == help_commands()
