"""The `scrapekit` command run as a child process: exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scrapekit import __version__
from scrapekit.demo import DemoSite
from tests.conftest import Project

pytestmark = pytest.mark.subprocess

SPIDER = """
from scrapekit import Spider

class Shop(Spider):
    name = "shop"
    def parse(self, response):
        yield {"url": response.url}

class ShopDetails(Spider):
    name = "shop_details"
"""


def test_version_prints_the_package_version(project: Project) -> None:
    """`scrapekit version` prints the version and exits 0, even outside a project."""
    result = project.run("version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"scrapekit {__version__}"


def test_list_prints_every_spider(project: Project) -> None:
    """`scrapekit list` prints the spiders of SPIDER_MODULES, one per line, sorted."""
    project.add_spider("shop", SPIDER)
    result = project.run("list")
    assert (result.returncode, result.stdout.split()) == (0, ["shop", "shop_details"])


def test_unknown_spider_lists_close_matches(project: Project) -> None:
    """An unknown spider name exits 2 with one line suggesting the close match."""
    project.add_spider("shop", SPIDER)
    result = project.run("crawl", "shpo")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scrapekit: error: no spider named 'shpo': did you mean 'shop'? (see `scrapekit list`)"
    ]


def test_outside_a_project_is_a_usage_error(tmp_path: Path) -> None:
    """Without settings.toml in any parent folder, crawl exits 2 and says what is missing."""
    empty = tmp_path / "empty"
    empty.mkdir()
    project = Project.__new__(Project)
    project.root = empty
    result = project.run("crawl", "shop")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no settings.toml" in result.stderr


@pytest.mark.parametrize(
    ("args", "settings", "message"),
    [
        pytest.param(
            ["-s", "CONCURRENCY=lots"],
            "",
            "CONCURRENCY (-s): expected an integer >= 1, got 'lots'",
            id="bad-cmdline",
        ),
        pytest.param(["-s", "CONCURENCY=4"], "", "did you mean CONCURRENCY", id="unknown-cmdline"),
        pytest.param(
            [],
            'DOWNLOAD_TIMEOUT = "slow"\n',
            "DOWNLOAD_TIMEOUT (settings.toml",
            id="bad-toml-value",
        ),
        pytest.param([], "CONCURRENCY = \n", "settings.toml", id="broken-toml"),
        pytest.param(
            ["-a", "novalue"], "", "-a 'novalue': expected NAME=VALUE", id="bad-spider-arg"
        ),
    ],
)
def test_bad_configuration_exits_2_with_one_line(
    project: Project, args: list[str], settings: str, message: str
) -> None:
    """Each configuration mistake stops the crawl with exit 2 and one line naming it."""
    project.add_spider("shop", SPIDER)
    project.write_settings('SPIDER_MODULES = ["spiders"]\n' + settings)
    result = project.run("crawl", "shop", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]


def test_bad_environment_value_names_the_variable(project: Project) -> None:
    """A bad SCRAPEKIT_* value exits 2 naming the variable."""
    project.add_spider("shop", SPIDER)
    result = project.run("crawl", "shop", env={"SCRAPEKIT_CONCURRENCY": "0"})
    assert result.returncode == 2
    assert "SCRAPEKIT_CONCURRENCY" in result.stderr


def test_broken_spider_module_names_file_and_line(project: Project) -> None:
    """A spider module that fails to import exits 2 naming the module, error and line."""
    project.add_spider("broken", "import os\nraise RuntimeError('boom')\n")
    result = project.run("list")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "spiders.broken" in line
    assert "RuntimeError: boom" in line
    assert "broken.py:2" in line


def test_crawl_writes_items_and_stats(
    demo_site: DemoSite, tmp_path: Path, repo_project: Project
) -> None:
    """`scrapekit crawl demo -O` scrapes every product with its logged-in field and exits 0."""
    out = tmp_path / "items.jsonl"
    stats_file = tmp_path / "stats.json"
    result = repo_project.run(
        "crawl",
        "demo",
        "-O",
        str(out),
        "-a",
        f"base_url={demo_site.url}",
        "-s",
        f"STATS_FILE={stats_file}",
        "--log-format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert {i["upc"] for i in items} == {p.upc for p in demo_site.products}
    assert all(isinstance(i["stock"], int) for i in items)
    stats = json.loads(stats_file.read_text())
    assert stats["items"] == len(demo_site.products)
    assert stats["finish_reason"] == "finished"
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert events[-1]["event"] == "crawl finished"
    assert events[-1]["pages"] == stats["pages"]


def test_pipeline_that_cannot_open_fails_the_crawl(project: Project, tmp_path: Path) -> None:
    """A pipeline whose open() raises ends the crawl with exit 1 and one line naming it."""
    project.add_spider(
        "shop",
        SPIDER.replace('name = "shop"', 'name = "shop"\n    start_urls = ["http://127.0.0.1:9/"]'),
    )
    (project.root / "mypipes.py").write_text(
        "class Broken:\n    def open(self, spider):\n        raise OSError('disk full')\n"
    )
    project.write_settings('SPIDER_MODULES = ["spiders"]\n[PIPELINES]\n"mypipes.Broken" = 100\n')
    result = project.run("crawl", "shop", "--log-format", "json")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("scrapekit: crawl failed:")
    assert "disk full" in last
