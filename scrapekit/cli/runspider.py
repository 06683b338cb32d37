"""`scrapekit runspider FILE.py [-o|-O FILE]... [-a K=V]... [-s K=V]...`: a spider from one file.

The file must define exactly one named Spider subclass (as in Scrapy, which refuses a file with
none). Settings are the project's when the working directory is inside a project, the defaults
otherwise (then SCRAPEKIT_* and -s still apply). The crawl's state lives where `crawl`'s does:
`STATE_DIR/<name>/` under the project root, or under the working directory outside a project
(`./.scrapekit/<name>/`), so running the same file again from the same folder resumes it.
Everything after loading the spider is `crawl`'s own code (cli/crawl.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from scrapekit.cli.common import load_project_settings, spider_arguments
from scrapekit.cli.crawl import add_run_options, cmdline_settings, run_crawl
from scrapekit.exceptions import ProjectError, UsageError
from scrapekit.project import find_project
from scrapekit.settings import Settings
from scrapekit.spider import Spider
from scrapekit.spiderloader import describe_error


def register(commands: Any) -> None:
    """Add the `runspider` subcommand."""
    parser = commands.add_parser(
        "runspider", help="run the spider defined in a Python file, no project needed"
    )
    parser.add_argument("file", metavar="FILE.py", help="a file defining one Spider subclass")
    add_run_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the arguments and settings, load the spider from the file, run the crawl."""
    path = _spider_file(args.file)
    cmdline = cmdline_settings(args)
    spider_kwargs = spider_arguments(args.spider_args)
    load_settings(cmdline)  # a bad -s stops here, before the file's code runs
    spider_cls = spider_from_file(path)
    settings = load_settings(cmdline, spider_cls)
    return run_crawl(spider_cls, settings, args, **spider_kwargs)


def load_settings(cmdline: list[str], spider_cls: type[Spider] | None = None) -> Settings:
    """The project's settings inside a project; outside one, the defaults and the layers above."""
    if find_project() is not None:
        return load_project_settings(cmdline, spider_cls=spider_cls)[1]
    return Settings.load(project_file=None, spider_cls=spider_cls, env=os.environ, cmdline=cmdline)


def _spider_file(name: str) -> Path:
    path = Path(name)
    if path.suffix != ".py":
        raise UsageError(f"runspider {name}: expected a Python file (FILE.py)")
    if not path.is_file():
        raise UsageError(f"runspider {name}: no such file")
    return path.resolve()


def spider_from_file(path: Path) -> type[Spider]:
    """The one named Spider subclass that `path` defines; ProjectError for none or several."""
    module = _import_file(path)
    defined = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Spider) and obj.__module__ == module.__name__
    ]
    named = [cls for cls in defined if cls.name]
    if len(named) == 1:
        return named[0]
    if named:
        names = ", ".join(sorted(cls.name for cls in named))
        raise ProjectError(
            f"{path} defines {len(named)} spiders ({names}); runspider runs a file with one: "
            "split the file, or put them in a project's spiders/ and use `scrapekit crawl NAME`"
        )
    if defined:
        raise ProjectError(
            f"{path}: spider {defined[0].__qualname__} has no name; "
            'give it one (name = "...") to name its state folder'
        )
    raise ProjectError(f"{path} defines no Spider subclass (from scrapekit import Spider)")


def _import_file(path: Path) -> ModuleType:
    """Import the file as a module named after it (its folder importable, as `python FILE`
    would make it); a failure is one line naming the file and line."""
    name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules else None
    name = name or f"scrapekit_runspider_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"runspider {path}: cannot load it as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module  # dataclasses and pickling look classes up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ProjectError(f"cannot import {path}: {describe_error(exc)}") from exc
    return module
