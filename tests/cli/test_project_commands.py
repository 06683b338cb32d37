"""`scrapekit startproject` and `genspider` as child processes: a new project and its
generated spiders crawl at once (a basic one against a loopback site, a login one against the
demo shop), and every refusal is one line with exit code 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from scrapekit.cli import scaffold
from scrapekit.demo import DemoSite
from tests.conftest import REPO, child_env

pytestmark = pytest.mark.subprocess

PAGE = "<html><head><title>Quotes</title></head><body><a href='/page/2/'>next</a></body></html>"


def scrapekit(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `scrapekit ARGS` in `cwd` as a child process."""
    return subprocess.run(
        [sys.executable, "-m", "scrapekit", *args],
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused command printed (it must exit 2)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def site(httpserver: HTTPServer) -> HTTPServer:
    """A one-page site (no robots.txt: a 404 allows everything)."""
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/page/1/").respond_with_data(PAGE, content_type="text/html")
    return httpserver


def new_project(tmp_path: Path, name: str = "shop") -> Path:
    result = scrapekit(tmp_path, "startproject", name)
    assert result.returncode == 0, result.stderr
    return tmp_path / name


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_startproject_writes_a_polite_project_with_a_cron_line(tmp_path: Path) -> None:
    """The project has the recommended settings (valid TOML), a spiders package, a pipeline
    example that is not enabled, and a README with a crontab line for its own folder."""
    root = new_project(tmp_path)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert names == [
        ".gitignore", "README.md", "pipelines.py", "settings.toml", "spiders/__init__.py"
    ]  # fmt: skip
    settings = tomllib.loads((root / "settings.toml").read_text())
    assert settings["ROBOTSTXT_OBEY"] is True
    assert settings["RATE"] > 0
    assert settings["CONCURRENCY_PER_HOST"] <= 2
    assert "PIPELINES" not in settings  # the example is shown, not enabled
    readme = (root / "README.md").read_text()
    cron = [line for line in readme.splitlines() if re.match(r"^[\d*]+ [\d*]+ \* \* \* ", line)]
    assert cron
    assert f"cd {root.resolve()} && scrapekit crawl" in cron[0]
    assert ".scrapekit/" in (root / ".gitignore").read_text()
    # The settings as scrapekit reads them, and where they come from.
    shown = scrapekit(root, "settings", "--get", "ROBOTSTXT_OBEY")
    assert (shown.returncode, shown.stdout) == (0, "true\n")


def test_startproject_into_an_empty_dir_and_refusals(tmp_path: Path) -> None:
    """DIR may exist if empty; a non-empty DIR, a file, or a name that is not an identifier
    is refused with one line, and nothing is written."""
    (tmp_path / "empty").mkdir()
    result = scrapekit(tmp_path, "startproject", "shop", "empty")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "empty" / "settings.toml").is_file()
    assert "is not empty" in one_error(scrapekit(tmp_path, "startproject", "shop", "empty"))
    (tmp_path / "file").write_text("x")
    assert "not a folder" in one_error(scrapekit(tmp_path, "startproject", "shop", "file"))
    for bad in ("my-shop", "1shop", "class"):
        assert "Python identifier" in one_error(scrapekit(tmp_path, "startproject", bad))
        assert not (tmp_path / bad).exists()


