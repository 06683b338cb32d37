"""Page writes run together (sqlite_pages.py) must leave the file and give each caller what
running them one at a time would have: the first write to bring a fingerprint queues it."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from scrapekit.scheduler.frontier.recrawl import Revisits
from scrapekit.scheduler.frontier.sqlite import SqliteFrontier
from scrapekit.scheduler.frontier.sqlite_pages import PageWrite, Row, write_pages


def row(i: int, fingerprint: str | None, key: str = "a.test", priority: int = 0) -> Row:
    fp = None if fingerprint is None else fingerprint.encode()
    return (i, fp, key, priority, f'{{"url": "http://{key}/{i}"}}')


async def empty_file(path: Path) -> Path:
    async with SqliteFrontier(path):
        pass
    return path


def tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as conn:
        found = {
            "requests": conn.execute(
                "SELECT id, key, priority, not_before, record FROM requests ORDER BY id"
            ).fetchall(),
            "seen": conn.execute("SELECT fingerprint FROM seen ORDER BY fingerprint").fetchall(),
            "outbox": conn.execute(
                "SELECT seq, item_id, record FROM outbox ORDER BY seq"
            ).fetchall(),
        }
    conn.close()
    return found


def batch() -> list[PageWrite]:
    """Pushes and page outcomes whose fingerprints overlap within and across writes."""
    return [
        PageWrite([row(1, "a"), row(2, "b"), row(3, "a"), row(4, None)], start=4),
        PageWrite([row(5, "b"), row(6, "c", "b.test", 5)], done=1, items=[(1, "p:0", "{}")]),
        PageWrite([row(7, "old"), row(8, None), row(9, "d")], done=2),
        PageWrite(
            [row(10, "d"), row(11, "e")],
            done=4,
            items=[(2, "q:0", '{"x": 1}'), (3, "q:1", '{"x": 2}')],
        ),
        PageWrite([], done=6),
    ]


def run(path: Path, writes: list[PageWrite], *, together: bool) -> list[object]:
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("INSERT INTO seen (fingerprint) VALUES (?)", (b"old",))
        conn.execute("BEGIN")
        results = list(write_pages(conn, writes)) if together else [w(conn) for w in writes]
        conn.execute("COMMIT")
    conn.close()
    return results


async def test_writes_run_together_equal_writes_run_one_at_a_time(tmp_path: Path) -> None:
    one = await empty_file(tmp_path / "one" / "frontier.db")
    many = tmp_path / "many.db"
    shutil.copy(one, many)
    alone = run(one, batch(), together=False)
    together = run(many, batch(), together=True)
    assert together == alone
    assert tables(many) == tables(one)
    # What that outcome is: first copies queued, "old" kept out, rows without a fingerprint
    # always queued, the done rows deleted, the items appended in order.
    assert [r[0] for r in tables(many)["requests"]] == [8, 9, 11]
    assert together[0] == ([(1, "a.test", 0), (2, "a.test", 0), (4, "a.test", 0)], 2, 0)
    assert together[2] == ([(8, "a.test", 0), (9, "a.test", 0)], 1, 0)
    assert [r[1] for r in tables(many)["outbox"]] == ["p:0", "q:0", "q:1"]


async def test_a_batch_beyond_the_variable_limit_is_split(tmp_path: Path) -> None:
    """2,500 new rows and a thousand items in one batch: several statements, same outcome."""
    path = await empty_file(tmp_path / "s" / "frontier.db")
    first = [row(i, f"f{i}") for i in range(1, 1501)]
    second = [row(3000 + i, f"f{i}") for i in range(1001, 2501)] + [row(9999, "f1")]
    items = [(i, f"p:{i}", "{}") for i in range(1, 1001)]
    writes = [PageWrite(first), PageWrite(second, items=items)]
    results = run(path, writes, together=True)
    assert [len(r[0]) for r in results] == [1500, 1000]  # type: ignore[index]
    found = tables(path)
    assert (len(found["requests"]), len(found["seen"]), len(found["outbox"])) == (2500, 2501, 1000)


@pytest.mark.parametrize("where", [0, 2, 4])
async def test_a_revisit_write_runs_alone_in_its_place(tmp_path: Path, where: int) -> None:
    """A write with RECRAWL_AFTER's revisits (it reads the fetch history) keeps its place in
    the order: the rows before it claim their fingerprints first, those after see its rows."""
    one = await empty_file(tmp_path / "one" / "frontier.db")
    many = tmp_path / "many.db"
    shutil.copy(one, many)
    revisit = PageWrite(
        [row(20, "a"), row(21, "z")],
        revisits=Revisits(time.time() - 3600, frozenset({20, 21})),
        fetched=(b"a", time.time(), None, None),
    )

    def writes() -> list[PageWrite]:
        found = batch()
        found.insert(where, revisit)
        return found

    alone = run(one, writes(), together=False)
    together = run(many, writes(), together=True)
    assert together == alone
    assert tables(many) == tables(one)
