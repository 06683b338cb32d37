"""Crash-test harness: run `scrapekit crawl` as a child, interrupt it at chosen moments, resume.

A scenario is a feed (format, `-o` or `-O`), a signal (SIGKILL or SIGTERM) and a list of
`Moment`s. `run_scenario` starts the crawl, waits (bounded) for the first moment, signals the
child, waits for it to exit, starts it again (the same command, which resumes) for the next
moment, and after the last one runs it to the end. It returns an `Outcome`: what each
interruption hit, the final items and the site's fetch counts, which `item_problems` and
`fetch_problems` turn into readable failures.

Moments are drawn from a seeded `random.Random`, so a failing schedule can be replayed; what a
moment waits for is progress the test can see (fetches counted by the site, bytes written to
the output folder, commits to the frontier's WAL), so it lands at a comparable point of the
crawl however fast the machine is.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from scrapekit.workers import COMMITS_AHEAD
from tests.conftest import child_env
from tests.crash.site import GraphSite, ItemKey

SPIDER = "graph"
CONCURRENCY = 8
#: Pages in flight at most at a kill, each refetched by the next run: those being fetched or
#: parsed (one a worker) and those whose commit is under way (COMMITS_AHEAD a worker).
IN_FLIGHT = CONCURRENCY * (1 + COMMITS_AHEAD)
WAIT = 30.0  # seconds any one wait may take before the test fails as hung
POLL = 0.002  # seconds between two looks at the site, the output and the WAL
COMMIT_POLL = 0.0005  # the same while waiting for a commit: signal as close to it as we can

_SPIDER_SOURCE = '''
"""Every item of the crash-test site, following every link."""

from urllib.parse import urlsplit

from scrapekit import Request, Response, Spider


class GraphSpider(Spider):
    name = "graph"
    start_url = ""

    async def start(self):
        yield Request(self.start_url, callback=self.parse)

    def parse(self, response: Response):
        url = urlsplit(str(response.url))
        for node in response.css("li.item"):
            yield {
                "host": url.hostname,
                "path": url.path,
                "index": node.attributes["data-index"],
                "name": node.text(),
            }
        for link in response.css("a.link"):
            yield response.follow(link.attributes["href"])
'''

_SETTINGS = f"""
SPIDER_MODULES = ["spiders"]
CONCURRENCY = {CONCURRENCY}
CONCURRENCY_PER_HOST = {CONCURRENCY}
ROBOTSTXT_OBEY = false
RATE = 0
DOWNLOAD_DELAY = 0
LOG_LEVEL = "INFO"
"""


class CrawlProject:
    """A throw-away project (settings.toml + spiders/graph.py) whose state and feeds are
    under one tmp folder; `command()` is the crawl every run of a scenario repeats."""

    def __init__(self, root: Path, site: GraphSite, feed: str, flag: str = "-o") -> None:
        self.root = root
        self.site = site
        self.flag = flag
        self.state = root / "state"
        self.out_dir = root / "out"
        self.out = self.out_dir / f"items{feed}"
        self.logs = root / "logs"
        for folder in (root / "spiders", self.out_dir, self.logs):
            folder.mkdir(parents=True)
        (root / "spiders" / "__init__.py").write_text("")
        (root / "spiders" / f"{SPIDER}.py").write_text(textwrap.dedent(_SPIDER_SOURCE))
        (root / "settings.toml").write_text(textwrap.dedent(_SETTINGS))
        self.runs = 0
        self.children: list[subprocess.Popen[bytes]] = []
        #: More feeds of every run, (flag, file name in the output folder): `-o a -O b`.
        self.extra_feeds: list[tuple[str, str]] = []

    @property
    def state_folder(self) -> Path:
        """The crawl's state folder (the frontier and any other SQLite file of the crawl)."""
        return self.state / SPIDER

    def command(self) -> list[str]:
        """`scrapekit crawl graph -o|-O FILE` (and the extra feeds) with the SQLite frontier
        under tmp."""
        extra = [arg for flag, name in self.extra_feeds for arg in (flag, str(self.out_dir / name))]
        return [
            sys.executable, "-m", "scrapekit", "crawl", SPIDER, self.flag, str(self.out), *extra,
            "-a", f"start_url={self.site.url(0)}",
            "-s", "FRONTIER=sqlite", "-s", f"STATE_DIR={self.state}",
            "--log-format", "json",
        ]  # fmt: skip

    @contextmanager
    def start(self) -> Iterator[Run]:
        """Start one run; on leaving, a child still running is killed and reaped."""
        self.runs += 1
        log = self.logs / f"run-{self.runs}.log"
        with log.open("wb") as sink:
            child = subprocess.Popen(
                self.command(), cwd=self.root, env=child_env(), stdout=sink, stderr=sink
            )
        self.children.append(child)
        try:
            yield Run(self, child, log)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=WAIT)

    def run_to_end(self) -> Run:
        """One run, uninterrupted; fails if it hangs."""
        with self.start() as run:
            try:
                run.child.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"run {run.number} did not finish: {run.tail()}") from None
        return run

    def output_sizes(self) -> dict[str, int]:
        """The size of each file in the output folder: the feed and any temporary file."""
        sizes = {}
        for path in self.out_dir.iterdir():
            try:
                sizes[path.name] = path.stat().st_size
            except FileNotFoundError:
                continue  # a temporary file renamed meanwhile
        return sizes

    def output_growth(self, before: dict[str, int]) -> int:
        """Bytes written to the output folder since `before` (files that shrank or went
        away, as a stale temporary file removed, do not count against it)."""
        after = self.output_sizes()
        return sum(max(0, size - before.get(name, 0)) for name, size in after.items())

    def wal_mark(self) -> tuple[tuple[str, int, int], ...]:
        """(name, size, mtime) of each write-ahead log in the state folder: changes at every
        commit (also when a checkpoint has reset the log and it is written from the start)."""
        marks = []
        for wal in sorted(self.state_folder.glob("*-wal")):
            try:
                stat = wal.stat()
            except FileNotFoundError:
                continue
            marks.append((wal.name, stat.st_size, stat.st_mtime_ns))
        return tuple(marks)