def test_startproject_genspider_basic_then_crawl(tmp_path: Path, site: HTTPServer) -> None:
    """startproject -> genspider (a URL) -> crawl gives the page's item: the spider runs as
    generated, within its domain, with the project's polite settings."""
    root = new_project(tmp_path)
    url = site.url_for("/page/1/")
    made = scrapekit(root, "genspider", "quotes", url)
    assert made.returncode == 0, made.stderr
    assert "spiders/quotes.py" in made.stdout
    assert "scrapekit crawl quotes" in made.stdout
    source = (root / "spiders" / "quotes.py").read_text()
    assert "class QuotesSpider(Spider):" in source
    assert 'allowed_domains = ["localhost"]' in source
    result = scrapekit(root, "crawl", "quotes", "-O", "quotes.jsonl", "--log-format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_jsonl(root / "quotes.jsonl") == [{"url": url, "title": "Quotes"}]
    listed = scrapekit(root, "list")
    assert listed.stdout.split() == ["quotes"]


def test_the_example_pipeline_works_once_enabled(tmp_path: Path, site: HTTPServer) -> None:
    """Uncommenting the two lines settings.toml names enables pipelines.py's example: it
    drops the items without a url and lets the others through."""
    root = new_project(tmp_path)
    settings = root / "settings.toml"
    text = settings.read_text()
    text = text.replace("# [PIPELINES]\n", "[PIPELINES]\n")
    text = text.replace('# "pipelines.RequireFields" = 300', '"pipelines.RequireFields" = 300')
    settings.write_text(text)
    url = site.url_for("/page/1/")
    (root / "spiders" / "two.py").write_text(
        "from scrapekit import Spider\n\n\n"
        "class Two(Spider):\n"
        '    name = "two"\n'
        f'    start_urls = ["{url}"]\n\n'
        "    def parse(self, response):\n"
        '        yield {"url": response.url}\n'
        '        yield {"url": ""}\n'
    )
    result = scrapekit(
        root, "crawl", "two", "-O", "out.jsonl", "-s", "STATS_FILE=stats.json",
        "--log-format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_jsonl(root / "out.jsonl") == [{"url": url}]
    stats = json.loads((root / "stats.json").read_text())
    assert stats["dropped"]["items"] == {"missing url": 1}


def test_genspider_login_crawls_logged_in_and_stays_logged_in(
    tmp_path: Path, demo_site: DemoSite
) -> None:
    """The login template logs in to the demo shop with credentials from the environment,
    and the next run starts logged in (persisted cookies), sending no login."""
    root = new_project(tmp_path)
    url = f"{demo_site.url}/catalogue/page-1.html"
    made = scrapekit(root, "genspider", "member", url, "--template", "login")
    assert made.returncode == 0, made.stderr
    args = ("crawl", "member", "-O", "m.jsonl", "-s", "STATS_FILE=stats.json", "--fresh")
    creds = {"MEMBER_USERNAME": "demo", "MEMBER_PASSWORD": "demo"}
    result = scrapekit(root, *args, "--log-format", "json", env=creds)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "demo" not in (root / "m.jsonl").read_text().replace("Demo", "")
    stats = json.loads((root / "stats.json").read_text())
    assert (stats["login"]["logins"], stats["items"]) == (1, 1)
    again = scrapekit(root, *args, "--log-format", "json", env=creds)
    assert again.returncode == 0, again.stderr[-2000:]
    stats = json.loads((root / "stats.json").read_text())
    assert (stats["login"]["logins"], stats["login"]["skipped"]) == (0, True)


def test_genspider_login_without_credentials_fails_naming_them(
    tmp_path: Path, demo_site: DemoSite
) -> None:
    """No credentials: the crawl fails (exit 1) and says which variables to set."""
    root = new_project(tmp_path)
    scrapekit(root, "genspider", "member", demo_site.url, "-t", "login")
    result = scrapekit(root, "crawl", "member", "--log-format", "json")
    assert result.returncode == 1
    assert "MEMBER_USERNAME" in result.stderr.strip().splitlines()[-1]


def test_genspider_refusals_and_force(tmp_path: Path) -> None:
    """A taken file or spider name, a bad name, template or URL: one line, exit 2, nothing
    written; --force replaces the spider's own file, never another module's spider."""
    root = new_project(tmp_path)
    assert scrapekit(root, "genspider", "quotes", "quotes.toscrape.com").returncode == 0
    assert (
        'start_urls = ["https://quotes.toscrape.com/"]'
        in (root / "spiders" / "quotes.py").read_text()
    )
    error = one_error(scrapekit(root, "genspider", "quotes", "example.com"))
    assert "'quotes' exists (spiders/quotes.py)" in error
    assert "--force" in error
    forced = scrapekit(root, "genspider", "quotes", "example.com", "--force")
    assert forced.returncode == 0, forced.stderr
    assert '"example.com"' in (root / "spiders" / "quotes.py").read_text()
    # A spider of that name in another module: --force does not help.
    (root / "spiders" / "more.py").write_text(
        "from scrapekit import Spider\n\n\nclass Books(Spider):\n    name = 'books'\n"
    )
    error = one_error(scrapekit(root, "genspider", "books", "example.com", "--force"))
    assert "'books' exists (spiders/more.py)" in error
    assert not (root / "spiders" / "books.py").exists()
    # A file that holds no spider of that name is still not overwritten.
    (root / "spiders" / "notes.py").write_text("# mine\n")
    assert "spiders/notes.py exists" in one_error(scrapekit(root, "genspider", "notes", "a.b"))
    assert (root / "spiders" / "notes.py").read_text() == "# mine\n"
    assert "Python identifier" in one_error(scrapekit(root, "genspider", "my-spider", "a.b"))
    error = one_error(scrapekit(root, "genspider", "x", "a.b", "-t", "nope"))
    assert "no template 'nope'; available: " in error
    assert "basic" in error
    assert "login" in error
    assert "not a URL or a domain" in one_error(scrapekit(root, "genspider", "x", "ftp://a.b/"))
    assert "expected NAME and URL_OR_DOMAIN" in one_error(scrapekit(root, "genspider", "x"))
    assert not (root / "spiders" / "x.py").exists()


def test_genspider_lists_the_template_folder(tmp_path: Path) -> None:
    """-l lists every .py.tmpl of the templates folder (a template added there is offered)."""
    result = scrapekit(tmp_path, "genspider", "-l")
    assert result.returncode == 0
    folder = REPO / "scrapekit" / "templates" / "spiders"
    expected = sorted(p.name.removesuffix(".py.tmpl") for p in folder.glob("*.py.tmpl"))
    assert result.stdout.split() == expected
    assert {"basic", "login"} <= set(expected)


def test_genspider_outside_a_project_writes_into_cwd_for_runspider(
    tmp_path: Path, site: HTTPServer
) -> None:
    """Outside a project the spider is NAME.py in the working directory, and runspider runs
    it as generated."""
    url = site.url_for("/page/1/")
    made = scrapekit(tmp_path, "genspider", "loose", url)
    assert made.returncode == 0, made.stderr
    assert "scrapekit runspider loose.py" in made.stdout
    assert "exists" in one_error(scrapekit(tmp_path, "genspider", "loose", url))
    result = scrapekit(tmp_path, "runspider", "loose.py", "-o", "out.jsonl", "--log-format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_jsonl(tmp_path / "out.jsonl") == [{"url": url, "title": "Quotes"}]
    assert (tmp_path / ".scrapekit" / "loose" / "frontier.db").is_file()


def test_every_template_is_shipped_in_the_wheel() -> None:
    """pyproject's package-data globs cover every template file, so an installed scrapekit
    has them (importlib.resources reads them from the package)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["scrapekit"]
    package = REPO / "scrapekit"
    shipped = {p for pattern in globs for p in package.glob(pattern)}
    templates = {p for p in (package / "templates").rglob("*") if p.is_file()}
    assert templates
    assert templates <= shipped
    assert {path.as_posix() for path, _ in scaffold.project_files()} >= {
        "settings.toml", "spiders/__init__.py", "pipelines.py", "README.md"
    }  # fmt: skip
