"""`make bench`: bare httpx2 + selectolax against `scrapekit crawl`, same site, same run.

1. Start bench/site.py (N pages) as its own process on 127.0.0.1 and read its URL.
2. For each round, run bench/bare.py and `scrapekit crawl bench` (from bench/project) as child
   processes, alternating which goes first, each bounded by --timeout.
3. Take pages/s from each child's own report (bare's JSON line, scrapekit's STATS_FILE), CPU
   time and peak RSS from the child's rusage (os.wait4), and check that each crawled N pages
   and wrote N items.
4. Print a markdown table (medians over rounds) and stop the site, also on Ctrl-C or error.

Outputs (items, stats, logs) go to bench/.out/, which git ignores. Exit status 1 when any run
failed or did not crawl the whole site.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH / "project"
OUT = BENCH / ".out"
VARIANTS = ("bare", "scrapekit")


@dataclass
class Round:
    """One child run: what it reported, what the OS measured, and what went wrong."""

    variant: str
    pages: int = 0
    items: int = 0
    lines: int = 0
    pages_per_second: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0
    rss_mib: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def cpu_ms_per_page(self) -> float:
        """User + system CPU of the whole process (start-up included) per page crawled."""
        return 1000 * self.cpu / self.pages if self.pages else 0.0


@dataclass
class Child:
    """How a finished child process ended."""

    exit_code: int
    wall: float
    cpu: float
    rss_mib: float
    timed_out: bool


def start_site(pages: int, timeout: float = 60.0) -> tuple[subprocess.Popen[str], str]:
    """Start bench/site.py and return the process and the URL it prints first."""
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "site.py"), "--pages", str(pages), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            stop_site(proc)
            raise SystemExit(f"bench: the site did not print its URL within {timeout:.0f} s")
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        stop_site(proc)
        raise SystemExit(f"bench: the site printed {url!r} instead of its URL")
    return proc, url


def stop_site(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the site, then SIGKILL it if it has not exited within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_child(cmd: list[str], cwd: Path, log: Path, timeout: float) -> Child:
    """Run `cmd` with stdout/stderr to `log`.{out,err}; wall time and peak RSS via os.wait4.

    Popen.wait() would discard the rusage, so the child is reaped here with wait4, polled with
    WNOHANG so that `timeout` bounds it. On timeout (or Ctrl-C) the child is killed and reaped.
    """
    with open(f"{log}.out", "wb") as out, open(f"{log}.err", "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err)
    timed_out = False
    try:
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                timed_out = True
                proc.send_signal(signal.SIGKILL)
                _, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
    except BaseException:
        proc.kill()
        os.wait4(proc.pid, 0)
        proc.returncode = -9
        raise
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it was reaped
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    cpu = rusage.ru_utime + rusage.ru_stime
    return Child(proc.returncode, wall, cpu, rusage.ru_maxrss / scale, timed_out)


def count_lines(path: Path) -> int:
    """Lines in an items file (0 if it does not exist)."""
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, indented, for a failure report."""
    try:
        text = path.read_text(errors="replace").rstrip().splitlines()[-lines:]
    except FileNotFoundError:
        return "    (no log)"
    return "\n".join(f"    {line}" for line in text) or "    (empty)"


def scrapekit_command() -> str | None:
    """The `scrapekit` console script of this interpreter's environment, or one on PATH."""
    beside = Path(sys.executable).parent / "scrapekit"
    return str(beside) if beside.exists() else shutil.which("scrapekit")