@dataclass
class Run:
    """One child crawl."""

    project: CrawlProject
    child: subprocess.Popen[bytes]
    log: Path

    @property
    def number(self) -> int:
        return int(self.log.stem.rsplit("-", 1)[1])

    def tail(self, lines: int = 5) -> str:
        """The end of the run's log, for failure messages."""
        text = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"


@dataclass(frozen=True)
class Moment:
    """When to interrupt a run.

    - "spawn": `seconds` after the child starts, whatever it is doing (maybe still starting);
    - "fetches": after a share `fraction` of the pages not yet fetched were fetched in this
      run (at least one: fraction 0 is the first fetch, right after start);
    - "output": once the output folder has grown in this run (items written), then `extra`
      more fetches; if it has not grown when half the pages not yet fetched were fetched (a
      feed that buffers its writes), then, so the moment still lands mid-crawl;
    - "commits": once a share `fraction` of the pages not yet fetched were fetched in this
      run, and after that the WAL of the crawl's state changed `extra` times, at once (with
      tiny pages and no delay, commits follow each other closely, so the signal most likely
      lands while one is being written).
    """

    kind: str
    fraction: float = 0.0
    seconds: float = 0.0
    extra: int = 0

    def __str__(self) -> str:
        detail = {
            "spawn": f"{self.seconds:.2f}s",
            "fetches": f"{self.fraction:.2f} of the rest",
            "output": f"+{self.extra} fetches",
            "commits": f"{self.fraction:.2f} of the rest, then {self.extra} commits",
        }[self.kind]
        return f"{self.kind}({detail})"


def kill_schedule(rng: random.Random, *, spawn: bool = True) -> list[Moment]:
    """Five moments, shuffled: right after start, two random points mid-crawl, one after
    items were written, and (with `spawn`) one during start-up."""
    moments = [
        Moment("fetches", fraction=0.0),
        Moment("fetches", fraction=rng.uniform(0.05, 0.4)),
        Moment("fetches", fraction=rng.uniform(0.05, 0.4)),
        Moment("output", extra=rng.randint(0, 10)),
        Moment("spawn", seconds=rng.uniform(0.05, 0.5))
        if spawn
        else Moment("fetches", fraction=rng.uniform(0.05, 0.4)),
    ]
    rng.shuffle(moments)
    return moments


