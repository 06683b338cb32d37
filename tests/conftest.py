"""Shared fixtures: a clean environment per test, the demo site, throw-away projects, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from scrapekit.demo import DemoSite
from tests.fakes import MakeModule

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SCRAPEKIT_* variable leaks into a test, and structlog starts unconfigured."""
    for key in list(os.environ):
        if key.startswith("SCRAPEKIT_"):
            monkeypatch.delenv(key)
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeModule]:
    """Write a uniquely named module into tmp_path (on sys.path) and return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def make(source: str) -> str:
        name = f"skmod_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        names.append(name)
        return name

    yield make
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def demo_site() -> Iterator[DemoSite]:
    """The bundled demo shop on a free loopback port, shared by the whole session."""
    site = DemoSite()
    site.start()
    yield site
    site.stop()


class Project:
    """A throw-away scrapekit project folder: settings.toml plus a spiders package."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "spiders").mkdir(parents=True)
        (root / "spiders" / "__init__.py").write_text("")
        self.write_settings('SPIDER_MODULES = ["spiders"]\n')

    def write_settings(self, text: str) -> None:
        """Replace settings.toml."""
        (self.root / "settings.toml").write_text(textwrap.dedent(text))

    def add_spider(self, module: str, source: str) -> None:
        """Write spiders/<module>.py."""
        (self.root / "spiders" / f"{module}.py").write_text(textwrap.dedent(source))

    def run(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `scrapekit ARGS` in the project as a child process."""
        return subprocess.run(
            [sys.executable, "-m", "scrapekit", *args],
            cwd=self.root,
            env=child_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child scrapekit: no SCRAPEKIT_* leaks, JSON logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPEKIT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project in tmp_path."""
    return Project(tmp_path / "project")
