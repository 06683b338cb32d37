"""Shared fixtures: a clean environment per test, the demo site, throw-away projects, the CLI,
more loopback servers (other origins) and an origin that refuses connections.

Tests are hermetic: each runs in its own temporary working directory, child crawls of the
repository's own project keep their state under tmp_path, and the session fails if it leaves
anything (`.scrapekit/`, an untracked file) in the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from pytest_httpserver import HTTPServer

from scrapekit.demo import DemoSite
from tests.fakes import MakeModule

REPO = Path(__file__).resolve().parents[1]


_STRAY_IGNORED = (".scrapekit", "demo.jsonl")


def _checkout_leftovers() -> set[str]:
    """Untracked files in the checkout, plus state and output the tests must never write."""
    found: set[str] = set()
    for name in _STRAY_IGNORED:
        path = REPO / name
        if path.is_dir():
            found.update(f"{p.relative_to(REPO)} {p.stat().st_mtime_ns}" for p in path.rglob("*"))
            found.add(f"{name}/")
        elif path.exists():
            found.add(f"{name} {path.stat().st_mtime_ns}")
    git = shutil.which("git")
    if git is not None and (REPO / ".git").exists():
        listed = subprocess.run(
            [git, "ls-files", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if listed.returncode == 0:
            found.update(listed.stdout.splitlines())
    return found


@pytest.fixture(scope="session", autouse=True)
def _checkout_stays_clean() -> Iterator[None]:
    """Fail the session if a test wrote into the checkout (state, feeds, stray files)."""
    before = _checkout_leftovers()
    yield
    added = sorted(_checkout_leftovers() - before)
    assert not added, f"tests wrote into the checkout {REPO}: {added[:10]}"


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """No SCRAPEKIT_* variable leaks into a test, structlog starts unconfigured, and the
    working directory is a fresh folder: in-process crawls outside a project put their
    state (STATE_DIR, relative) there, never into the checkout."""
    for key in list(os.environ):
        if key.startswith("SCRAPEKIT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
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

    #: Where child crawls keep their state (SCRAPEKIT_STATE_DIR); None: the project's own.
    state: Path | None = None

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
        if self.state is not None:
            env = {"SCRAPEKIT_STATE_DIR": str(self.state), **(env or {})}
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


def crawl_finished(stderr: str) -> dict[str, Any]:
    """The `crawl finished` record of a child crawl's JSON log (--log-format json)."""
    for line in stderr.splitlines():
        if line.startswith("{") and json.loads(line).get("event") == "crawl finished":
            record: dict[str, Any] = json.loads(line)
            return record
    raise AssertionError(f"no crawl finished line in:\n{stderr}")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project in tmp_path."""
    return Project(tmp_path / "project")


@pytest.fixture
def repo_project(tmp_path: Path) -> Project:
    """The repository's own project (spiders/demo.py), its state kept under tmp_path."""
    project = Project.__new__(Project)
    project.root = REPO
    project.state = tmp_path / "state"
    return project


@pytest.fixture(scope="session")
def _spare_servers() -> Iterator[tuple[HTTPServer, HTTPServer]]:
    """Two more loopback servers, each on its own port (stopping one takes 0.5 s: share them)."""
    pair = HTTPServer(host="localhost", port=0), HTTPServer(host="localhost", port=0)
    for server in pair:
        server.start()
    yield pair
    for server in pair:
        server.stop()


@pytest.fixture
def other_server(_spare_servers: tuple[HTTPServer, HTTPServer]) -> Iterator[HTTPServer]:
    """A second loopback server (localhost, its own port): another origin than `httpserver`."""
    yield _spare_servers[0]
    _spare_servers[0].clear()


@pytest.fixture
def third_server(_spare_servers: tuple[HTTPServer, HTTPServer]) -> Iterator[HTTPServer]:
    """A third loopback server on its own port: yet another origin."""
    yield _spare_servers[1]
    _spare_servers[1].clear()


@pytest.fixture
def unreachable_origin() -> Iterator[str]:
    """`http://127.0.0.1:<port>` on a port that is bound but never listens: connections are
    refused (held for the whole test, so nothing else can take the port meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def unreachable_url(unreachable_origin: str) -> str:
    """A URL whose connections are refused (see `unreachable_origin`)."""
    return unreachable_origin + "/"
