"""Finds Spider subclasses in the modules named by SPIDER_MODULES.

A package is searched with its submodules. A module that fails to import, and two spiders with
one name, are configuration errors naming the module and the fix.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import pkgutil
import sysconfig
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

from scrapekit.exceptions import ProjectError, SpiderNotFound
from scrapekit.spider import Spider


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name or name.startswith(f"{exc.name}."):
            raise ProjectError(
                f"spider module {name!r} (SPIDER_MODULES) not found; check SPIDER_MODULES in "
                "settings.toml and that you run scrapekit inside the project"
            ) from None
        raise _import_error(name, exc) from exc
    except Exception as exc:
        raise _import_error(name, exc) from exc


def _import_error(name: str, exc: Exception) -> ProjectError:
    return ProjectError(f"cannot import spider module {name!r}: {describe_error(exc)}")


# Where library code lives: an error raised in there is located at the user's line instead.
_LIBRARY_DIRS = tuple(
    {str(Path(p).resolve()) + os.sep for k in ("stdlib", "platstdlib", "purelib", "platlib")
     if (p := sysconfig.get_paths().get(k))}
    | {str(Path(__file__).resolve().parent) + os.sep}
)  # fmt: skip


def describe_error(exc: Exception) -> str:
    """`Type: message (file:line)`: a SyntaxError's line, else the innermost frame of the
    user's code (a bad regex passed to a library is located at the line that passed it)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"SyntaxError: {exc.msg} ({exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    user = [
        f
        for f in frames
        if not f.filename.startswith("<")
        and not str(Path(f.filename).resolve()).startswith(_LIBRARY_DIRS)
    ]
    frame = (user or frames)[-1] if frames else None
    where = f" ({frame.filename}:{frame.lineno})" if frame is not None else ""
    return f"{type_name(exc)}: {exc}{where}"


def type_name(exc: BaseException) -> str:
    """`ValueError`, or `re.error`: a builtin's bare name, any other with its module."""
    kind = type(exc)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _walk(names: Iterable[str]) -> Iterator[ModuleType]:
    for name in names:
        module = _import(name)
        yield module
        if hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, prefix=f"{name}."):
                yield _import(info.name)


class SpiderLoader:
    """Maps spider names to classes for the modules in SPIDER_MODULES."""

    def __init__(self, modules: Iterable[str]) -> None:
        self._spiders: dict[str, type[Spider]] = {}
        for module in _walk(modules):
            for obj in vars(module).values():
                if not (
                    inspect.isclass(obj)
                    and issubclass(obj, Spider)
                    and obj.__module__ == module.__name__
                    and obj.name
                ):
                    continue
                other = self._spiders.get(obj.name)
                if other is not None and other is not obj:
                    raise ProjectError(
                        f"two spiders are named {obj.name!r}: {other.__module__}."
                        f"{other.__qualname__} and {obj.__module__}.{obj.__qualname__}; "
                        "rename one"
                    )
                self._spiders[obj.name] = obj

    def list(self) -> list[str]:
        """Every spider name, sorted."""
        return sorted(self._spiders)

    def load(self, name: str) -> type[Spider]:
        """The spider class called `name`; SpiderNotFound lists close matches."""
        try:
            return self._spiders[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._spiders, n=3, cutoff=0.6)
            raise SpiderNotFound(name, list(self._spiders), close) from None
