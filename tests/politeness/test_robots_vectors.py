"""Google's robots.txt conformance vectors, served over loopback and judged by RobotsCache.

RobotsCache adds transport to protego, not parsing: on every expectation it must give
protego's own answer for the same body and URL. The one deliberate difference is decoding: a
leading (partial) UTF-8 byte-order mark is skipped, as Google's parser and RFC 9309 do, where
protego given the raw text reads it as part of the first line. The spec's expected outcome
is counted, not demanded per case (protego 0.7.0 misses a few; see the vectors README).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from protego import Protego
from pytest_httpserver import HTTPServer
from werkzeug import Request as WsgiRequest
from werkzeug import Response as WsgiResponse

from scrapekit.politeness.robots import RobotsCache
from scrapekit.request import Request
from scrapekit.session import Session
from scrapekit.settings import Settings

VECTORS = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "vectors"
    / "robotstxt"
    / "robotstxt-spec-test.json"
)
#: protego 0.7.0's own score on the STANDARD expectations (vectors README): ours must not drop.
STANDARD_FLOOR = 364


def _load_cases() -> list[dict[str, Any]]:
    if not VECTORS.is_file():
        return []
    cases: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))["tests"]
    return cases


CASES = _load_cases()
needs_vectors = pytest.mark.skipif(
    not CASES, reason=f"robots.txt vectors not found at {VECTORS} (shared/ beside the repo)"
)


def case_id(case: dict[str, Any]) -> str:
    """A readable test id: the textproto file (without folder and suffix) and the index."""
    name = case["file"].rsplit("/", 1)[-1].removesuffix(".textproto")
    return f"{name}-{case['index']}"


def body_of(case: dict[str, Any]) -> bytes:
    """The robots.txt bytes as the server sends them."""
    if case["robotstxt_encoding"] == "hex":
        return bytes.fromhex(case["robotstxt"])
    return str(case["robotstxt"]).encode("utf-8")


def starts_with_bom(body: bytes) -> bool:
    """Whether the body opens with a UTF-8 byte-order mark or the first bytes of one."""
    return any(body.startswith(codecs.BOM_UTF8[:size]) for size in (1, 2, 3))


@dataclass(frozen=True, slots=True)
class Verdict:
    """One expectation, with every party's answer."""

    case: str
    url: str
    requested: str
    useragent: str
    kind: str
    expected: bool
    scrapekit: bool
    protego_raw: bool  # protego on the raw text, for the URL we requested
    protego_original: bool  # protego on the raw text, for the spec's own URL
    bom: bool

    def describe(self) -> str:
        """One line for a failure message."""
        return (
            f"{self.case} {self.useragent!r} {self.url!r}: scrapekit={self.scrapekit} "
            f"protego={self.protego_raw} expected={self.expected} ({self.kind})"
        )


class RobotsBody:
    """The single /robots.txt handler: serves whatever body the current case set."""

    def __init__(self) -> None:
        self.body = b""

    def __call__(self, request: WsgiRequest) -> WsgiResponse:
        return WsgiResponse(self.body, content_type="text/plain")


@pytest.fixture
def robots_body(httpserver: HTTPServer) -> RobotsBody:
    """/robots.txt on the loopback server, its body swapped per case."""
    body = RobotsBody()
    httpserver.expect_request("/robots.txt").respond_with_handler(body)
    return body


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A real session, as the crawl uses."""
    settings = Settings.load(
        project_file=None, spider_cls=None, env={}, overrides={"DOWNLOAD_TIMEOUT": 5.0}
    )
    async with Session.from_settings(settings) as s:
        yield s


def on_loopback(url: str, origin: str) -> str:
    """The spec URL's path and query on the loopback origin (an empty URL becomes "/")."""
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{origin}{parts.path or '/'}{query}"


async def judge(
    case: dict[str, Any], server: HTTPServer, robots: RobotsBody, session: Session
) -> list[Verdict]:
    """Serve the case's body and ask one fresh RobotsCache per user agent about every URL."""
    body = body_of(case)
    robots.body = body
    raw = Protego.parse(body.decode("utf-8", errors="replace"))
    origin = server.url_for("/").rstrip("/")
    caches: dict[str, RobotsCache] = {}
    verdicts = []
    for expectation in case["expectations"]:
        agent = expectation["useragent"]
        cache = caches.setdefault(agent, RobotsCache(session.fetch, user_agent=agent))
        requested = on_loopback(expectation["url"], origin)
        verdicts.append(
            Verdict(
                case=case_id(case),
                url=expectation["url"],
                requested=requested,
                useragent=agent,
                kind=expectation["type"],
                expected=expectation["outcome"] == "ALLOWED",
                scrapekit=await cache.allowed(Request(requested)),
                protego_raw=raw.can_fetch(requested, agent),
                protego_original=raw.can_fetch(expectation["url"], agent),
                bom=starts_with_bom(body),
            )
        )
    fetches = sum(1 for request, _ in server.log if request.path == "/robots.txt")
    # One fetch per cache at most (none when it was only asked about /robots.txt itself).
    assert all(cache.statistics().fetched <= 1 for cache in caches.values())
    assert fetches == sum(cache.statistics().fetched for cache in caches.values())
    server.log.clear()
    return verdicts


def disagreements(verdicts: list[Verdict]) -> list[str]:
    """Where scrapekit breaks its contract with protego (see the module docstring)."""
    wrong = []
    for verdict in verdicts:
        if verdict.bom:
            # BOM skipped: we must then agree with protego on the text after it, i.e. the spec.
            if verdict.scrapekit != verdict.expected:
                wrong.append(verdict.describe())
        elif verdict.scrapekit != verdict.protego_raw:
            wrong.append(verdict.describe())
    return wrong


@needs_vectors
@pytest.mark.parametrize("case", CASES or [{}], ids=case_id if CASES else None)
async def test_vector(
    case: dict[str, Any], httpserver: HTTPServer, robots_body: RobotsBody, session: Session
) -> None:
    """RobotsCache over real HTTP answers each expectation exactly as protego does."""
    verdicts = await judge(case, httpserver, robots_body, session)
    assert not disagreements(verdicts)


def count(verdicts: list[Verdict], kind: str, answer: Callable[[Verdict], bool]) -> int:
    """How many expectations of a kind `answer` gets right."""
    return sum(1 for v in verdicts if v.kind == kind and answer(v) == v.expected)


@needs_vectors
async def test_vector_summary(
    httpserver: HTTPServer, robots_body: RobotsBody, session: Session
) -> None:
    """Across all vectors scrapekit matches the spec at least as often as protego does."""
    verdicts = [
        verdict for case in CASES for verdict in await judge(case, httpserver, robots_body, session)
    ]
    assert not disagreements(verdicts)
    standard = [v for v in verdicts if v.kind == "STANDARD"]
    google = [v for v in verdicts if v.kind == "GOOGLE_SPECIFIC"]
    ours = count(verdicts, "STANDARD", lambda v: v.scrapekit)
    print(  # shown with -s or -rP: the numbers the README compares against
        f"\nrobots.txt vectors: STANDARD scrapekit {ours}/{len(standard)}, protego "
        f"{count(verdicts, 'STANDARD', lambda v: v.protego_original)}/{len(standard)}; "
        f"GOOGLE_SPECIFIC scrapekit {count(verdicts, 'GOOGLE_SPECIFIC', lambda v: v.scrapekit)}"
        f"/{len(google)}, protego "
        f"{count(verdicts, 'GOOGLE_SPECIFIC', lambda v: v.protego_original)}/{len(google)}"
    )
    assert len(standard) == 378
    assert ours >= STANDARD_FLOOR
