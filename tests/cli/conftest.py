"""Fixtures shared by the command-line tests: the repository's own project and, for the
PROXY tests, a forward proxy and a small demo site, each started by the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scrapekit.demo import DemoSite
from tests.conftest import Project
from tests.proxyserver import ForwardProxy, running


@pytest.fixture
def repo(repo_project: Project) -> Project:
    """The repository's own project (spiders/demo.py: logs in), its state under tmp_path."""
    return repo_project


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with running(ForwardProxy()) as server:
        yield server


@pytest.fixture
def small_site() -> Iterator[DemoSite]:
    """A six-product demo site, three products a page, for this test alone (the PROXY and
    cache tests count its requests); other tests keep the session's `demo_site`."""
    with DemoSite(products=6, per_page=3) as demo:
        yield demo
