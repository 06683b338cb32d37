"""What several commands share: finding the project and loading its settings and spiders."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scrapekit.exceptions import ProjectError, UsageError
from scrapekit.project import SETTINGS_FILE, activate, find_project
from scrapekit.settings import Settings
from scrapekit.spider import Spider
from scrapekit.spiderloader import SpiderLoader


def load_project_settings(
    cmdline: Sequence[str] = (),
    *,
    spider_cls: type[Spider] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Path, Settings]:
    """The project root and its validated settings; ProjectError outside a project."""
    root = find_project()
    if root is None:
        raise ProjectError(
            f"no {SETTINGS_FILE} in {Path.cwd()} or any folder above it; run scrapekit inside a "
            f"project (a folder with {SETTINGS_FILE} and a spiders/ package)"
        )
    activate(root)
    settings = Settings.load(
        project_file=root / SETTINGS_FILE,
        spider_cls=spider_cls,
        env=os.environ,
        cmdline=cmdline,
        overrides=overrides,
    )
    return root, settings


def spider_loader(settings: Settings) -> SpiderLoader:
    """The spiders of the project's SPIDER_MODULES."""
    return SpiderLoader(settings["SPIDER_MODULES"])


def load_settings_anywhere(cmdline: Sequence[str] = ()) -> Settings:
    """The project's settings inside a project, else the defaults (with SCRAPEKIT_* and -s)."""
    if find_project() is not None:
        return load_project_settings(cmdline)[1]
    return Settings.load(project_file=None, spider_cls=None, env=os.environ, cmdline=cmdline)


def spider_arguments(pairs: list[str]) -> dict[str, str]:
    """The `-a NAME=VALUE` spider arguments as keyword arguments."""
    kwargs = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-a {pair!r}: expected NAME=VALUE")
        kwargs[name.strip()] = value
    return kwargs


def add_setting_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """-s/--set KEY=VALUE (repeatable) into `args.settings`."""
    parser.add_argument(
        "-s",
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help or "override a setting (may be repeated)",
    )


def add_spider_and_setting_options(parser: argparse.ArgumentParser) -> None:
    """-a NAME=VALUE (into `args.spider_args`, see spider_arguments) and -s KEY=VALUE."""
    parser.add_argument(
        "-a",
        dest="spider_args",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a spider argument (may be repeated)",
    )
    add_setting_option(parser)