def run_bare(url: str, n: int, args: argparse.Namespace) -> Round:
    items = OUT / f"bare-{n}.jsonl"
    items.unlink(missing_ok=True)  # a stale file must not pass for this run's output
    cmd = [
        sys.executable,
        str(BENCH / "bare.py"),
        url,
        "--concurrency",
        str(args.concurrency),
        "--output",
        str(items),
        "--timeout",
        str(args.timeout),
    ]
    child = run_child(cmd, BENCH, OUT / f"bare-{n}", args.timeout + 30)
    result = Round(
        "bare", wall=child.wall, cpu=child.cpu, rss_mib=child.rss_mib, lines=count_lines(items)
    )
    report: dict[str, float] = {}
    try:
        report = json.loads((OUT / f"bare-{n}.out").read_text().strip().splitlines()[-1])
    except (IndexError, ValueError):
        result.problems.append("no JSON report on stdout")
    result.pages = int(report.get("pages", 0))
    result.items = int(report.get("items", 0))
    result.pages_per_second = float(report.get("pages_per_second", 0.0))
    check(result, child, n_pages=args.pages, log=OUT / f"bare-{n}.err")
    return result


def run_scrapekit(url: str, n: int, args: argparse.Namespace) -> Round:
    items, stats = OUT / f"scrapekit-{n}.jsonl", OUT / f"scrapekit-{n}.stats.json"
    items.unlink(missing_ok=True)  # stale files must not pass for this run's output
    stats.unlink(missing_ok=True)
    exe = scrapekit_command()
    if exe is None:
        return Round("scrapekit", problems=["no `scrapekit` command (pip install -e .)"])
    cmd = [
        exe,
        "crawl",
        "bench",
        "-a",
        f"url={url}",
        "-O",
        str(items),
        "-s",
        f"CONCURRENCY={args.concurrency}",
        "-s",
        "LOG_LEVEL=WARNING",
        "-s",
        f"STATS_FILE={stats}",
    ]
    for setting in shlex.split(args.extra_settings):
        cmd += ["-s", setting]
    child = run_child(cmd, PROJECT, OUT / f"scrapekit-{n}", args.timeout)
    result = Round(
        "scrapekit", wall=child.wall, cpu=child.cpu, rss_mib=child.rss_mib, lines=count_lines(items)
    )
    report: dict[str, float] = {}
    try:
        report = json.loads(stats.read_text())
    except (OSError, ValueError) as exc:
        result.problems.append(f"no STATS_FILE ({type(exc).__name__})")
    result.pages = int(report.get("pages", 0))
    result.items = int(report.get("items", 0))
    result.pages_per_second = float(report.get("pages_per_second", 0.0))
    check(result, child, n_pages=args.pages, log=OUT / f"scrapekit-{n}.err")
    return result


def check(result: Round, child: Child, n_pages: int, log: Path) -> None:
    """Record everything that makes a round not comparable, and shout about it."""
    if child.timed_out:
        result.problems.append(f"killed after {child.wall:.0f} s (timeout)")
    elif child.exit_code != 0:
        result.problems.append(f"exit code {child.exit_code}")
    if result.pages != n_pages:
        result.problems.append(f"reported {result.pages} pages, expected {n_pages}")
    if result.items != n_pages:
        result.problems.append(f"reported {result.items} items, expected {n_pages}")
    if result.lines != n_pages:
        result.problems.append(f"items file has {result.lines} lines, expected {n_pages}")
    if result.problems:
        bar = "!" * 78
        print(
            f"\n{bar}\nWARNING: {result.variant} did not crawl the whole site: "
            + "; ".join(result.problems)
            + f"\n  stderr ({log}):\n{tail(log)}\n{bar}\n",
            file=sys.stderr,
            flush=True,
        )


