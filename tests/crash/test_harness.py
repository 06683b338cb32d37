"""The crash-test harness itself: the site's model, the judges, the schedules, a deterministic
uninterrupted crawl, and interruptions that land where they were meant to.

These pass whatever the crawl's durability; the `crash` tests (test_crash.py) rely on them.
"""

from __future__ import annotations

import random
import signal
import socket
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.crash.conftest import Baseline, MakeProject
from tests.crash.harness import (
    IN_FLIGHT,
    Moment,
    commit_schedule,
    feed_problem,
    fetch_problems,
    item_problems,
    kill_schedule,
    read_feed,
    run_scenario,
)
from tests.crash.site import GraphSite, page_items


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_every_page_is_reachable_from_the_root_and_every_item_is_distinct() -> None:
    """The graph's links reach all pages from page 0, and no two items share an identity."""
    site = GraphSite(240)
    seen, todo = {0}, [0]
    while todo:
        for to in site.links(todo.pop()):
            if to not in seen:
                seen.add(to)
                todo.append(to)
    assert seen == set(range(240))
    expected = site.expected_items()
    assert set(expected.values()) == {1}
    assert sum(expected.values()) == sum(1 + n % 4 for n in range(240))


def test_the_site_serves_the_model_counts_fetches_and_closes_cleanly() -> None:
    """Pages carry their items and links on their own host; every request is counted (404s
    too); closing joins the threads and frees both ports."""
    with GraphSite(20) as site:
        status, body = _get(site.url(5))
        assert status == 200
        assert body.count('class="item"') == len(page_items(5))
        assert site.url(16) in body  # 3*5+1, on the other host
        assert _get(site.origins["127.0.0.1"] + "/p/5")[0] == 404  # page 5 lives on localhost
        assert _get(site.url(5))[0] == 200
        ports = [int(origin.rsplit(":", 1)[1]) for origin in site.origins.values()]
    assert site.fetch_counts() == Counter({"localhost/p/5": 2, "127.0.0.1/p/5": 1})
    assert site.sockets_closed()
    assert not site.errors
    for port in ports:
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))


def test_item_problems_name_missing_duplicated_and_unexpected_items() -> None:
    """The multiset judge counts each kind of difference and shows examples."""
    a, b, c = ("h", "/p/1", "0", "x"), ("h", "/p/1", "1", "y"), ("h", "/p/9", "0", "z")
    assert item_problems(Counter([a, b]), Counter([b, a])) == []
    problems = item_problems(Counter([a, b]), Counter([b, b, b, c]))
    assert problems == [
        "1 items missing (1 distinct), e.g. h/p/1#0",
        "2 items duplicated (1 distinct), e.g. h/p/1#1 x3",
        "1 items unexpected (1 distinct), e.g. h/p/9#0",
    ]


def test_fetch_problems_allow_in_flight_refetches_per_interruption_only() -> None:
    """Up to IN_FLIGHT refetches per interruption pass; more, a page refetched more often
    than there were interruptions, a page never fetched or an unknown path each fail."""
    site = GraphSite(IN_FLIGHT + 10)
    once = Counter(site.paths())
    assert fetch_problems(site, once, 0) == []
    refetched = once + Counter(site.paths()[:IN_FLIGHT])
    assert fetch_problems(site, refetched, 1) == []
    [too_many] = fetch_problems(site, refetched + Counter(site.paths()[-1:]), 1)
    assert too_many.startswith(f"{IN_FLIGHT + 1} refetches (of {IN_FLIGHT + 1} pages)")
    [twice] = fetch_problems(site, once + Counter({site.paths()[0]: 2}), 1)
    assert twice.startswith("1 pages refetched more often than there were interruptions")
    missing = once - Counter(site.paths()[:1])
    assert fetch_problems(site, missing + Counter(["localhost/p/0"]), 0) == [
        "1 pages never fetched, e.g. ['127.0.0.1/p/0']",
        "1 unknown paths fetched, e.g. ['localhost/p/0']",
    ]