def commit_schedule(rng: random.Random, kills: int) -> list[Moment]:
    """`kills` moments, each a few commits after some pages of a run."""
    return [
        Moment("commits", fraction=rng.uniform(0.0, 0.15), extra=rng.randint(1, 4))
        for _ in range(kills)
    ]


@dataclass
class Interruption:
    """What one signal hit."""

    moment: Moment
    landed: bool  # the child was running when signalled
    fetches: int  # pages fetched in this run before the signal
    output_grew: int  # bytes the output folder grew in this run before the signal
    seconds: float  # since the child started
    target: int = 0  # the fetches the moment waited for ("fetches", "commits")
    returncode: int | None = None
    valid_output: str = ""  # after a SIGTERM: "" or why the feed does not parse
    note: str = ""  # how the moment came, when not as planned
    log_tail: str = ""

    def __str__(self) -> str:
        where = "landed" if self.landed else "MISSED (the run ended first)"
        return (
            f"{self.moment} {where} at {self.seconds:.2f}s, {self.fetches} fetches, "
            f"+{self.output_grew} output bytes, exit {self.returncode}"
            + (f" ({self.note})" if self.note else "")
        )


@dataclass
class Outcome:
    """A scenario's result."""

    interruptions: list[Interruption] = field(default_factory=list)
    final_returncode: int | None = None
    final_log: str = ""
    items: Counter[ItemKey] = field(default_factory=Counter)
    read_error: str = ""
    fetches: Counter[str] = field(default_factory=Counter)

    def landed(self) -> int:
        return sum(i.landed for i in self.interruptions)

    def story(self) -> str:
        """Every step, one per line, for failure messages."""
        lines = [f"  {n}. {i}" for n, i in enumerate(self.interruptions, 1)]
        lines.append(f"  final run: exit {self.final_returncode}: {self.final_log}")
        return "\n".join(lines)


def run_scenario(project: CrawlProject, moments: list[Moment], sig: signal.Signals) -> Outcome:
    """Interrupt the crawl at each moment with `sig`, resuming each time, then finish it."""
    outcome = Outcome()
    site = project.site
    for moment in moments:
        with project.start() as run:
            hit = _interrupt(project, run, moment, sig)
            outcome.interruptions.append(hit)
        if sig == signal.SIGTERM and project.out.exists():
            hit.valid_output = feed_problem(project.out)
        if not hit.landed or hit.returncode == 0:
            # The crawl finished: running it again would start a new crawl.
            outcome.final_returncode, outcome.final_log = hit.returncode, hit.log_tail
            break
    else:
        final = project.run_to_end()
        outcome.final_returncode = final.child.returncode
        outcome.final_log = final.tail(2)
    try:
        outcome.items = Counter(read_feed(project.out))
    except (OSError, ValueError, KeyError) as exc:
        outcome.read_error = f"{type(exc).__name__}: {exc}"
    outcome.fetches = site.fetch_counts()
    return outcome


def _interrupt(
    project: CrawlProject, run: Run, moment: Moment, sig: signal.Signals
) -> Interruption:
    """Wait for `moment` in `run`, signal the child, wait for it to exit."""
    site, child = project.site, run.child
    started = time.monotonic()
    fetched0, output0, wal = site.total_fetches(), project.output_sizes(), project.wal_mark()
    counts = site.fetch_counts()
    unfetched = sum(1 for path in site.paths() if not counts[path])
    target = max(1, round(moment.fraction * unfetched))
    grown_at: int | None = None
    wal_changes = 0
    note = ""
    while child.poll() is None:
        now = time.monotonic()
        assert now - started < WAIT, f"{moment} never came in run {run.number}: {run.tail()}"
        fetched = site.total_fetches() - fetched0
        if moment.kind == "spawn" and now - started >= moment.seconds:
            break
        if moment.kind == "fetches" and fetched >= target:
            break
        if moment.kind == "output":
            if grown_at is None and project.output_growth(output0) > 0:
                grown_at = fetched
            if grown_at is not None and fetched >= grown_at + moment.extra:
                break
            if grown_at is None and fetched >= max(1, unfetched // 2):
                note = "the output did not grow (buffered?)"
                break  # still kill mid-crawl
        if moment.kind == "commits" and fetched < target:
            wal = project.wal_mark()
        elif moment.kind == "commits":
            mark = project.wal_mark()
            if mark != wal:
                wal, wal_changes = mark, wal_changes + 1
                if wal_changes >= moment.extra:
                    break
        time.sleep(COMMIT_POLL if moment.kind == "commits" and fetched >= target else POLL)
    landed = child.poll() is None
    if landed:
        child.send_signal(sig)
    hit = Interruption(
        moment,
        landed=landed,
        fetches=site.total_fetches() - fetched0,
        output_grew=project.output_growth(output0),
        seconds=time.monotonic() - started,
        target=target,
        note=note,
    )
    try:
        hit.returncode = child.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"run {run.number} did not stop after {sig.name}") from None
    hit.log_tail = run.tail(2)
    return hit


