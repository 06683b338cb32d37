"""Fixtures for the crash tests: the site, a project per scenario, uninterrupted baselines,
and a check that no child process, thread or listening socket outlives a test."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.crash.harness import CrawlProject, read_feed
from tests.crash.site import GraphSite, ItemKey

#: Pages and per-page delay of the crash-test site: a crawl of ~1 s at CONCURRENCY 8.
PAGES = 160
DELAY = 0.01

MakeProject = Callable[[GraphSite, str, str], CrawlProject]


@pytest.fixture
def make_project(tmp_path: Path) -> Iterator[MakeProject]:
    """Build projects under tmp_path; afterwards, every child they started must be reaped."""
    made: list[CrawlProject] = []

    def make(site: GraphSite, feed: str, flag: str = "-o") -> CrawlProject:
        project = CrawlProject(tmp_path / f"project{len(made)}", site, feed, flag)
        made.append(project)
        return project

    yield make
    running = [c.pid for p in made for c in p.children if c.poll() is None]
    assert not running, f"child crawls still running: {running}"


MakeSite = Callable[..., GraphSite]


@pytest.fixture
def make_site() -> Iterator[MakeSite]:
    """Start crash-test sites (GraphSite arguments); afterwards each is closed, its threads
    joined and its sockets closed, and no thread started meanwhile is left running."""
    before = set(threading.enumerate())
    started: list[GraphSite] = []

    def make(pages: int = PAGES, *, delay: float = DELAY) -> GraphSite:
        graph = GraphSite(pages, delay=delay).__enter__()
        started.append(graph)
        return graph

    yield make
    for graph in started:
        graph.close()
        assert graph.sockets_closed()
        assert not graph.errors, f"the site failed: {graph.errors[:3]}"
    leaked = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def site(make_site: MakeSite) -> GraphSite:
    """The crash-test site: PAGES pages, DELAY seconds each."""
    return make_site()


@dataclass(frozen=True)
class Baseline:
    """One uninterrupted crawl: its items, the site's fetch counts and the site's model."""

    items: Counter[ItemKey]
    fetches: Counter[str]
    paths: list[str]
    expected: Counter[ItemKey]


@pytest.fixture(scope="session")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Baseline]:
    """One uninterrupted `-o` crawl per feed format, run once per session (on demand)."""
    cache: dict[str, Baseline] = {}

    def baseline(feed: str) -> Baseline:
        if feed not in cache:
            root = tmp_path_factory.mktemp(f"baseline{feed.replace('.', '-')}")
            with GraphSite(PAGES, delay=DELAY) as graph:
                project = CrawlProject(root, graph, feed)
                run = project.run_to_end()
                assert run.child.returncode == 0, run.tail()
            assert not graph.errors, graph.errors
            cache[feed] = Baseline(
                Counter(read_feed(project.out)),
                graph.fetch_counts(),
                graph.paths(),
                graph.expected_items(),
            )
        return cache[feed]

    return baseline