def _median_range(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    median = format(statistics.median(values), fmt)
    if len(values) == 1:
        return median
    return f"{median} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def table(rounds: dict[str, list[Round]]) -> str:
    """The results as a markdown table: medians over the rounds that crawled the whole site.

    A round that failed or missed pages is left out of the numbers (and flagged), so a broken
    run can never pass for a fast one. Ratios are paired: scrapekit's round n over bare's round
    n, which ran right before or after it, so drift in the machine's speed over the run (a
    shared or throttled CPU) cancels out; the median of those per-round ratios is shown.
    """
    rows = [
        "| variant | pages | items | pages/s median (min-max) | wall s | CPU ms/page "
        "| peak RSS MiB | pages/s vs bare | CPU/page vs bare | RSS vs bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    bare = rounds.get("bare", [])
    for variant, results in rounds.items():
        good = [r for r in results if r.ok]
        if not good:
            rows.append(f"| {variant} ⚠ all {len(results)} rounds failed |" + " - |" * 9)
            continue
        failed = len(results) - len(good)
        flag = f" ⚠ {failed}/{len(results)} rounds failed, not counted" if failed else ""
        pairs = [(r, b) for r, b in zip(results, bare, strict=False) if r.ok and b.ok]
        if variant == "bare":
            ratios = ["1.00", "1.00", "1.00"]
        else:
            ratios = [
                _median_range([r.pages_per_second / b.pages_per_second for r, b in pairs], ".2f"),
                _median_range([r.cpu_ms_per_page / b.cpu_ms_per_page for r, b in pairs], ".2f"),
                _median_range([r.rss_mib / b.rss_mib for r, b in pairs], ".2f"),
            ]
        rows.append(
            f"| {variant}{flag} | {'/'.join(sorted({str(r.pages) for r in good}))} "
            f"| {'/'.join(sorted({str(r.items) for r in good}))} "
            f"| {_median_range([r.pages_per_second for r in good], '.0f')} "
            f"| {statistics.median(r.wall for r in good):.2f} "
            f"| {statistics.median(r.cpu_ms_per_page for r in good):.2f} "
            f"| {statistics.median(r.rss_mib for r in good):.1f} | " + " | ".join(ratios) + " |"
        )
    return "\n".join(rows)


def environment(args: argparse.Namespace) -> str:
    """One line describing the machine and versions, to paste above the table."""
    versions = []
    for dist in ("scrapekit", "httpx2", "httpcore2", "selectolax"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return (
        f"{args.pages} pages, concurrency {args.concurrency}, {args.rounds} round(s); "
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; "
        + ", ".join(versions)
        + (f"; extra settings: {args.extra_settings}" if args.extra_settings else "")
    )


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000, help="site size (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="for both (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--only", choices=VARIANTS, help="run one variant")
    parser.add_argument(
        "--extra-settings",
        default="",
        metavar="'K=V ...'",
        help="more -s settings for scrapekit, e.g. 'RATE=1000 LOG_LEVEL=INFO'",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per run, seconds")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--pages, --concurrency and --rounds must be at least 1")
    for setting in shlex.split(args.extra_settings):
        if "=" not in setting:
            parser.error(f"--extra-settings: {setting!r} is not KEY=VALUE")

    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the finally blocks stop the site and
    # kill the running child instead of leaving them orphaned.
    signal.signal(signal.SIGTERM, _terminate)
    variants = [args.only] if args.only else list(VARIANTS)
    runners = {"bare": run_bare, "scrapekit": run_scrapekit}
    rounds: dict[str, list[Round]] = {v: [] for v in VARIANTS if v in variants}
    OUT.mkdir(exist_ok=True)
    print(f"bench: {environment(args)}", flush=True)
    site, url = start_site(args.pages)
    try:
        print(f"bench: site at {url}", flush=True)
        for n in range(1, args.rounds + 1):
            # Alternate who goes first, so neither always runs on a warmer machine.
            order = variants if n % 2 else variants[::-1]
            for variant in order:
                result = runners[variant](url, n, args)
                rounds[variant].append(result)
                print(
                    f"bench: round {n} {variant}: {result.pages} pages, {result.items} items, "
                    f"{result.pages_per_second:.0f} pages/s, {result.wall:.2f} s wall, "
                    f"{result.cpu_ms_per_page:.2f} CPU ms/page, "
                    f"{result.rss_mib:.1f} MiB" + ("" if result.ok else "  (FAILED)"),
                    flush=True,
                )
    finally:
        stop_site(site)
    print()
    print(table(rounds))
    return 0 if all(r.ok for results in rounds.values() for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench: interrupted; site and running child stopped", file=sys.stderr)
        sys.exit(130)
