"""Hostile input to the dev-loop surfaces, as child processes: a bad CSS selector, regex or
CODE, a bad LinkExtractor or sitemap rule, a reserved spider name, a proxy port out of range.
Each gives one line naming the thing (exit 2 for usage and configuration), never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Project, child_env

pytestmark = pytest.mark.subprocess


def scrapekit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `scrapekit ARGS` in `cwd` as a child process."""
    return subprocess.run(
        [sys.executable, "-m", "scrapekit", *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """stderr, checked to be one line and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def page(httpserver: HTTPServer) -> str:
    httpserver.expect_request("/p").respond_with_data(
        "<title>T</title><p>a1</p>", content_type="text/html"
    )
    return httpserver.url_for("/p")


@pytest.mark.parametrize(
    ("code", "named"),
    [
        pytest.param('response.css("div[[[").get()', "CSS selector 'div[[['", id="bad-css"),
        pytest.param('response.css("p[[::text").get()', "CSS selector 'p[[::text'", id="bad-text"),
        pytest.param('response.css("p::foo").get()', "CSS selector 'p::foo'", id="bad-pseudo"),
        pytest.param('response.css("p::text").re("(a")', "re() '(a'", id="bad-re"),
        pytest.param('response.css("p::text").re_first("[")', "re() '['", id="bad-re-first"),
        pytest.param('response.xpath("//p[").get()', "//p[", id="bad-xpath"),
    ],
)  # fmt: skip
def test_shell_c_bad_selector_is_one_line_naming_it(
    page: str, tmp_path: Path, code: str, named: str
) -> None:
    result = scrapekit("shell", page, "-c", code, cwd=tmp_path)
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith("scrapekit: shell -c raised ")
    assert named in line
    assert line.endswith("(CODE line 1)")
    assert result.stdout == ""


def test_shell_c_that_raises_names_the_line_of_code(tmp_path: Path) -> None:
    result = scrapekit("shell", "-c", "x = 1\nraise KeyError('gone')", cwd=tmp_path)
    assert result.returncode == 1
    assert one_line(result) == "scrapekit: shell -c raised KeyError: 'gone' (CODE line 2)"


def test_shell_c_that_is_not_python_is_a_usage_error(tmp_path: Path) -> None:
    result = scrapekit("shell", "-c", "response.css(", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result).startswith("scrapekit: shell -c: CODE is not valid Python")


BAD_RE = "is not a valid regular expression"
CRAWL_SPIDER = """\
from scrapekit import CrawlSpider, LinkExtractor, Rule


class Links(CrawlSpider):
    name = "links"
    start_urls = ["http://127.0.0.1:9/"]
    rules = (Rule(LinkExtractor({args}), callback="parse_item"),)

    def parse_item(self, response):
        yield {{"url": response.url}}
"""


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param("allow=r'/cat['", f"LinkExtractor(allow=...) '/cat[' {BAD_RE}", id="allow"),
        pytest.param("deny=(r'ok', r'(x')", f"LinkExtractor(deny=...) '(x' {BAD_RE}", id="deny"),
        pytest.param(
            "restrict_css='div[['",
            "LinkExtractor(restrict_css='div[['): not a valid CSS selector",
            id="restrict-css",
        ),
        pytest.param(
            "restrict_xpaths='//div['",
            "LinkExtractor(restrict_xpaths='//div['): not a valid XPath expression "
            "(Invalid expression)",
            id="restrict-xpaths",
        ),
        pytest.param(
            "restrict_text='Next ('",
            f"LinkExtractor(restrict_text=...) 'Next (' {BAD_RE}",
            id="restrict-text",
        ),
    ],
)
def test_bad_link_extractor_is_located_at_the_spider_line(
    project: Project, args: str, named: str
) -> None:
    project.add_spider("links", CRAWL_SPIDER.format(args=args))
    for command in (["list"], ["crawl", "links"]):
        result = project.run(*command)
        assert result.returncode == 2, result.stderr
        line = one_line(result)
        assert named in line
        assert line.endswith(f"({project.root / 'spiders' / 'links.py'}:7)")


def test_runspider_bad_regex_is_located_at_the_file_line(tmp_path: Path) -> None:
    spider = tmp_path / "links.py"
    spider.write_text(CRAWL_SPIDER.format(args="allow='('"))
    result = scrapekit("runspider", str(spider), cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert "LinkExtractor(allow=...) '(' is not a valid regular expression" in line
    assert line.endswith(f"({spider}:7)")


@pytest.mark.parametrize(
    "attribute", ["sitemap_rules = [(r'(', 'parse')]", "sitemap_follow = ['[']"]
)
def test_bad_sitemap_regex_is_a_configuration_error(project: Project, attribute: str) -> None:
    project.add_spider(
        "maps",
        f"""\
        from scrapekit import SitemapSpider


        class Maps(SitemapSpider):
            name = "maps"
            sitemap_urls = ["http://127.0.0.1:9/sitemap.xml"]
            {attribute}

            def parse(self, response):
                yield {{"url": response.url}}
        """,
    )
    result = project.run("crawl", "maps", "-O", "items.jsonl")
    assert result.returncode == 2
    line = one_line(result)
    what = attribute.split(" = ")[0]
    assert f"spider 'maps': {what}[0] " in line
    assert "is not a valid regular expression" in line


def test_genspider_refuses_a_dunder_name(project: Project) -> None:
    init = project.root / "spiders" / "__init__.py"
    before = init.read_bytes()
    result = project.run("genspider", "__init__", "example.com", "--force")
    assert result.returncode == 2
    assert "a spider name must be a Python identifier" in one_line(result)
    assert init.read_bytes() == before


@pytest.mark.parametrize("port", ["99999", "0"])
def test_proxy_port_out_of_range_says_so(project: Project, port: str) -> None:
    result = project.run(
        "settings", "--get", "PROXY", "-s", f"PROXY=http://u:secret@127.0.0.1:{port}"
    )
    assert result.returncode == 2
    line = one_line(result)
    assert f"the port {port} is out of range (1-65535)" in line
    assert "secret" not in line


@pytest.mark.parametrize("hostport", ["127.0.0.1:1:2", "[::1]:1:2", "127.0.0.1:80x"])
def test_proxy_port_that_is_not_a_number_says_so(project: Project, hostport: str) -> None:
    """A second colon after the port (often an unencoded ':' somewhere) is not "port 2 is
    out of range": the port is not a number."""
    result = project.run("settings", "--get", "PROXY", "-s", f"PROXY=http://u:secret@{hostport}")
    assert result.returncode == 2
    line = one_line(result)
    assert "the port is not a number (percent-encode ':', '/', '@' in the password)" in line
    assert "secret" not in line


def test_check_bad_url_fails_its_row_and_checks_the_others(
    project: Project, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/p").respond_with_data("<p>x</p>", content_type="text/html")
    project.add_spider(
        "contr",
        f'''\
        from scrapekit import Spider


        class Contr(Spider):
            name = "contr"

            def parse(self, response):
                """@url notaurl
                @returns items 1
                """
                yield {{"a": 1}}

            def parse_good(self, response):
                """@url {httpserver.url_for("/p")}
                @returns items 1 1
                """
                yield {{"a": 1}}
        ''',
    )
    result = project.run("check", "contr", "-s", "ROBOTSTXT_OBEY=false")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    first = ["contr", "parse", "(contracts)", "FAIL", "@url", "notaurl:", "no", "scheme;"]
    assert rows[1][:8] == first
    assert ["contr", "parse_good", "@returns", "items", "1", "1", "ok"] in rows
    assert result.stdout.splitlines()[-1] == "checked 1 spider: 2 passed, 1 failed"


@pytest.mark.parametrize("below", ["a-file/sub", "a-file"])
def test_startproject_into_a_file_path_is_a_usage_error(tmp_path: Path, below: str) -> None:
    (tmp_path / "a-file").write_text("keep")
    result = scrapekit("startproject", "shop", str(tmp_path / below), cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("scrapekit: error: startproject: ")
    assert str(tmp_path / below) in line
    assert "; choose " in line
    assert (tmp_path / "a-file").read_text() == "keep"


def test_genspider_into_spiders_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text('SPIDER_MODULES = ["spiders"]\n')
    (tmp_path / "spiders").write_text("")
    result = scrapekit("genspider", "books", "example.com", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result) == (
        "scrapekit: error: genspider: cannot write spiders/books.py (File exists: "
        f"{tmp_path / 'spiders'}); make spiders a folder you can write to"
    )


def test_parse_callback_error_is_one_line_at_the_spider_line(
    project: Project, httpserver: HTTPServer
) -> None:
    """What the callback yielded before raising is printed; the error is one line pointing at
    the spider's own line (not a traceback ending in the selector library)."""
    httpserver.expect_request("/p").respond_with_data("<p>x</p>", content_type="text/html")
    project.add_spider(
        "raiser",
        """\
        from scrapekit import Spider


        class Raiser(Spider):
            name = "raiser"

            def parse(self, response):
                yield {"ok": 1}
                yield {"x": response.css("p::text").re("(")}
        """,
    )
    result = project.run("parse", httpserver.url_for("/p"), "--spider", "raiser")
    assert result.returncode == 1
    assert result.stdout == '{"type": "item", "depth": 1, "item": {"ok": 1}}\n'
    line = one_line(result)
    assert line.startswith("scrapekit: callback raised re.error: re() '(' is not a valid regular")
    assert line.endswith(f"({project.root / 'spiders' / 'raiser.py'}:9)")


@pytest.mark.parametrize("flag", ["-o", "-O"])
def test_a_feed_that_cannot_be_created_is_a_configuration_error(
    project: Project, flag: str, tmp_path: Path
) -> None:
    """A feed path under a file (or /proc) cannot be created: one line naming the feed and
    the fix, exit 2, before anything is fetched."""
    project.add_spider(
        "one",
        """\
        from scrapekit import Spider


        class One(Spider):
            name = "one"
            start_urls = ["http://127.0.0.1:9/never-fetched"]

            def parse(self, response):
                yield {"url": response.url}
        """,
    )
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    feed = blocker / "items.jsonl"
    result = project.run("crawl", "one", flag, str(feed))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]  # after the log's "new run" line
    assert f"feed {feed} cannot be written: {blocker} is a file, not a folder" in line
    assert "a path in a folder you can write to" in line


def test_proxy_with_a_bracket_in_its_password_says_so(project: Project) -> None:
    """urlsplit reads '[' as the start of an IPv6 host: one line, exit 2, no traceback and
    no password."""
    result = project.run("settings", "--get", "PROXY", "-s", "PROXY=http://u:s3[cret@h:3128")
    assert result.returncode == 2
    line = one_line(result)
    assert "PROXY" in line
    assert "percent-encode '[', ']'" in line
    assert "s3[cret" not in line


def test_genspider_writes_a_url_with_quotes_as_valid_python(project: Project) -> None:
    """The URL is written into the spider's source: a '"' or a backslash is percent-encoded,
    so the file compiles and crawls the URL meant."""
    result = project.run("genspider", "quoted", 'https://e.com/s?q="a"&b=\\c')
    assert result.returncode == 0, result.stderr
    source = (project.root / "spiders" / "quoted.py").read_text()
    compile(source, "quoted.py", "exec")
    assert "https://e.com/s?q=%22a%22&b=%5Cc" in source
