"""`scrapekit runspider FILE.py` as a child process: a spider from one file, with the
project's settings inside a project and the defaults outside; a file with no spider or
several, or one that does not import, is one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WsgiRequest
from werkzeug import Response as WsgiResponse

from tests.conftest import Project, child_env

pytestmark = pytest.mark.subprocess

SPIDER = """
from scrapekit import Spider


class Loose(Spider):
    name = "loose"
    base = ""

    async def start(self):
        for n in (1, 2):
            yield self.request(n)

    def request(self, n):
        from scrapekit import Request
        return Request(f"{self.base}/item/{n}", callback=self.parse)

    def parse(self, response):
        yield {"n": int(response.url.rsplit("/", 1)[1]), "agent": response.text}
"""


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapekit", "runspider", *args, "--log-format", "json"],
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def site(httpserver: HTTPServer) -> HTTPServer:
    """/item/N answers with the User-Agent it was sent."""

    def echo_agent(request: WsgiRequest) -> WsgiResponse:
        return WsgiResponse(request.headers.get("User-Agent", ""), content_type="text/plain")

    for n in (1, 2):
        httpserver.expect_request(f"/item/{n}").respond_with_handler(echo_agent)
    return httpserver


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def items(path: Path) -> list[dict[str, object]]:
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=str)


def test_outside_a_project_defaults_apply_and_state_is_in_cwd(
    tmp_path: Path, site: HTTPServer
) -> None:
    """Outside a project: the default settings (with -s), the spider's -a arguments, two
    feeds, and the crawl's state in ./.scrapekit/<name>/ of the working directory."""
    write(tmp_path / "code" / "loose.py", SPIDER)
    work = tmp_path / "work"
    work.mkdir()
    base = site.url_for("").rstrip("/")
    result = run(
        work, "../code/loose.py", "-a", f"base={base}", "-o", "a.jsonl", "-O", "b.jsonl",
        "-s", "ROBOTSTXT_OBEY=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    got = items(work / "a.jsonl")
    assert [item["n"] for item in got] == [1, 2]
    assert str(got[0]["agent"]).startswith("scrapekit/")  # the default USER_AGENT
    assert items(work / "b.jsonl") == got
    assert (work / ".scrapekit" / "loose" / "frontier.db").is_file()
    assert not (tmp_path / "code" / ".scrapekit").exists()


def test_inside_a_project_its_settings_apply(project: Project, site: HTTPServer) -> None:
    """Inside a project (the file anywhere): settings.toml applies and the state goes to the
    project's state folder."""
    project.write_settings('SPIDER_MODULES = ["spiders"]\nUSER_AGENT = "project-agent"\n')
    spider = write(project.root.parent / "elsewhere" / "loose.py", SPIDER)
    base = site.url_for("").rstrip("/")
    result = run(project.root, str(spider), "-a", f"base={base}", "-O", "out.jsonl")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {item["agent"] for item in items(project.root / "out.jsonl")} == {"project-agent"}
    assert (project.root / ".scrapekit" / "loose" / "frontier.db").is_file()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("x = 1\n", "defines no Spider subclass", id="none"),
        pytest.param(
            SPIDER + "\n\nclass Other(Loose):\n    name = 'other'\n",
            "defines 2 spiders (loose, other)",
            id="several",
        ),
        pytest.param(
            "from scrapekit import Spider\nclass NoName(Spider):\n    pass\n",
            "spider NoName has no name",
            id="no-name",
        ),
        pytest.param("def broken(:\n", "SyntaxError", id="syntax"),
        pytest.param("import no_such_module_here\n", "ModuleNotFoundError", id="import"),
    ],
)
def test_a_file_without_exactly_one_spider_is_refused(
    tmp_path: Path, source: str, message: str
) -> None:
    write(tmp_path / "spider.py", source)
    result = run(tmp_path, "spider.py")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "spider.py" in lines[0]


def test_a_missing_or_non_python_file_is_refused(tmp_path: Path) -> None:
    assert "no such file" in run(tmp_path, "gone.py").stderr
    (tmp_path / "spider.txt").write_text("")
    result = run(tmp_path, "spider.txt")
    assert result.returncode == 2
    assert "expected a Python file" in result.stderr
