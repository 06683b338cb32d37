"""`make bench-durable`: what a durable crawl costs, in three figures of one run.

1. Throughput: `scrapekit crawl bench` (bench/project) with the memory frontier and with
   `FRONTIER=sqlite`, one after the other (A B A B), on the same site: the paired ratio of
   their whole-process pages/s (run.py's `scrapekit-memory` and `scrapekit` variants).
2. A million known URLs: `scrapekit crawl fanout -a fanout=F` (bench/project/spiders/fanout.py)
   with `CLOSESPIDER_PAGECOUNT=F+1`: its first F + 1 pages yield F links each, so the frontier
   holds 1 + F + F² URLs (1,001,001 for F = 1000) when the crawl stops. Peak RSS of the whole
   process (the child's rusage) and the time to get there, for each frontier.
3. Resume latency: the same fan-out crawl with `FRONTIER=sqlite` in a fresh state folder is
   killed with SIGKILL once it has fetched a second-level page (the frontier then knows its
   million URLs), then run again, and again, each run killed the same way once it fetched a
   page. The site records each request's arrival time; the figure is the time from the
   resumed process's spawn to its first page request (robots.txt, asked first, is shown apart).

Every run is a child process on a 127.0.0.1 site this script starts (bench/site.py), with its
state, feed, stats file and logs in a temporary folder that is removed after a clean run (kept,
and named, if any run failed). Every run is bounded by --timeout. Exit status 1 if any run
failed or timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from results import Run, median_range
from run import (
    PROJECT,
    VARIANTS,
    Bench,
    _wait_exit,
    cache_bytecode,
    child_env,
    environment,
    run_once,
    scrapekit_command,
    start_site,
    stop_site,
    tail,
)

TARGET_RATIO = 0.90  # the SQLite frontier costs at most 10 % of pages/s
TARGET_RSS_MB = 300.0  # a crawl knowing 1,000,000 URLs, peak RSS in MB (10^6 bytes)
TARGET_RESUME_S = 2.0  # spawn of the resumed process to its first page request
MB = 1_000_000
# ru_maxrss is in KiB on Linux and in bytes on macOS.
RSS_UNIT = 1 if sys.platform == "darwin" else 1024


@dataclass(eq=False)
class Proc:
    """A running child: the process, its log files and when it was spawned (wall clock)."""

    popen: subprocess.Popen[bytes]
    log: Path
    spawned: float
    started: float  # perf_counter at spawn


LIVE: set[Proc] = set()  # children spawned and not yet reaped


@dataclass
class Ended:
    """How a child ended: exit code, wall time, CPU and peak RSS in bytes."""

    code: int
    wall: float
    cpu: float
    rss: int


@dataclass
class Outcome:
    """Everything the three parts found; `problems` makes the exit status 1."""

    throughput: list[Run] = field(default_factory=list)
    known: dict[str, tuple[Ended, dict[str, object]]] = field(default_factory=dict)
    fill: tuple[Ended, int] | None = None  # the killed first crawl, and the pages it fetched
    # per resumed run: robots.txt s, first page s, pending when resumed, pages after the first
    resumes: list[tuple[float, float, int | None, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def spawn(cmd: list[str], cwd: Path, log: Path) -> Proc:
    """Start `cmd` with stdout/stderr to `log`.{out,err}."""
    with open(f"{log}.out", "wb") as out, open(f"{log}.err", "wb") as err:
        spawned, started = time.time(), time.perf_counter()
        popen = subprocess.Popen(
            cmd, cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
    proc = Proc(popen, log, spawned, started)
    LIVE.add(proc)
    return proc


def kill_live() -> None:
    """SIGKILL and reap every child still running (on Ctrl-C, SIGTERM or an error)."""
    for proc in list(LIVE):
        reap(proc, 0, kill=True)


def reap(proc: Proc, timeout: float, kill: bool = False) -> Ended:
    """SIGKILL the child now (`kill`) or after `timeout`; reap it with its rusage."""
    if not kill:
        kill = not _wait_exit(proc.popen.pid, timeout)  # unreaped, so wait4 has the rusage
    wall = time.perf_counter() - proc.started
    if kill:
        proc.popen.send_signal(signal.SIGKILL)
    _, status, usage = os.wait4(proc.popen.pid, 0)
    LIVE.discard(proc)
    proc.popen.returncode = code = os.waitstatus_to_exitcode(status)
    return Ended(code, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * RSS_UNIT)


def fanout_command(url: str, tmp: Path, name: str, fanout: int, *settings: str) -> list[str]:
    """`scrapekit crawl fanout` with its state, feed and stats under `tmp`."""
    exe = scrapekit_command() or "scrapekit"
    cmd = [exe, "crawl", "fanout", "-a", f"url={url}", "-a", f"fanout={fanout}"]
    cmd += ["-O", str(tmp / "out" / f"{name}.jsonl")]
    for setting in (
        "CONCURRENCY=16",
        "CONCURRENCY_PER_HOST=16",
        f"STATS_FILE={tmp / 'out' / name}.stats.json",
        "LOG_LEVEL=WARNING",
        *settings,
    ):
        cmd += ["-s", setting]
    return cmd


class Arrivals:
    """The site's arrival log, read as it grows: `<wall-clock time> <path>` per request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._rest = b""
        self.pages = 0  # `/fan/` requests read so far

    def new(self) -> list[tuple[float, str]]:
        """The requests logged since the last call."""
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        *lines, self._rest = (self._rest + data).split(b"\n")
        out = []
        for line in lines:
            when, _, path = line.decode().partition(" ")
            out.append((float(when), path))
            self.pages += fan_index(path) >= 0
        return out

    def wait_for(
        self, proc: Proc, want: Callable[[str], bool], timeout: float
    ) -> tuple[float, str] | None:
        """The first request after the spawn of `proc` whose path passes `want`, or None if
        the process exits or `timeout` passes first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for when, path in self.new():
                if when >= proc.spawned and want(path):
                    return when, path
            if proc.popen.poll() is not None:
                return None
            time.sleep(0.002)
        return None


def fan_index(path: str) -> int:
    """n of `/fan/n`, -1 for any other path."""
    head, _, n = path.rpartition("/")
    return int(n) if head == "/fan" and n.isdigit() else -1


def throughput(args: argparse.Namespace, tmp: Path, outcome: Outcome) -> None:
    """Part 1: memory vs SQLite frontier on the catalogue site, A B A B."""
    site, url = start_site(args.pages)
    try:
        ns = argparse.Namespace(
            pages=args.pages, timeout=args.timeout, budget=10 * args.timeout, extra_settings=""
        )
        bench = Bench(ns, url, tmp, time.monotonic() + 10 * args.timeout * args.rounds)
        pair = [VARIANTS["scrapekit-memory"], VARIANTS["scrapekit"]]
        for variant in pair:
            run = run_once(bench, variant, args.concurrency, 0, "warmup")
            if not run.ok:
                outcome.problems.append(f"warm-up {variant.name}: {'; '.join(run.problems)}")
                return
        for n in range(1, args.rounds + 1):
            for variant in pair:
                run = run_once(bench, variant, args.concurrency, n, f"round{n}")
                outcome.throughput.append(run)
                print(
                    f"bench: throughput round {n} {variant.name}: {run.pages_per_second:.0f} "
                    f"pages/s" + ("" if run.ok else f" (FAILED: {'; '.join(run.problems)})"),
                    flush=True,
                )
                if not run.ok:
                    outcome.problems.append(f"throughput {variant.name} round {n}")
    finally:
        stop_site(site)


def known_urls(args: argparse.Namespace, tmp: Path, outcome: Outcome) -> None:
    """Part 2: a frontier that knows 1 + F + F² URLs, memory and SQLite, peak RSS."""
    site, url = start_site(1)
    try:
        for frontier in ("memory", "sqlite"):
            name = f"known-{frontier}"
            cmd = fanout_command(
                url,
                tmp,
                name,
                args.fanout,
                f"FRONTIER={frontier}",
                f"STATE_DIR={tmp / 'state' / name}",
                f"CLOSESPIDER_PAGECOUNT={args.fanout + 1}",
            )
            ended = reap(spawn(cmd, tmp / "project", tmp / "out" / name), args.timeout)
            try:
                stats = json.loads((tmp / "out" / f"{name}.stats.json").read_text())
            except (OSError, ValueError):
                stats = {}
            outcome.known[frontier] = (ended, stats)
            seen = _frontier(stats).get("seen", 0)
            print(
                f"bench: {name}: {seen} URLs known, {stats.get('pages', 0)} pages in "
                f"{ended.wall:.1f} s, peak RSS {ended.rss / MB:.0f} MB, exit {ended.code}",
                flush=True,
            )
            if ended.code != 0 or stats.get("finish_reason") != "closespider_pagecount":
                outcome.problems.append(f"{name}: exit {ended.code}")
                print(tail(tmp / "out" / f"{name}.err"), file=sys.stderr)
    finally:
        stop_site(site)


def _frontier(stats: dict[str, object]) -> dict[str, int]:
    scheduler = stats.get("scheduler")
    frontier = scheduler.get("frontier") if isinstance(scheduler, dict) else None
    return frontier if isinstance(frontier, dict) else {}


def _resumed_pending(log: Path) -> int | None:
    """`pending` of the resumed run's first line ("resumed run N with P pending"), if any."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and str(event.get("event", "")).startswith("resumed run"):
            return int(event.get("pending", 0))
    return None