def test_schedules_are_reproducible_and_cover_early_mid_and_after_items() -> None:
    """The same seed gives the same moments; each schedule has a kill right after start, at
    start-up (or not, for SIGTERM), mid-crawl and after items were written."""
    assert kill_schedule(random.Random(7)) == kill_schedule(random.Random(7))
    assert kill_schedule(random.Random(7)) != kill_schedule(random.Random(8))
    for seed in range(20):
        moments = kill_schedule(random.Random(seed))
        kinds = Counter(m.kind for m in moments)
        assert kinds == {"fetches": 3, "output": 1, "spawn": 1}
        assert Moment("fetches", fraction=0.0) in moments
        assert all(0.05 <= m.fraction <= 0.4 for m in moments if m.kind == "fetches" and m.fraction)
        assert "spawn" not in {m.kind for m in kill_schedule(random.Random(seed), spawn=False)}
    commits = commit_schedule(random.Random(1), 10)
    assert len(commits) == 10
    assert all(1 <= m.extra <= 4 and m.fraction <= 0.15 for m in commits)


_RECORD = '{"host": 1, "path": 2, "index": 3, "name": 4}'


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        pytest.param("a.json", f"[{_RECORD}", "JSONDecodeError", id="json-torn"),
        pytest.param("a.jsonl", f'{_RECORD}\n{{"host"', "JSONDecodeError", id="jsonl-torn"),
        pytest.param("a.jsonl", f"{_RECORD}\n", "", id="jsonl-ok"),
        pytest.param("a.csv", "host,path,index,name\n1,2,3,4\n", "", id="csv-ok"),
        pytest.param("a.json", "", "", id="json-empty"),
    ],
)  # fmt: skip
def test_feed_problem_says_when_a_feed_does_not_parse(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    """A torn JSON array or JSON line is reported; a whole feed is not."""
    (tmp_path / name).write_text(text)
    assert problem in feed_problem(tmp_path / name)
    assert bool(feed_problem(tmp_path / name)) == bool(problem)


@pytest.mark.subprocess
@pytest.mark.parametrize("feed", [".jsonl", ".csv", ".json"])
def test_an_uninterrupted_crawl_yields_the_model_fetching_each_page_once(
    baselines: Callable[[str], Baseline], feed: str
) -> None:
    """One uninterrupted crawl (SQLite frontier) writes exactly the site's items and fetches
    every page exactly once: the reference every crash test compares with."""
    baseline = baselines(feed)
    assert item_problems(baseline.expected, baseline.items) == []
    assert baseline.fetches == Counter(baseline.paths)


@pytest.mark.subprocess
def test_kills_land_at_the_moments_chosen(site: GraphSite, make_project: MakeProject) -> None:
    """Each kill -9 of a schedule hits a running crawl at its moment: one during start-up,
    one right after the first fetch, some mid-crawl, one after items were written; the crawl
    then runs to its end and every page was fetched."""
    project = make_project(site, ".jsonl", "-o")
    moments = kill_schedule(random.Random(3))
    outcome = run_scenario(project, moments, signal.SIGKILL)
    story = outcome.story()
    assert outcome.landed() == 5, story
    assert outcome.final_returncode == 0, story
    for hit in outcome.interruptions:
        assert hit.returncode == -signal.SIGKILL, story
        if hit.moment.kind == "spawn":
            assert hit.seconds >= hit.moment.seconds, story
        elif hit.moment.kind == "output":
            assert hit.fetches > 0, story
            assert hit.output_grew > 0 or hit.note, story
        else:
            assert hit.fetches >= hit.target >= 1, story
    mid = [hit for hit in outcome.interruptions if hit.moment.fraction > 0]
    assert len(mid) == 2, story
    assert all(hit.target > 2 for hit in mid), story
    assert {hit.output_grew > 0 for hit in outcome.interruptions} == {True, False}, story
    assert [p for p in fetch_problems(site, outcome.fetches, 5) if "never" in p] == []
    assert read_feed(project.out)  # the final run wrote items
