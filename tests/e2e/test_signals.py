"""SIGINT/SIGTERM during a real crawl: output files stay complete and valid."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scrapekit.demo import DemoSite
from tests.conftest import REPO, child_env

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]


@pytest.fixture
def slow_site() -> Iterator[DemoSite]:
    """A demo site answering every request after 0.2 s, so a crawl takes several seconds."""
    with DemoSite(delay=0.2) as site:
        yield site


def start_crawl(site: DemoSite, out: Path, stats: Path, *args: str) -> subprocess.Popen[str]:
    """`scrapekit crawl demo -O out ARGS` as a child process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scrapekit",
            "crawl",
            "demo",
            "-O",
            str(out),
            "-a",
            f"base_url={site.url}",
            "-s",
            f"STATS_FILE={stats}",
            "--log-format",
            "json",
            *args,
        ],
        cwd=REPO,
        env=child_env({"SCRAPEKIT_STATE_DIR": str(out.parent / "state")}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_items(site: DemoSite, count: int, timeout: float = 20) -> None:
    """Wait (bounded) until the site has served `count` product pages."""
    deadline = time.monotonic() + timeout
    while site.stats.by_path.get("/catalogue/product/", 0) < count:
        assert time.monotonic() < deadline, "the crawl did not get going"
        time.sleep(0.05)


def read_items(path: Path) -> list[dict[str, object]]:
    """Items from a .json, .jsonl or .csv feed; fails if the file is not valid."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        items = json.loads(text)
        assert isinstance(items, list)
        return items
    if path.suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_first_sigint_finishes_in_flight_requests_and_closes_feeds(
    slow_site: DemoSite, tmp_path: Path, suffix: str
) -> None:
    """One SIGINT stops scheduling; the feed is valid and holds every item scraped (exit 3)."""
    out, stats_file = tmp_path / f"items{suffix}", tmp_path / "stats.json"
    child = start_crawl(slow_site, out, stats_file)
    wait_for_items(slow_site, 20)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 3, err
    stats = json.loads(stats_file.read_text())
    items = read_items(out)
    assert stats["finish_reason"] == "shutdown"
    assert 0 < len(items) == stats["items"] < len(slow_site.products)
    assert any(
        json.loads(line)["event"] == "shutting down"
        for line in err.splitlines()
        if line.startswith("{")
    )


def test_second_signal_stops_at_once_and_feed_stays_valid(tmp_path: Path) -> None:
    """SIGTERM then SIGINT cancels in-flight requests at once; the JSON array is still closed."""
    out, stats_file = tmp_path / "items.json", tmp_path / "stats.json"
    with DemoSite(delay=1.5) as very_slow:
        child = start_crawl(very_slow, out, stats_file)
        wait_for_items(very_slow, 16)  # the first products are in flight: each takes 1.5 s
        child.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        stopped = time.monotonic()
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=30)
        waited = time.monotonic() - stopped
    assert child.returncode == 3
    assert waited < 1.0  # a graceful stop would have waited for the 1.5 s responses
    stats = json.loads(stats_file.read_text())
    assert stats["finish_reason"] == "killed"
    assert stats["scheduler"]["in_flight"] == 0
    assert len(read_items(out)) == stats["items"] < len(very_slow.products)


def test_kill_9_part_file_is_removed_by_the_next_run(tmp_path: Path) -> None:
    """kill -9 during `-O` leaves the temporary `.NAME.<pid>.<random>.part` behind (nothing
    can run then); the next `-O` run of the same feed removes it and writes a valid file."""
    out, stats_file = tmp_path / "items.jsonl", tmp_path / "stats.json"
    with DemoSite(delay=0.2) as slow:
        child = start_crawl(slow, out, stats_file)
        wait_for_items(slow, 3)
        child.kill()
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    [left] = [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert left.startswith(f".items.jsonl.{child.pid}.")
    assert not out.exists()  # the kill came before the replace
    with DemoSite(products=5) as quick:  # another site: the killed crawl is not resumed
        again = start_crawl(quick, out, stats_file, "--fresh")
        _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert len(read_items(out)) == json.loads(stats_file.read_text())["items"] > 0
    assert '"stale part file removed"' in err