def resume(args: argparse.Namespace, tmp: Path, outcome: Outcome) -> None:
    """Part 3: fill a SQLite frontier, kill -9, then resume (and kill) `rounds` times."""
    log = tmp / "out" / "arrivals.log"
    log.touch()
    arrivals = Arrivals(log)
    site, url = start_site(1, arrivals=log)
    state = f"STATE_DIR={tmp / 'state' / 'resume'}"
    second_level = args.fanout + 1  # the first page past the first level: all F² are known
    try:
        cmd = fanout_command(url, tmp, "fill", args.fanout, "FRONTIER=sqlite", state)
        proc = spawn(cmd, tmp / "project", tmp / "out" / "fill")
        got = arrivals.wait_for(proc, lambda p: fan_index(p) >= second_level, args.timeout)
        if got is not None:
            time.sleep(args.kill_after)
        ended = reap(proc, 0, kill=True)
        arrivals.new()
        outcome.fill = (ended, arrivals.pages)
        if got is None:
            outcome.problems.append("fill: no second-level page before exit or timeout")
            print(tail(tmp / "out" / "fill.err"), file=sys.stderr)
            return
        print(
            f"bench: fill: killed after {ended.wall:.1f} s, peak RSS {ended.rss / MB:.0f} MB",
            flush=True,
        )
        for n in range(1, args.rounds + 1):
            name = f"resume{n}"
            cmd = fanout_command(url, tmp, name, args.fanout, "FRONTIER=sqlite", state)
            cmd[cmd.index("LOG_LEVEL=WARNING")] = "LOG_LEVEL=INFO"  # for "resumed run"
            proc = spawn(cmd, tmp / "project", tmp / "out" / name)
            first = arrivals.wait_for(proc, lambda p: p == "/robots.txt", args.timeout)
            page = arrivals.wait_for(proc, lambda p: fan_index(p) >= 0, args.timeout)
            before = arrivals.pages
            if page is not None:
                time.sleep(args.kill_after)
            reap(proc, 0, kill=True)
            arrivals.new()
            more = arrivals.pages - before  # pages asked for in the kill_after window
            pending = _resumed_pending(tmp / "out" / f"{name}.err")
            if first is None or page is None:
                outcome.problems.append(f"{name}: no request before exit or timeout")
                print(tail(tmp / "out" / f"{name}.err"), file=sys.stderr)
                continue
            outcome.resumes.append((first[0] - proc.spawned, page[0] - proc.spawned, pending, more))
            print(
                f"bench: {name}: {pending} pending; robots.txt after "
                f"{first[0] - proc.spawned:.2f} s, first page after "
                f"{page[0] - proc.spawned:.2f} s",
                flush=True,
            )
    finally:
        stop_site(site)


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(args: argparse.Namespace, outcome: Outcome) -> str:
    """The three tables, each with its target and whether this run met it."""
    out = []
    good = [r for r in outcome.throughput if r.ok]
    if good:
        out += [
            f"Throughput ({args.pages} pages, concurrency {args.concurrency}, whole process, "
            f"{args.rounds} rounds A B A B):",
            "",
            "| frontier | pages/s median (min-max) | CPU ms/page | peak RSS MB |",
            "|---|---:|---:|---:|",
        ]
        for variant, label in (("scrapekit-memory", "memory"), ("scrapekit", "sqlite")):
            runs = [r for r in good if r.variant == variant]
            if runs:
                rss = statistics.median(r.rss_mib for r in runs) * 1024 * 1024 / MB
                out.append(
                    f"| {label} | {median_range([r.pages_per_second for r in runs], '.0f')} | "
                    f"{statistics.median(r.cpu_ms_per_page for r in runs):.2f} | {rss:.0f} |"
                )
        memory = {r.round: r for r in good if r.variant == "scrapekit-memory"}
        ratios = [
            r.pages_per_second / memory[r.round].pages_per_second
            for r in good
            if r.variant == "scrapekit" and r.round in memory
        ]
        if ratios:
            ratio = statistics.median(ratios)
            out += [
                "",
                f"- sqlite/memory pages/s, paired by round: {median_range(ratios, '.2f')}; "
                f"target at least {TARGET_RATIO:.2f}: {_verdict(ratio >= TARGET_RATIO)}",
            ]
        out.append("")
    if outcome.known:
        known = 1 + args.fanout + args.fanout**2
        out += [
            f"A crawl that knows {known:,} URLs (fanout {args.fanout}, stopped after "
            f"{args.fanout + 1} pages):",
            "",
            "| frontier | URLs known | pending at the stop | pages | wall s | known URLs/s | "
            "CPU s | peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for frontier, (ended, stats) in outcome.known.items():
            counts = _frontier(stats)
            seen = int(counts.get("seen", 0))
            out.append(
                f"| {frontier} | {seen:,} | {int(counts.get('pending', 0)):,} | "
                f"{stats.get('pages', 0)} | {ended.wall:.1f} | {seen / ended.wall:,.0f} | "
                f"{ended.cpu:.1f} | {ended.rss / MB:.0f} |"
            )
        if "sqlite" in outcome.known:
            rss = outcome.known["sqlite"][0].rss / MB
            ok = rss < TARGET_RSS_MB
            out += [
                "",
                f"- sqlite peak RSS {rss:.0f} MB ({rss * MB / 2**20:.0f} MiB); target under "
                f"{TARGET_RSS_MB:.0f} MB: {_verdict(ok)}",
            ]
        out.append("")
    if outcome.resumes:
        firsts = [page for _, page, _, _ in outcome.resumes]
        out += [
            "Resume after kill -9 (sqlite; seconds from the resumed process's spawn):",
            "",
            "| run | pending when resumed | first request (robots.txt) s | first page s | "
            f"pages asked in the next {args.kill_after:g} s |",
            "|---:|---:|---:|---:|---:|",
        ]
        for n, (robots, page, pending, more) in enumerate(outcome.resumes, 1):
            shown = f"{pending:,}" if pending is not None else "none (a new crawl)"
            out.append(f"| {n} | {shown} | {robots:.2f} | {page:.2f} | {more} |")
        worst = max(firsts)
        if outcome.fill is not None:
            ended, pages = outcome.fill
            out += [
                "",
                f"- the first crawl was killed {ended.wall:.1f} s after its spawn, having "
                f"asked for {pages} pages (peak RSS {ended.rss / MB:.0f} MB)",
            ]
        out += [
            f"- first page after {median_range(firsts, '.2f')} s (median, min-max); target within "
            f"{TARGET_RESUME_S:.0f} s: {_verdict(worst <= TARGET_RESUME_S)} (worst run "
            f"{worst:.2f} s)",
            "",
        ]
    return "\n".join(out)


PARTS = ("throughput", "known", "resume")


def _parts(text: str) -> list[str]:
    names = list(PARTS) if text == "all" else text.split(",")
    unknown = [name for name in names if name not in PARTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part {unknown[0]!r} (known: all, {PARTS})")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--parts", type=_parts, default=list(PARTS), help="throughput,known,resume (default all)")
    add("--pages", type=int, default=2000, help="throughput: site size (default 2000)")
    add("--concurrency", type=int, default=16, help="throughput: concurrency (default 16)")
    add("--rounds", type=int, default=3, help="throughput and resume rounds (default 3)")
    add("--fanout", type=int, default=1000, help="known/resume: 1+F+F² URLs (default 1000)")
    add("--kill-after", type=float, default=0.5, help="resume: SIGKILL this long after a page")
    add("--timeout", type=float, default=300.0, help="per run, seconds (default 300)")
    add("--keep", action="store_true", help="keep the temporary folder even on success")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.rounds < 1 or args.fanout < 2 or args.concurrency < 1:
        parser.error("--pages, --rounds and --concurrency must be at least 1, --fanout 2")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    described = argparse.Namespace(
        pages=args.pages,
        concurrency=[args.concurrency],
        rounds=args.rounds,
        variants=["scrapekit-memory", "scrapekit", "fanout"],
        extra_settings="",
    )
    print(f"bench: {environment(described)}, SQLite {sqlite3.sqlite_version}", flush=True)
    if scrapekit_command() is None:
        raise SystemExit("bench: no `scrapekit` command (pip install -e .)")
    tmp = Path(tempfile.mkdtemp(prefix="scrapekit-durable-"))
    keep = args.keep
    outcome = Outcome()
    try:
        shutil.copytree(PROJECT, tmp / "project", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "out").mkdir()
        cache_bytecode(tmp / "pycache")
        print(f"bench: runs write under {tmp}", flush=True)
        for part, run in (("throughput", throughput), ("known", known_urls), ("resume", resume)):
            if part in args.parts:
                run(args, tmp, outcome)
        print()
        print(report(args, outcome))
        for problem in outcome.problems:
            print(f"bench: FAILED: {problem}", file=sys.stderr)
        keep = keep or bool(outcome.problems)
        return 1 if outcome.problems else 0
    except BaseException:
        keep = True
        raise
    finally:
        kill_live()
        if keep:
            print(f"bench: logs, items and state kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench: interrupted; sites and children stopped", file=sys.stderr)
        sys.exit(130)
