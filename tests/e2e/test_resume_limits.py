"""Limits end a run cleanly and resumably: the demo crawl stopped by each limit, then resumed,
adds up to one uninterrupted crawl (same items, none twice; the same pages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scrapekit.demo import DemoSite
from tests.conftest import Project

pytestmark = pytest.mark.subprocess

PRODUCTS = 60


def crawl(project: Project, site: DemoSite, tmp_path: Path, name: str, *args: str) -> Any:
    """`scrapekit crawl demo -o items.jsonl ARGS`: (result, its stats)."""
    stats = tmp_path / f"{name}.json"
    result = project.run(
        "crawl", "demo", "-a", f"base_url={site.url}", "-o", str(tmp_path / "items.jsonl"),
        "-s", "RATE=0", "-s", "ROBOTSTXT_OBEY=false", "-s", f"STATS_FILE={stats}", *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result, json.loads(stats.read_text())


@pytest.fixture(scope="module")
def site() -> Any:
    with DemoSite(products=PRODUCTS, per_page=10) as demo:
        yield demo


@pytest.mark.parametrize(
    ("args", "reason", "setting"),
    [
        (["--max-pages", "12"], "closespider_pagecount", "CLOSESPIDER_PAGECOUNT=12"),
        (["--max-items", "20"], "closespider_itemcount", "CLOSESPIDER_ITEMCOUNT=20"),
        (
            ["--max-duration", "1s", "-s", "DOWNLOAD_DELAY=0.05", "-s", "RANDOMIZE_DELAY=false"],
            "closespider_timeout",
            "CLOSESPIDER_TIMEOUT=1.0",
        ),
    ],
)
def test_a_limit_stops_early_and_the_next_run_continues(
    repo_project: Project,
    site: DemoSite,
    tmp_path: Path,
    args: list[str],
    reason: str,
    setting: str,
) -> None:
    first, one = crawl(repo_project, site, tmp_path, "first", *args)
    assert one["finish_reason"] == reason
    assert 0 < one["items"] < PRODUCTS
    assert first.stderr.splitlines()[-1] == (
        f"scrapekit: stopped early: {setting} reached; run the same command again to continue"
    )
    logged = [json.loads(line) for line in first.stderr.splitlines()[:-1]]
    assert any(e["event"] == "crawl stopped early" for e in logged)

    second, two = crawl(repo_project, site, tmp_path, "second")
    assert second.stderr.splitlines()[0].startswith('{"spider": "demo", "run": 2')
    assert (two["finish_reason"], two["run"]["resumed"]) == ("finished", True)

    items = (tmp_path / "items.jsonl").read_text().splitlines()
    urls = [json.loads(line)["url"] for line in items]
    assert len(urls) == len(set(urls)) == PRODUCTS  # none lost, none twice
    # One uninterrupted crawl fetches every product and listing page once.
    assert one["pages"] + two["pages"] == PRODUCTS + PRODUCTS // 10
