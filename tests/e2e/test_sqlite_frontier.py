"""The demo crawl with FRONTIER = "sqlite", end to end as the command line runs it."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from scrapekit.demo import DemoSite
from tests.conftest import Project

pytestmark = pytest.mark.subprocess


def crawl(project: Project, site: DemoSite, out: Path, *settings: str) -> list[str]:
    """`scrapekit crawl demo -O out` with `-s` settings; the items' JSON lines, sorted."""
    args = [arg for setting in settings for arg in ("-s", setting)]
    result = project.run(
        "crawl", "demo", "-a", f"base_url={site.url}", "-O", str(out), "--log-format", "json",
        "-s", "RATE=0", "-s", "ROBOTSTXT_OBEY=false", *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return sorted(out.read_text().splitlines())


def test_the_demo_crawl_gives_the_same_items_on_both_frontiers(
    repo_project: Project, tmp_path: Path
) -> None:
    """The SQLite frontier yields exactly the memory frontier's items, and ends empty."""
    with DemoSite(products=45, per_page=10, session_max_requests=20) as site:
        memory = crawl(repo_project, site, tmp_path / "memory.jsonl", "FRONTIER=memory")
        durable = crawl(repo_project, site, tmp_path / "sqlite.jsonl", "FRONTIER=sqlite")
    assert len(memory) == 45
    assert durable == memory
    db = repo_project.state / "demo" / "frontier.db"  # type: ignore[operator]
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    with sqlite3.connect(db) as conn:
        pending = conn.execute("SELECT count(*) FROM requests").fetchone()[0]
        seen = conn.execute("SELECT count(*) FROM seen").fetchone()[0]
    conn.close()
    assert (pending, seen) == (0, 45 + 5)  # every product and listing page, nothing left


def test_a_corrupt_frontier_is_one_line_and_exit_2(repo_project: Project) -> None:
    """A frontier.db that is not SQLite stops the crawl before any request, naming the file."""
    db = repo_project.state / "demo" / "frontier.db"  # type: ignore[operator]
    db.parent.mkdir(parents=True, mode=0o700)
    db.write_bytes(b"this is not a database" * 100)
    db.chmod(0o600)
    with DemoSite(products=5) as site:
        result = repo_project.run(
            "crawl", "demo", "-a", f"base_url={site.url}", "-s", "FRONTIER=sqlite"
        )
        assert site.stats.requests == 0
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"scrapekit: error: frontier {db} is corrupt or unreadable (")
    assert lines[0].endswith(
        "delete it (and its -wal/-shm files) to start this crawl's state afresh"
    )