# -- reading and judging the output -------------------------------------------------------------


def read_feed(path: Path) -> list[ItemKey]:
    """The items of a .jsonl, .csv or .json feed as keys; raises if it does not parse."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        records = json.loads(text) if text.strip() else []
        if not isinstance(records, list):
            raise ValueError("the JSON feed is not an array")
    elif path.suffix == ".csv":
        records = list(csv.DictReader(text.splitlines(keepends=True)))
    else:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [(str(r["host"]), str(r["path"]), str(r["index"]), str(r["name"])) for r in records]


def feed_problem(path: Path) -> str:
    """An empty string if the feed parses, else why not."""
    try:
        read_feed(path)
    except (ValueError, KeyError, csv.Error) as exc:
        return f"{path.name} does not parse: {type(exc).__name__}: {exc}"
    return ""


def _show(key: ItemKey) -> str:
    return f"{key[0]}{key[1]}#{key[2]}"


def item_problems(expected: Counter[ItemKey], got: Counter[ItemKey], limit: int = 8) -> list[str]:
    """What keeps `got` from equalling `expected` as a multiset: missing, duplicated and
    unexpected items, each with a count and a few examples; [] if they are equal."""
    problems = []
    missing = expected - got
    surplus = got - expected
    duplicated = Counter({k: n for k, n in surplus.items() if k in expected})
    unknown = Counter({k: n for k, n in surplus.items() if k not in expected})
    for label, found in (("missing", missing), ("duplicated", duplicated), ("unexpected", unknown)):
        if found:
            examples = ", ".join(
                _show(k) + (f" x{got[k]}" if got[k] > 1 else "") for k in sorted(found)[:limit]
            )
            problems.append(
                f"{sum(found.values())} items {label} ({len(found)} distinct), e.g. {examples}"
            )
    return problems


def fetch_problems(
    site: GraphSite, fetches: Counter[str], interruptions: int, in_flight: int = IN_FLIGHT
) -> list[str]:
    """What keeps the fetch counts from "every page once, except at most `in_flight`
    pages in flight at each interruption, each refetched once per interruption at most"."""
    problems = []
    pages = site.paths()
    never = [p for p in pages if not fetches[p]]
    unknown = sorted(p for p in fetches if p not in set(pages))
    again = {p: n - 1 for p, n in fetches.items() if n > 1 and p in set(pages)}
    allowed = in_flight * interruptions
    if never:
        problems.append(f"{len(never)} pages never fetched, e.g. {never[:8]}")
    if unknown:
        problems.append(f"{len(unknown)} unknown paths fetched, e.g. {unknown[:8]}")
    if sum(again.values()) > allowed:
        worst = sorted(again.items(), key=lambda kv: -kv[1])[:8]
        problems.append(
            f"{sum(again.values())} refetches (of {len(again)} pages), more than "
            f"{in_flight} in flight x {interruptions} interruptions = {allowed}; e.g. {worst}"
        )
    if too_often := {p: n for p, n in again.items() if n > interruptions}:
        problems.append(
            f"{len(too_often)} pages refetched more often than there were interruptions "
            f"({interruptions}), e.g. {sorted(too_often.items())[:8]}"
        )
    return problems


def env_seed(default: int) -> int:
    """CRASH_SEED from the environment (to replay a failing schedule), else `default`."""
    return int(os.environ.get("CRASH_SEED", default))
