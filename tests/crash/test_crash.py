"""Exactly-once across crashes: interrupt a crawl at five moments, resume it each time with
the same command, and the output equals one uninterrupted crawl's as a multiset.

Each test drives `scrapekit crawl graph -o|-O FILE -s FRONTIER=sqlite` against the crash-test
site (tests/crash/site.py: 160 pages on two hosts, 1-4 items each, 10 ms per page), signals it
at seeded random moments (harness.py: during start-up, right after the first fetch, mid-crawl,
after items were written), runs it again after each, then once more to the end, and checks:

- the final run exits 0, and each SIGTERM stop exits 3 with a feed that parses;
- the feed's items equal the uninterrupted baseline's (test_harness.py proves that baseline
  equals the site's model): none missing, none twice, nothing else;
- every page was fetched, and refetched only if it may have been in flight at an
  interruption: at most IN_FLIGHT refetches per interruption (the pages being fetched or
  parsed, and those whose commit is under way), each page at most once per interruption.

Set CRASH_SEED to replay other schedules. Run with `make crash` (or `pytest -m crash`).
"""

from __future__ import annotations

import random
import signal
import zlib
from collections import Counter
from collections.abc import Callable

import pytest

from tests.crash.conftest import Baseline, MakeProject, MakeSite
from tests.crash.harness import (
    IN_FLIGHT,
    Moment,
    Outcome,
    commit_schedule,
    env_seed,
    fetch_problems,
    item_problems,
    kill_schedule,
    read_feed,
    run_scenario,
)
from tests.crash.site import GraphSite, ItemKey

pytestmark = [pytest.mark.crash, pytest.mark.subprocess, pytest.mark.slow]

SEED = env_seed(20261202)


def _rng(test: str) -> random.Random:
    """A schedule's random source: the seed and the test's id, so each test differs."""
    return random.Random(SEED ^ zlib.crc32(test.encode()))


def judge(
    outcome: Outcome,
    site: GraphSite,
    expected: Counter[ItemKey],
    moments: list[Moment],
    sig: signal.Signals,
) -> None:
    """Fail with every problem at once and the scenario's story (seed, each step)."""
    problems = []
    for n, hit in enumerate(outcome.interruptions, 1):
        if hit.landed:
            continue
        if hit.returncode == 0:
            problems.append(
                f"harness: interruption {n} of {len(moments)} came after the crawl had "
                "finished (did a resume skip work?); the rest were not tried"
            )
        else:
            problems.append(
                f"run {n} failed (exit {hit.returncode}) before its interruption: {hit.log_tail}"
            )
    if outcome.final_returncode != 0:
        problems.append(f"the final run exited {outcome.final_returncode}")
    if sig == signal.SIGTERM:
        for n, hit in enumerate(outcome.interruptions, 1):
            if hit.landed and hit.returncode != 3:
                problems.append(f"stop {n}: SIGTERM exited {hit.returncode}, not 3")
            if hit.valid_output:
                problems.append(f"stop {n}: {hit.valid_output}")
    if outcome.read_error:
        problems.append(f"the final feed does not parse: {outcome.read_error}")
    else:
        problems += item_problems(expected, outcome.items)
    problems += fetch_problems(site, outcome.fetches, outcome.landed())
    assert not problems, (
        f"{sig.name} x{len(moments)} (CRASH_SEED={SEED}):\n"
        + "\n".join(f"- {p}" for p in problems)
        + f"\nsteps:\n{outcome.story()}"
    )


FEEDS = [
    pytest.param(".jsonl", "-o", id="jsonl-append"),
    pytest.param(".csv", "-o", id="csv-append"),
    pytest.param(".json", "-o", id="json-append"),
    pytest.param(".jsonl", "-O", id="jsonl-overwrite"),
    pytest.param(".json", "-O", id="json-overwrite"),
]


@pytest.mark.parametrize(("feed", "flag"), FEEDS)
def test_kill_9_at_five_moments_then_resume_gives_every_item_once(
    site: GraphSite,
    make_project: MakeProject,
    baselines: Callable[[str], Baseline],
    feed: str,
    flag: str,
) -> None:
    """Five kill -9s, each followed by the same command, leave the uninterrupted crawl's
    items, each once, having refetched only pages in flight at a kill."""
    moments = kill_schedule(_rng(f"kill{feed}{flag}"))
    outcome = run_scenario(make_project(site, feed, flag), moments, signal.SIGKILL)
    judge(outcome, site, baselines(feed).items, moments, signal.SIGKILL)


def test_kill_9_with_two_feeds_gives_every_item_once_in_each(
    site: GraphSite, make_project: MakeProject, baselines: Callable[[str], Baseline]
) -> None:
    """One crawl, two feeds (`-o items.jsonl -O items.csv`), killed five times and resumed:
    each feed keeps its own mark, so each ends with every item once."""
    moments = kill_schedule(_rng("kill-two-feeds"))
    project = make_project(site, ".jsonl", "-o")
    project.extra_feeds = [("-O", "items.csv")]
    outcome = run_scenario(project, moments, signal.SIGKILL)
    judge(outcome, site, baselines(".jsonl").items, moments, signal.SIGKILL)
    second = project.out_dir / "items.csv"
    problems = item_problems(baselines(".csv").items, Counter(read_feed(second)))
    assert not problems, f"items.csv (CRASH_SEED={SEED}):\n" + "\n".join(problems)


@pytest.mark.parametrize(("feed", "flag"), FEEDS[:3])
def test_sigterm_at_five_moments_then_resume_gives_every_item_once(
    site: GraphSite,
    make_project: MakeProject,
    baselines: Callable[[str], Baseline],
    feed: str,
    flag: str,
) -> None:
    """Five SIGTERMs (graceful stops: exit 3, a feed that parses), each followed by the same
    command, leave the uninterrupted crawl's items, each once."""
    moments = kill_schedule(_rng(f"term{feed}{flag}"), spawn=False)
    outcome = run_scenario(make_project(site, feed, flag), moments, signal.SIGTERM)
    judge(outcome, site, baselines(feed).items, moments, signal.SIGTERM)


def test_kill_9_during_group_commit_gives_every_item_once(
    make_site: MakeSite, make_project: MakeProject
) -> None:
    """Eight kill -9s among fast commits leave every item once.

    How a kill lands in a commit: the site has 400 tiny pages answered at once, so pages
    complete (and their outcomes are committed, in groups) back to back; each kill lets the
    run fetch up to 15 % of the pages left, then waits until the crawl's SQLite write-ahead
    log has changed 1-4 more times and signals at once (polling every 0.5 ms), i.e. while the
    next group is most likely being written.
    """
    moments = commit_schedule(_rng("commit"), 8)
    site = make_site(400, delay=0.0)
    outcome = run_scenario(make_project(site, ".jsonl", "-o"), moments, signal.SIGKILL)
    judge(outcome, site, site.expected_items(), moments, signal.SIGKILL)
    assert len({hit.fetches for hit in outcome.interruptions}) >= 3, (
        f"harness: the kills did not land at varied points:\n{outcome.story()}"
    )
    assert IN_FLIGHT * len(moments) < len(site.paths())  # the refetch bound means something
