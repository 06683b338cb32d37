"""`scrapekit genspider NAME URL_OR_DOMAIN [--template T] [--force]` and `genspider -l`.

Writes a spider that `scrapekit crawl NAME` runs as generated: in a project, into the folder
of the first SPIDER_MODULES package (`spiders/NAME.py`); outside one, `NAME.py` in the working
directory (run it with `scrapekit runspider NAME.py`). A name some spider of the project has,
or a file that exists, is refused unless `--force` (which replaces the file, never another
module's spider). Templates are the `.py.tmpl` files of `scrapekit/templates/spiders/`, filled
in with `$name`, `$classname` (quotes -> QuotesSpider), `$domain` (the host), `$url` (the
start URL) and `$env_prefix` (QUOTES, for environment variable names).
"""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapekit.cli import scaffold
from scrapekit.cli.common import load_project_settings, spider_loader
from scrapekit.exceptions import ProjectError, SpiderNotFound, UsageError
from scrapekit.project import find_project

DEFAULT_TEMPLATE = "basic"


def register(commands: Any) -> None:
    """Add the `genspider` subcommand."""
    parser = commands.add_parser("genspider", help="write a new spider from a template")
    parser.add_argument("name", metavar="NAME", nargs="?", help="the spider's name")
    parser.add_argument(
        "target", metavar="URL_OR_DOMAIN", nargs="?", help="the start URL, or a domain"
    )
    parser.add_argument(
        "-t",
        "--template",
        default=DEFAULT_TEMPLATE,
        help=f"the template (default: {DEFAULT_TEMPLATE}; see -l)",
    )
    parser.add_argument("-l", "--list", action="store_true", help="list the available templates")
    parser.add_argument(
        "--force", action="store_true", help="replace an existing spider file of that name"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """List the templates, or write the spider and say how to run it."""
    available = scaffold.spider_templates()
    if args.list:
        print("\n".join(available))
        return 0
    if args.name is None or args.target is None:
        raise UsageError(
            "genspider: expected NAME and URL_OR_DOMAIN, e.g. quotes quotes.toscrape.com"
        )
    name: str = args.name
    if not scaffold.is_identifier(name) or name.startswith("__"):
        raise UsageError(
            f"genspider {name!r}: a spider name must be a Python identifier (it names its "
            "module), not starting with __, e.g. quotes or books_2"
        )
    template = available.get(args.template)
    if template is None:
        raise UsageError(
            f"genspider: no template {args.template!r}; available: {', '.join(available)}"
        )
    url, domain = start_url(args.target)
    path, in_project = _target(name, force=args.force)
    values = {
        "name": name,
        "classname": class_name(name),
        "domain": domain,
        "url": url,
        "env_prefix": name.upper(),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(scaffold.render(template, values), encoding="utf-8")
    except OSError as exc:  # a read-only folder, or a file where spiders/ should be
        raise UsageError(
            f"genspider: cannot write {_relative(path)} ({exc.strerror or exc}: {exc.filename}); "
            f"make {_relative(path.parent)} a folder you can write to"
        ) from None
    shown = _relative(path)
    print(f"Created spider {name!r} using template {args.template!r} in {shown}")
    command = f"scrapekit crawl {name}" if in_project else f"scrapekit runspider {shown}"
    print(f"Run it: {command} -O {name}.jsonl")
    return 0


def class_name(name: str) -> str:
    """The spider's class name: quotes -> QuotesSpider, books_2 -> Books2Spider."""
    words = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return words if words.endswith("Spider") else f"{words}Spider"


#: A host as it can stand in the spider's source: no quote, backslash or space.
_HOST = re.compile(r"[^\s\"'\\/]+")


def start_url(target: str) -> tuple[str, str]:
    """(start URL, host) from a URL or a bare domain (which gets https:// and /)."""
    text = target.strip()
    try:
        parts = urlsplit(text if "://" in text else f"https://{text}")
        host = parts.hostname or ""
    except ValueError:  # e.g. an unclosed "[" of an IPv6 host
        parts, host = urlsplit(""), ""
    if (
        parts.scheme not in ("http", "https")
        or not _HOST.fullmatch(host)
        or any(char.isspace() for char in text)
    ):
        raise UsageError(
            f"genspider: {target!r} is not a URL or a domain; e.g. quotes.toscrape.com or "
            "https://quotes.toscrape.com/page/1/"
        )
    if "://" not in text:
        text = parts._replace(path=parts.path or "/").geturl()
    # Written into the spider's source as a string literal: a '"' or '\\' would end or bend
    # it, and neither belongs raw in a URL.
    return text.replace("\\", "%5C").replace('"', "%22"), host


def _target(name: str, *, force: bool) -> tuple[Path, bool]:
    """Where the spider goes and whether that is a project; UsageError if it exists."""
    if find_project() is None:
        path = Path.cwd() / f"{name}.py"
        _refuse_file(path, force)
        return path, False
    root, settings = load_project_settings()
    modules = list(settings["SPIDER_MODULES"])
    if not modules:
        raise UsageError("genspider: SPIDER_MODULES is empty; add a spiders package to it")
    path = root.joinpath(*modules[0].split(".")) / f"{name}.py"
    try:
        existing = spider_loader(settings).load(name)
    except SpiderNotFound:
        existing = None
    except ProjectError:
        existing = None  # a spider module that does not import: the file check still applies
    if existing is not None:
        where = Path(inspect.getfile(existing)).resolve()
        if not force or where != path.resolve():
            raise UsageError(
                f"genspider: spider {name!r} exists ({_relative(where)}); choose another name"
                + ("" if where != path.resolve() else ", or pass --force to replace it")
            )
    _refuse_file(path, force)
    return path, True


def _refuse_file(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UsageError(
            f"genspider: {_relative(path)} exists; choose another name, or pass --force to "
            "replace it"
        )


def _relative(path: Path) -> str:
    """`path` relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
