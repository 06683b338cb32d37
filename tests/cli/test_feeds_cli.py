"""Feeds on the command line, as child processes: `-o`/`-O` repeated (one run, several
feeds, the same items in each), and `{spider}`, `{time}`, `{run}` in feed paths, which a
resumed crawl expands as its first run did."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Project

pytestmark = pytest.mark.subprocess

SPIDER = """
from scrapekit import Request, Spider


class Pages(Spider):
    name = "pages"
    base = ""

    async def start(self):
        yield Request(f"{self.base}/1", callback=self.parse)

    def parse(self, response):
        n = int(response.url.rsplit("/", 1)[1])
        yield {"n": n, "text": 'a "quoted", text'}
        if n < 3:
            yield Request(f"{self.base}/{n + 1}", callback=self.parse)
"""

FAST = ("--log-format", "json", "-s", "RETRY_TIMES=0")
TIME = r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ"


@pytest.fixture
def pages(project: Project, httpserver: HTTPServer) -> Project:
    """A project with the `pages` spider; the site's /1 to /3 each give one item."""
    project.add_spider("pages", SPIDER)
    for n in (1, 2, 3):
        httpserver.expect_request(f"/{n}").respond_with_data(f"page {n}")
    return project


def crawl(project: Project, server: HTTPServer, *args: str) -> tuple[int, str]:
    result = project.run(
        "crawl", "pages", "-a", f"base={server.url_for('').rstrip('/')}", *FAST, *args
    )
    return result.returncode, result.stderr


def jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_n(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(rows, key=lambda row: int(str(row["n"])))


def test_repeated_o_and_O_write_every_feed_with_the_same_items(
    pages: Project, httpserver: HTTPServer
) -> None:
    """-o and -O may repeat and mix: every file gets the same items, each in its format;
    an -O file is replaced and an -o file appended."""
    root = pages.root
    (root / "old.jsonl").write_text('{"n": 0}\n')
    (root / "replaced.csv").write_text("stale\n")
    code, err = crawl(
        pages, httpserver, "-o", "old.jsonl", "-O", "replaced.csv", "-O", "out/array.json"
    )
    assert code == 0, err[-2000:]
    expected = [{"n": n, "text": 'a "quoted", text'} for n in (1, 2, 3)]
    assert by_n(jsonl(root / "old.jsonl")) == [{"n": 0}, *expected]
    with (root / "replaced.csv").open(newline="") as file:
        rows = [{"n": int(row["n"]), "text": row["text"]} for row in csv.DictReader(file)]
    assert by_n(list(rows)) == expected
    assert by_n(json.loads((root / "out" / "array.json").read_text())) == expected


def test_one_file_twice_is_a_usage_error(pages: Project, httpserver: HTTPServer) -> None:
    code, err = crawl(pages, httpserver, "-o", "items.jsonl", "-O", "./items.jsonl")
    assert code == 2
    assert err.strip().splitlines() == [
        "scrapekit: error: -O ./items.jsonl: this run already writes that file (-o items.jsonl)"
    ]


def test_placeholders_expand_and_a_resumed_crawl_keeps_its_files(
    pages: Project, httpserver: HTTPServer
) -> None:
    """{spider}, {run} and {time} name the files of the crawl's first run: a run stopped
    early and resumed writes on in the same files (each item once); the next crawl gets
    new ones."""
    out = pages.root / "out"
    feeds = ("-o", "out/{spider}-{run}-{time}.jsonl", "-O", "out/{{{spider}}}-{run}.csv")
    # One worker: with more, a page may still be leased as the limit closes the scheduler.
    code, err = crawl(pages, httpserver, *feeds, "--max-pages", "1", "-s", "CONCURRENCY=1")
    assert code == 0, err[-2000:]
    (jsonl_file,) = out.glob("pages-*.jsonl")
    assert re.fullmatch(rf"pages-1-{TIME}\.jsonl", jsonl_file.name), jsonl_file.name
    assert [row["n"] for row in jsonl(jsonl_file)] == [1]
    code, err = crawl(pages, httpserver, *feeds)  # resumed: run 2 of crawl 1
    assert code == 0, err[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [jsonl_file.name, "{pages}-1.csv"]
    assert [row["n"] for row in by_n(jsonl(jsonl_file))] == [1, 2, 3]
    with (out / "{pages}-1.csv").open(newline="") as file:
        assert sorted(int(row["n"]) for row in csv.DictReader(file)) == [1, 2, 3]
    code, err = crawl(pages, httpserver, *feeds)  # the crawl finished: run 3 begins a new one
    assert code == 0, err[-2000:]
    assert (out / "{pages}-3.csv").is_file()
    assert len(list(out.glob("pages-3-*.jsonl"))) == 1
    assert [row["n"] for row in by_n(jsonl(jsonl_file))] == [1, 2, 3]  # left as it was


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        pytest.param(
            "out/{spidr}.jsonl",
            "unknown placeholder {spidr}; did you mean {spider}? known: {spider}, {time}, {run}",
            id="unknown",
        ),
        pytest.param("out/{spider.jsonl", "expected '}' before end of string", id="unclosed"),
        pytest.param("out/{run!r}.jsonl", "conversions are not supported", id="conversion"),
    ],
)
def test_a_bad_placeholder_is_one_line_exit_2(
    pages: Project, httpserver: HTTPServer, feed: str, message: str
) -> None:
    code, err = crawl(pages, httpserver, "-o", feed)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"scrapekit: error: FEEDS (-o {feed}): feed ")
    assert message in lines[0]
    assert not (pages.root / "out").exists()


def test_run_needs_numbered_runs(pages: Project, httpserver: HTTPServer) -> None:
    """A memory frontier numbers no runs: {run} is refused before anything is fetched,
    {time} works."""
    code, err = crawl(pages, httpserver, "-o", "{run}.jsonl", "-s", "FRONTIER=memory")
    assert code == 2
    assert "{run} needs numbered runs" in err.strip().splitlines()[-1]
    assert not httpserver.log
    code, err = crawl(pages, httpserver, "-o", "{spider}-{time}.jsonl", "-s", "FRONTIER=memory")
    assert code == 0, err[-2000:]
    assert len(list(pages.root.glob("pages-*.jsonl"))) == 1


def test_placeholders_in_settings_toml_feeds(pages: Project, httpserver: HTTPServer) -> None:
    """FEEDS in settings.toml takes the same placeholders, checked with the settings."""
    pages.write_settings(
        'SPIDER_MODULES = ["spiders"]\n[FEEDS]\n"data/{spider}-{run}.jsonl" = {overwrite = true}\n'
    )
    code, err = crawl(pages, httpserver)
    assert code == 0, err[-2000:]
    assert [row["n"] for row in by_n(jsonl(pages.root / "data" / "pages-1.jsonl"))] == [1, 2, 3]
    pages.write_settings('SPIDER_MODULES = ["spiders"]\n[FEEDS]\n"data/{name}.jsonl" = {}\n')
    code, err = crawl(pages, httpserver)
    assert code == 2
    assert "FEEDS (settings.toml): feed 'data/{name}.jsonl': unknown placeholder {name}" in err
