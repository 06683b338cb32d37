"""The file templates behind `startproject` and `genspider`, shipped in `scrapekit/templates/`.

A template is a `.tmpl` file filled in with `string.Template` (`$name`, `${name}`; `$$` is a
literal `$`). `project/` is a project folder, file for file (`gitignore.tmpl` becomes
`.gitignore`); `spiders/<template>.py.tmpl` are the spider templates `genspider --template`
picks from, listed from the folder, so a template added there is offered at once.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterator, Mapping
from importlib import resources
from importlib.abc import Traversable
from pathlib import PurePosixPath
from string import Template

from scrapekit.exceptions import ConfigError

SUFFIX = ".tmpl"
#: Template file names that become another name in the generated folder.
RENAMED = {"gitignore": ".gitignore"}


def templates() -> Traversable:
    """The folder of templates inside the installed package."""
    return resources.files("scrapekit") / "templates"


def render(template: Traversable, values: Mapping[str, str]) -> str:
    """The template's text with `values` filled in; ConfigError for a placeholder it lacks."""
    try:
        return Template(template.read_text(encoding="utf-8")).substitute(values)
    except KeyError as exc:
        known = ", ".join(f"${key}" for key in values)
        raise ConfigError(
            f"template {template.name}: unknown placeholder ${exc.args[0]} (known: {known})"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"template {template.name}: {exc} (write $$ for a $)") from None


def project_files() -> Iterator[tuple[PurePosixPath, Traversable]]:
    """(relative path to write, template) for every file of a new project."""

    def walk(
        folder: Traversable, prefix: PurePosixPath
    ) -> Iterator[tuple[PurePosixPath, Traversable]]:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                yield from walk(entry, prefix / entry.name)
            elif entry.name.endswith(SUFFIX):
                name = entry.name.removesuffix(SUFFIX)
                yield prefix / RENAMED.get(name, name), entry

    yield from walk(templates() / "project", PurePosixPath())


def spider_templates() -> dict[str, Traversable]:
    """Every spider template by name (`basic` for `basic.py.tmpl`), sorted."""
    suffix = ".py" + SUFFIX
    found = {
        entry.name.removesuffix(suffix): entry
        for entry in (templates() / "spiders").iterdir()
        if entry.name.endswith(suffix) and entry.is_file()
    }
    return dict(sorted(found.items()))


def is_identifier(name: str) -> bool:
    """Whether `name` can name a Python module or class (not a keyword)."""
    return name.isidentifier() and not keyword.iskeyword(name)
