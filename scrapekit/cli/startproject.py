"""`scrapekit startproject NAME [DIR]`: a new project folder that runs at once.

It holds `settings.toml` (the polite settings recommended for a new project, each explained),
`spiders/__init__.py`, a `pipelines.py` example (written, not enabled), a README saying how
to run it by hand and from cron, and a `.gitignore` for the state folder. The files come from
`scrapekit/templates/project/` (see scaffold.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scrapekit.cli import scaffold
from scrapekit.exceptions import UsageError


def register(commands: Any) -> None:
    """Add the `startproject` subcommand."""
    parser = commands.add_parser("startproject", help="create a new project folder")
    parser.add_argument("project", metavar="NAME", help="the project's name (a Python identifier)")
    parser.add_argument(
        "directory", metavar="DIR", nargs="?", help="where to create it (default: ./NAME)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the name and the folder, write the files, say what to do next."""
    name: str = args.project
    if not scaffold.is_identifier(name):
        raise UsageError(
            f"startproject {name!r}: a project name must be a Python identifier "
            "(letters, digits and _, not starting with a digit), e.g. my_project"
        )
    folder = Path(args.directory if args.directory is not None else name)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        what = "is not empty" if folder.is_dir() else "exists and is not a folder"
        raise UsageError(f"startproject: {folder} {what}; choose another DIR")
    root = folder.resolve()
    values = {"project": name, "path": str(root)}
    files = [(root / Path(relative), template) for relative, template in scaffold.project_files()]
    try:
        for path, template in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(scaffold.render(template, values), encoding="utf-8")
    except OSError as exc:  # a parent that is a file, a read-only or missing file system
        reason = exc.strerror or str(exc)
        raise UsageError(
            f"startproject: cannot create {folder} ({reason}: {exc.filename}); "
            "choose a DIR in a folder you can write to"
        ) from None
    print(f"New scrapekit project {name!r} in {root}, start a spider with:\n")
    print(f"    cd {folder}")
    print("    scrapekit genspider example example.com")
    print("    scrapekit crawl example -O example.jsonl")
    return 0
