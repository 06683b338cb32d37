"""`scrapekit fetch`, `shell`, `parse` and `-C DIR` as child processes, against loopback servers
and the demo shop, with and without a spider's persisted login."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response as WResponse

from scrapekit.demo import DemoSite
from tests.conftest import REPO, Project, child_env

pytestmark = pytest.mark.subprocess


def scrapekit(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `scrapekit ARGS` in `cwd` as a child process."""
    return subprocess.run(
        [sys.executable, "-m", "scrapekit", *args],
        cwd=cwd,
        env=child_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder`: its bytes and mtime (what must not change)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class Demo:
    """The repository's demo spider against the shared demo shop, state under tmp_path."""

    def __init__(self, site: DemoSite, state: Path, cwd: Path) -> None:
        self.site = site
        self.state = state
        self.cwd = cwd

    def run(
        self, command: str, *args: str, stdin: str | None = None, spider: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`scrapekit -C REPO COMMAND ARGS --spider demo` from a folder outside the project."""
        flag = ["--spider", "demo"] if spider and command != "check" else []
        return scrapekit(
            "-C", str(REPO), command, *args, *flag, "-a", f"base_url={self.site.url}",
            "-s", f"STATE_DIR={self.state}", "--log-level", "WARNING",
            cwd=self.cwd, stdin=stdin,
        )  # fmt: skip

    @property
    def jar(self) -> Path:
        return self.state / "demo" / "session.db"


@pytest.fixture
def demo(demo_site: DemoSite, tmp_path: Path) -> Demo:
    """The demo spider, no session saved yet."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    return Demo(demo_site, tmp_path / "state", cwd)


@pytest.fixture
def logged_in(demo: Demo) -> Demo:
    """The demo spider with a logged-in session saved by `shell --login`."""
    result = demo.run("shell", "--login", "-c", "len(session.cookies)")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0
    assert demo.jar.exists()
    return demo


def product_url(site: DemoSite) -> str:
    return f"{site.url}{site.products[0].path}"


# -- fetch -------------------------------------------------------------------------------------


def test_fetch_prints_the_decoded_body_outside_a_project(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Outside any project, fetch prints the body decoded from its charset, and exit 0."""
    httpserver.expect_request("/page").respond_with_data(
        "<p>caf\u00e9</p>".encode("latin-1"), content_type="text/html; charset=iso-8859-1"
    )
    result = scrapekit("fetch", httpserver.url_for("/page"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "<p>caf\u00e9</p>"
    assert not (tmp_path / ".scrapekit").exists()


def test_fetch_headers_hide_cookie_values_unless_asked(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """--headers prints the status line and headers, Set-Cookie values only with --values."""
    response = WResponse("body", status=404, headers={"X-Shop": "yes"})
    response.set_cookie("sid", "s3cret-value", httponly=True)
    httpserver.expect_request("/h").respond_with_response(response)
    shown = scrapekit("fetch", "--headers", httpserver.url_for("/h"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] in ("HTTP/1.0 404 Not Found", "HTTP/1.1 404 Not Found")
    assert "X-Shop: yes" in lines
    assert "Set-Cookie: sid=<hidden>; HttpOnly; Path=/" in lines
    assert "s3cret-value" not in shown.stdout + shown.stderr
    values = scrapekit("fetch", "--headers", "--values", httpserver.url_for("/h"), cwd=tmp_path)
    assert "Set-Cookie: sid=s3cret-value; HttpOnly; Path=/" in values.stdout.splitlines()


def test_fetch_failure_is_one_line_and_exit_1(unreachable_url: str, tmp_path: Path) -> None:
    """A refused connection prints one line naming the URL, nothing on stdout, exit 1."""
    result = scrapekit("fetch", unreachable_url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"scrapekit: fetch failed: {unreachable_url}")


def test_fetch_with_spider_sees_the_logged_in_page_and_leaves_the_jar(logged_in: Demo) -> None:
    """Through the persisted session a product page shows the logged-in stock count, and the
    state folder (jar bytes, mtimes, no side files) is exactly as before."""
    before = files(logged_in.state)
    result = logged_in.run("fetch", product_url(logged_in.site))
    assert result.returncode == 0, result.stderr
    assert 'class="logout"' in result.stdout
    assert "data-stock=" in result.stdout
    assert files(logged_in.state) == before


def test_fetch_with_spider_never_logs_in_without_login(demo: Demo) -> None:
    """With no saved session fetch does not log in: it warns that the page looks logged
    out, shows the logged-out page, and creates no state."""
    result = demo.run("fetch", f"{demo.site.url}/catalogue/page-1.html")
    assert result.returncode == 0, result.stderr
    assert 'class="login"' in result.stdout
    assert "page looks logged out" in result.stderr
    assert "--login" in result.stderr
    assert not demo.state.exists()


# -- shell -------------------------------------------------------------------------------------


def test_shell_c_prints_the_expression_without_a_spider(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """`shell URL -c EXPR` prints EXPR's value (a str as it is), with response and request."""
    httpserver.expect_request("/p").respond_with_data("<h1> Hello </h1>", content_type="text/html")
    url = httpserver.url_for("/p")
    code = "response.css_first('h1').text(strip=True) + ' ' + request.url"
    result = scrapekit("shell", url, "-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Hello {url}\n"


def test_shell_c_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """Code that raises prints the error in one line and exits 1; no URL is needed."""
    result = scrapekit("shell", "-c", "1 / 0", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "scrapekit: shell -c raised ZeroDivisionError: division by zero (CODE line 1)\n"
    )
    assert result.stdout == ""


def test_shell_with_spider_uses_the_persisted_login(logged_in: Demo) -> None:
    """`shell --spider -c` sees the product page logged in, with the spider at hand."""
    result = logged_in.run(
        "shell", product_url(logged_in.site), "-c",
        "(spider.name, response.css_first('p.stock').attributes['data-stock'].isdigit())",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "('demo', True)\n"


def test_shell_login_logs_in_once_and_saves_the_jar(demo: Demo) -> None:
    """--login logs in and saves the jar; a second --login finds it logged in and sends
    no login form."""
    logins = demo.site.stats.logins
    first = demo.run("shell", "--login", "-c", "len(session.cookies)")
    assert first.returncode == 0, first.stderr
    assert demo.site.stats.logins == logins + 1
    assert demo.jar.exists()
    second = demo.run("shell", "--login", "-c", "len(session.cookies)")
    assert second.returncode == 0, second.stderr
    assert demo.site.stats.logins == logins + 1


def test_shell_reads_lines_and_fetch_replaces_response(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The interactive shell (code.interact on a pipe) runs lines; fetch() replaces response."""
    httpserver.expect_request("/a").respond_with_data("A", content_type="text/plain")
    httpserver.expect_request("/b").respond_with_data("B", content_type="text/plain")
    lines = "print('first', response.text)\nfetch('" + httpserver.url_for("/b") + "')\n"
    lines += "print('then', response.text, request.url.endswith('/b'))\nshelp()\n"
    result = scrapekit("shell", httpserver.url_for("/a"), cwd=tmp_path, stdin=lines)
    assert result.returncode == 0, result.stderr
    assert "first A" in result.stdout
    assert "then B True" in result.stdout
    assert "fetch(url_or_request)" in result.stdout


def test_shell_hands_its_namespace_to_ipython_when_installed(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """With IPython importable, the shell embeds it with the live namespace (its fetch()
    works from there) instead of the standard console. IPython itself is not a dependency:
    a stand-in package on PYTHONPATH records what the shell gives it."""
    httpserver.expect_request("/a").respond_with_data("A", content_type="text/plain")
    httpserver.expect_request("/b").respond_with_data("B", content_type="text/plain")
    embed = tmp_path / "fake" / "IPython" / "terminal" / "embed.py"
    embed.parent.mkdir(parents=True)
    (embed.parent.parent / "__init__.py").write_text("")
    (embed.parent / "__init__.py").write_text("")
    embed.write_text(
        "class InteractiveShellEmbed:\n"
        "    def __init__(self, banner1, user_ns):\n"
        "        self.banner1, self.user_ns = banner1, user_ns\n"
        "    def __call__(self):\n"
        "        ns = self.user_ns\n"
        "        print('embedded', 'fetch(url_or_request)' in self.banner1, ns['response'].text)\n"
        f"        ns['fetch']({httpserver.url_for('/b')!r})\n"
        "        print('then', ns['response'].text, ns['request'].url.endswith('/b'))\n"
    )
    result = scrapekit(
        "shell", httpserver.url_for("/a"), cwd=tmp_path, stdin="",
        env={"PYTHONPATH": str(tmp_path / "fake")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "embedded True A" in result.stdout
    assert "then B True" in result.stdout


def test_login_without_a_spider_is_a_usage_error(tmp_path: Path) -> None:
    """--login needs a spider with a login(): one line, exit 2, nothing fetched."""
    result = scrapekit("shell", "--login", "-c", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "scrapekit: error: --login needs --spider NAME naming a spider with a login() method"
    )


# -- parse -------------------------------------------------------------------------------------


def test_parse_depth_2_follows_requests_with_their_callbacks(logged_in: Demo) -> None:
    """parse prints the listing's requests at depth 1 and, following them with their own
    callbacks, the logged-in product items at depth 2."""
    site = logged_in.site
    result = logged_in.run("parse", f"{site.url}/catalogue/page-1.html", "--depth", "2")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    first = [x for x in lines if x["depth"] == 1]
    assert {x["type"] for x in first} == {"request"}
    products = [x for x in first if x["callback"] == "parse_product"]
    assert len(products) == 20
    assert [x["url"] for x in first if x["callback"] == "parse"] == [
        f"{site.url}/catalogue/page-2.html"
    ]
    items = [x["item"] for x in lines if x["type"] == "item"]
    assert all(x["depth"] == 2 for x in lines if x["type"] == "item")
    assert sorted(i["url"] for i in items) == sorted(x["url"] for x in products)
    assert all(isinstance(i["stock"], int) for i in items)  # only logged in users see it


def test_parse_named_callback_with_meta(demo: Demo) -> None:
    """-c names the callback; without --spider the one spider allowing the host is used;
    outside the login the product still parses (no stock)."""
    site = demo.site
    result = demo.run(
        "parse", product_url(site), "-c", "parse_product", "--meta", '{"x": 1}', spider=False
    )
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert line["type"] == "item"
    assert line["depth"] == 1
    assert line["item"]["title"] == site.products[0].title
    assert line["item"]["stock"] is None


def test_parse_unknown_callback_names_the_choices(demo: Demo) -> None:
    """An unknown -c is one line listing the spider's parse methods, exit 2."""
    result = demo.run("parse", product_url(demo.site), "-c", "parse_prodcut")
    assert result.returncode == 2
    assert "has no method 'parse_prodcut'" in result.stderr
    assert "parse, parse_product" in result.stderr


def test_parse_404_skips_the_callback_and_exits_1(demo: Demo) -> None:
    """An HTTP error status is not parsed (as in a crawl): said on stderr, exit 1."""
    result = demo.run("parse", f"{demo.site.url}/nowhere")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "HTTP 404 is not handled" in result.stderr


# -- check -------------------------------------------------------------------------------------


def test_check_demo_contracts_pass(logged_in: Demo) -> None:
    """The demo spider's docstring contracts ({base_url} from -a) all pass, exit 0."""
    result = logged_in.run("check", "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "checked 1 spider: 6 passed, 0 failed"


# -- -C DIR ------------------------------------------------------------------------------------


def test_dash_c_runs_in_the_project_from_another_folder(project: Project, tmp_path: Path) -> None:
    """`scrapekit -C DIR list` finds the project in DIR whatever the working directory."""
    project.add_spider(
        "one", "from scrapekit import Spider\nclass One(Spider):\n    name = 'one'\n"
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = scrapekit("-C", str(project.root), "list", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "one\n"
    plain = scrapekit("list", cwd=elsewhere)
    assert plain.returncode == 2


def test_dash_c_missing_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    """A -C folder that does not exist: one line naming it, exit 2."""
    missing = tmp_path / "nope"
    result = scrapekit("--project", str(missing), "list", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"scrapekit: error: -C {missing}: No such file or directory"
    ]


# -- an unexpected error -----------------------------------------------------------------------


def test_an_unexpected_error_names_the_command_that_failed(
    project: Project, httpserver: HTTPServer
) -> None:
    """A bug in the spider under `parse` ends with a traceback and one line naming `parse`
    (not `crawl`), exit 1."""
    project.add_spider(
        "buggy",
        """
        from scrapekit import Spider

        class Buggy(Spider):
            name = "buggy"

            def __init__(self, **kwargs):
                raise RuntimeError("spider constructor bug")
        """,
    )
    result = project.run("parse", httpserver.url_for("/"), "--spider", "buggy")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "scrapekit: parse failed: RuntimeError: spider constructor bug"
    )


# -- parse on a CrawlSpider --------------------------------------------------------------------

CRAWL_SPIDER = """
from scrapekit import CrawlSpider, LinkExtractor, Rule


class Books(CrawlSpider):
    name = "books"
    allowed_domains = ["127.0.0.1"]
    rules = (
        Rule(LinkExtractor(allow=r"/product/"), callback="parse_item", cb_kwargs={"via": "rule"}),
        Rule(LinkExtractor(allow=r"/catalogue/page-")),
    )

    def parse_item(self, response, via):
        yield {"url": response.url, "title": response.css_first("h1").text(), "via": via}
"""


def test_parse_on_a_crawl_spider_uses_the_rule_the_crawl_would(
    project: Project, demo_site: DemoSite
) -> None:
    """Without -c, a URL a rule takes is parsed by that rule's callback (with its cb_kwargs),
    and a listing's requests name the rule that will parse them."""
    project.add_spider("books", CRAWL_SPIDER)
    product = demo_site.products[0]
    result = project.run("parse", product_url(demo_site), "--spider", "books")
    assert result.returncode == 0, result.stderr
    assert [json.loads(x) for x in result.stdout.splitlines()] == [
        {
            "type": "item",
            "depth": 1,
            "item": {"url": product_url(demo_site), "title": product.title, "via": "rule"},
        }
    ]
    listing = project.run("parse", f"{demo_site.url}/catalogue/page-1.html", "--spider", "books")
    assert listing.returncode == 0, listing.stderr
    callbacks = {json.loads(x)["callback"] for x in listing.stdout.splitlines()}
    assert callbacks == {"rules[0] parse_item", "rules[1] (follow)"}


# -- parse --meta and --cb-kwargs ---------------------------------------------------------------

ECHO_SPIDER = """
from scrapekit import Spider


class Echo(Spider):
    name = "echo"

    def parse(self, response, **kwargs):
        yield {"meta": dict(response.meta), "kwargs": kwargs}
        yield response.follow("/next")
"""


def test_parse_gives_the_callback_the_meta_and_cb_kwargs(
    project: Project, httpserver: HTTPServer
) -> None:
    """--meta lands in response.meta and --cb-kwargs in the callback's keyword arguments,
    nested JSON values included; the requests it yields do not inherit them."""
    httpserver.expect_request("/").respond_with_data("<p>x</p>", content_type="text/html")
    httpserver.expect_request("/next").respond_with_data("<p>y</p>", content_type="text/html")
    project.add_spider("echo", ECHO_SPIDER)
    meta = {"source": "cli", "page": 3, "tags": ["a", "b"]}
    cb_kwargs = {"shelf": "top", "limit": None, "opts": {"deep": True}}
    result = project.run(
        "parse", httpserver.url_for("/"), "--spider", "echo", "--depth", "2",
        "--meta", json.dumps(meta), "--cb-kwargs", json.dumps(cb_kwargs),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    items = [x for x in map(json.loads, result.stdout.splitlines()) if x["type"] == "item"]
    first, second = items
    assert first["depth"] == 1
    assert meta.items() <= first["item"]["meta"].items()
    assert first["item"]["kwargs"] == cb_kwargs
    assert second["depth"] == 2
    assert "source" not in second["item"]["meta"]
    assert second["item"]["kwargs"] == {}


def test_parse_cb_kwargs_override_a_rules_own(project: Project, demo_site: DemoSite) -> None:
    """On a CrawlSpider, --cb-kwargs win over the rule's cb_kwargs for the same name."""
    project.add_spider("books", CRAWL_SPIDER)
    result = project.run(
        "parse", product_url(demo_site), "--spider", "books", "--cb-kwargs", '{"via": "cli"}'
    )
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert line["item"]["via"] == "cli"


@pytest.mark.parametrize("flag", ["--meta", "--cb-kwargs"])
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param('{"a": 1', "not valid JSON (Expecting ',' delimiter)", id="broken"),
        pytest.param("", "not valid JSON (Expecting value)", id="empty"),
        pytest.param("{'a': 1}", "not valid JSON (Expecting property name", id="python-dict"),
        pytest.param("[1, 2]", "expected a JSON object such as '{\"key\": 1}'", id="list"),
        pytest.param('"a"', "expected a JSON object such as '{\"key\": 1}'", id="string"),
        pytest.param("null", "expected a JSON object such as '{\"key\": 1}'", id="null"),
    ],
)
def test_parse_bad_meta_or_cb_kwargs_is_one_line_naming_the_option(
    project: Project, httpserver: HTTPServer, flag: str, value: str, problem: str
) -> None:
    """Invalid JSON, or JSON that is not an object: one line naming the option and the value,
    exit 2, and nothing is fetched."""
    project.add_spider("echo", ECHO_SPIDER)
    result = project.run("parse", httpserver.url_for("/"), "--spider", "echo", flag, value)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"scrapekit: error: {flag} {value!r}: {problem}")
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        pytest.param('{"download_timeout": "abc"}', "'download_timeout' must be a number of "
                     'seconds > 0, got "abc"', id="timeout-text"),
        pytest.param('{"download_timeout": -1}', "'download_timeout' must be a number of "
                     "seconds > 0, got -1", id="timeout-negative"),
        pytest.param('{"download_timeout": null}', "'download_timeout' must be a number of "
                     "seconds > 0, got null", id="timeout-null"),
        pytest.param('{"max_response_bytes": "x"}', "'max_response_bytes' must be a whole "
                     'number of bytes >= 0 (0: no limit), got "x"', id="bytes-text"),
        pytest.param('{"max_response_bytes": 1.5}', "'max_response_bytes' must be a whole "
                     "number of bytes >= 0 (0: no limit), got 1.5", id="bytes-fraction"),
    ],
)  # fmt: skip
def test_parse_meta_the_fetch_cannot_use_is_one_line_naming_the_key(
    project: Project, httpserver: HTTPServer, meta: str, problem: str
) -> None:
    """A --meta key the fetch reads (download_timeout, max_response_bytes) with a value it
    cannot use is one line naming the key and an example, exit 2, nothing fetched; not a
    traceback from deep in the session."""
    project.add_spider("echo", ECHO_SPIDER)
    result = project.run("parse", httpserver.url_for("/"), "--spider", "echo", "--meta", meta)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"scrapekit: error: --meta: {problem}; e.g. --meta '{{")
    assert httpserver.log == []
