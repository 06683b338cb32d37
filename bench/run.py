"""`make bench`: whole `scrapekit crawl` processes against a bare httpx2 + selectolax loop.

1. Copy bench/project into a temporary folder, where every run's state folder, cookie jar,
   feed, stats file and logs go (never into the checkout), and start bench/site.py (N pages) as
   its own process on 127.0.0.1: one site for every run.
2. Run each variant once, uncounted, to warm disk caches, .pyc files and the site.
3. For each round, at each concurrency (8 and 16 by default), run the variants one after the
   other (bare, scrapekit, bare, scrapekit, ...) as child processes. The concurrency is bare's
   worker tasks and pool size, and scrapekit's CONCURRENCY and CONCURRENCY_PER_HOST. Each child
   is timed from spawn to exit (interpreter start-up, imports, settings, the crawl, the close),
   bounded by --timeout, and all runs together by --budget.
4. Check that each run fetched N pages and wrote N items; take CPU (user + sys) and peak RSS
   from the child's rusage (os.wait4), and the crawl-only time from the crawler's own report.
5. Print the tables: medians over the rounds, and scrapekit/bare ratios paired round by round.

Exit status 1 when any run failed, missed pages or was skipped for lack of budget; the
temporary folder is then kept (and named) for a look at the logs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from results import BASELINE, Run, describe, tables

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH / "project"


@dataclass(frozen=True)
class Variant:
    """One crawler set-up: bare.py, or `scrapekit crawl bench` with some settings."""

    name: str
    about: str
    settings: tuple[str, ...] = ()


VARIANTS = {
    v.name: v
    for v in (
        Variant(BASELINE, "bare.py: httpx2 + selectolax, asyncio.Queue, a seen-set"),
        Variant("scrapekit", "every feature on, as in bench/project/settings.toml"),
        Variant("scrapekit-memjar", "in-memory cookie jar", ("COOKIES_PERSIST=false",)),
        Variant("scrapekit-memory", "the in-memory frontier (nothing kept)", ("FRONTIER=memory",)),
        Variant(
            "scrapekit-nopolite",
            "no rate limit, robots.txt or persisted jar",
            ("RATE=0", "ROBOTSTXT_OBEY=false", "COOKIES_PERSIST=false"),
        ),
    )
}


@dataclass
class Child:
    """How a finished child process ended."""

    exit_code: int
    wall: float
    cpu: float
    rss_mib: float
    timed_out: bool


@dataclass
class Bench:
    """What every run shares: options, site URL, temporary folder and the overall deadline."""

    args: argparse.Namespace
    url: str
    tmp: Path
    deadline: float

    @property
    def project(self) -> Path:
        return self.tmp / "project"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def start_site(
    pages: int, timeout: float = 60.0, arrivals: Path | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start bench/site.py and return the process and the URL it prints first.

    With `arrivals`, the site appends each request's arrival time and path to that file.
    """
    extra = ["--arrivals", str(arrivals)] if arrivals is not None else []
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "site.py"), "--pages", str(pages), "--port", "0", *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    url = proc.stdout.readline().strip() if ready else ""
    if not url.startswith("http://127.0.0.1:"):
        stop_site(proc)
        raise SystemExit(f"bench: the site printed {url!r}, not its URL, within {timeout:.0f} s")
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


#: Where children keep compiled bytecode (set by `cache_bytecode`); None: as the environment says.
_PYCACHE: Path | None = None


def cache_bytecode(folder: Path) -> None:
    """Let every child keep its compiled modules in `folder` (PYTHONPYCACHEPREFIX), even where
    the environment says not to write bytecode (PYTHONDONTWRITEBYTECODE).

    An installed package has its .pyc files; a child that compiled every module from source
    again would time the compiler (about 0.2 s a process here), and more of it for the
    variant that imports more. The warm-up runs fill the cache; `folder` is under the
    bench's temporary folder, so the checkout stays as it was.
    """
    global _PYCACHE
    _PYCACHE = folder


def child_env() -> dict[str, str]:
    """This environment without SCRAPEKIT_* variables, which would change the settings, and
    with the bytecode cache of `cache_bytecode`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPEKIT_")}
    if _PYCACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE)
    return env


def _wait_exit(pid: int, timeout: float) -> bool:
    """Block until `pid` exits (without reaping it) or `timeout` passes; False on timeout.

    A pidfd wakes us the moment the child exits; polling would add up to a poll interval to
    every wall time. Where there is no pidfd (macOS), poll every 5 ms.
    """
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
            time.sleep(0.005)
        return False
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def run_child(cmd: list[str], cwd: Path, log: Path, timeout: float) -> Child:
    """Run `cmd` with stdout/stderr to `log`.{out,err}; time, CPU and peak RSS via os.wait4.

    The clock starts before the fork and stops when the child has exited, so the wall time is
    the whole process. Popen.wait() would discard the rusage, so the child is reaped here with
    wait4. On timeout (or Ctrl-C, or SIGTERM) the child is killed and reaped.
    """
    with open(f"{log}.out", "wb") as out, open(f"{log}.err", "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
    try:
        timed_out = not _wait_exit(proc.pid, timeout)
        wall = time.perf_counter() - started
        if timed_out:
            proc.send_signal(signal.SIGKILL)
        _, status, rusage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        os.wait4(proc.pid, 0)
        proc.returncode = -9
        raise
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


def command(
    bench: Bench, variant: Variant, concurrency: int, name: str, timeout: float
) -> tuple[list[str], Path]:
    """The command line of one run and the folder it runs in; every output goes under tmp."""
    out = bench.tmp / "out"
    if variant.name == BASELINE:
        bare = [sys.executable, str(BENCH / "bare.py"), bench.url, "--timeout", str(timeout)]
        return [
            *bare,
            "--concurrency",
            str(concurrency),
            "--output",
            f"{out / name}.jsonl",
        ], bench.tmp
    settings = [
        f"CONCURRENCY={concurrency}",
        f"CONCURRENCY_PER_HOST={concurrency}",
        f"STATE_DIR={bench.tmp / 'state' / name}",  # a first crawl, with a fresh jar
        f"STATS_FILE={out / name}.stats.json",
        "LOG_LEVEL=WARNING",
        *variant.settings,
        *shlex.split(bench.args.extra_settings),
    ]
    exe = scrapekit_command() or "scrapekit"
    cmd = [exe, "crawl", "bench", "-a", f"url={bench.url}", "-O", f"{out / name}.jsonl"]
    for setting in settings:
        cmd += ["-s", setting]
    return cmd, bench.project


def run_once(bench: Bench, variant: Variant, concurrency: int, n: int, tag: str) -> Run:
    """Run one variant as a child process and check what it did."""
    run = Run(variant.name, concurrency, n)
    timeout = min(bench.args.timeout, bench.remaining())
    if timeout < 1:
        run.problems.append(f"skipped: --budget {bench.args.budget:.0f} s used up")
        return run
    if variant.name != BASELINE and scrapekit_command() is None:
        run.problems.append("no `scrapekit` command (pip install -e .)")
        return run
    name = f"{tag}-{variant.name}-c{concurrency}"
    log = bench.tmp / "out" / name
    items, stats = Path(f"{log}.jsonl"), Path(f"{log}.stats.json")
    cmd, cwd = command(bench, variant, concurrency, name, timeout)
    child = run_child(cmd, cwd, log, timeout)
    run.wall, run.cpu, run.rss_mib = child.wall, child.cpu, child.rss_mib
    run.lines = count_lines(items)
    report: dict[str, float] = {}
    try:
        if variant.name == BASELINE:
            report = json.loads(Path(f"{log}.out").read_text().strip().splitlines()[-1])
        else:
            report = json.loads(stats.read_text())
            report["seconds"] = report.get("elapsed", 0.0)
    except (OSError, IndexError, ValueError) as exc:
        run.problems.append(f"no report ({type(exc).__name__})")
    run.pages = int(report.get("pages", 0))
    run.items = int(report.get("items", 0))
    run.crawl_seconds = float(report.get("seconds", 0.0))
    check(run, child, bench.args.pages, Path(f"{log}.err"))
    return run


def check(run: Run, child: Child, n_pages: int, log: Path) -> None:
    """Record everything that makes a run not comparable, and shout about it."""
    if child.timed_out:
        run.problems.append(f"killed after {child.wall:.1f} s (timeout)")
    elif child.exit_code != 0:
        run.problems.append(f"exit code {child.exit_code}")
    for what, got in (("pages", run.pages), ("items", run.items), ("item lines", run.lines)):
        if got != n_pages:
            run.problems.append(f"{got} {what}, expected {n_pages}")
    if run.problems:
        bar = "!" * 78
        print(
            f"\n{bar}\nWARNING: {run.variant} at concurrency {run.concurrency} did not crawl "
            f"the whole site: {'; '.join(run.problems)}\n  stderr ({log}):\n{tail(log)}\n{bar}\n",
            file=sys.stderr,
            flush=True,
        )


def environment(args: argparse.Namespace) -> str:
    """One line describing the machine and versions, to paste above the table."""
    versions = []
    for dist in ("scrapekit", "httpx2", "httpcore2", "selectolax"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return (
        f"{args.pages} pages, concurrency {'/'.join(map(str, args.concurrency))}, "
        f"{args.rounds} round(s), variants {', '.join(args.variants)}; "
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; "
        + ", ".join(versions)
        + (f"; extra settings: {args.extra_settings}" if args.extra_settings else "")
    )


def _concurrencies(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: each concurrency must be at least 1")
    return values


def _variants(text: str) -> list[str]:
    names = list(VARIANTS) if text == "all" else text.split(",")
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        known = ", ".join(VARIANTS)
        raise argparse.ArgumentTypeError(f"unknown variant {unknown[0]!r} (known: {known}, all)")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--pages", type=int, default=2000, help="site size (default 2000)")
    add("--concurrency", type=_concurrencies, default=[8, 16], help="list (default 8,16)")
    add("--rounds", type=int, default=5, help="counted runs of each variant (default 5)")
    add("--variants", type=_variants, default=["bare", "scrapekit"], help="list, or all")
    add("--warmup", type=int, default=1, help="uncounted runs of each first (default 1)")
    add("--extra-settings", default="", metavar="'K=V ...'", help="more -s for scrapekit")
    add("--timeout", type=float, default=60.0, help="per run, seconds (default 60)")
    add("--budget", type=float, default=360.0, help="all runs, seconds (default 360)")
    add("--keep", action="store_true", help="keep the temporary folder even on success")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--pages and --rounds must be at least 1, --warmup at least 0")
    for setting in shlex.split(args.extra_settings):
        if "=" not in setting:
            parser.error(f"--extra-settings: {setting!r} is not KEY=VALUE")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def measure(bench: Bench) -> list[Run]:
    """The warm-up, then the counted rounds; an empty list if the warm-up failed."""
    args = bench.args
    variants = [VARIANTS[name] for name in args.variants]
    for n in range(1, args.warmup + 1):
        for variant in variants:
            run = run_once(bench, variant, max(args.concurrency), n, f"warmup{n}")
            print(describe(run, f"warm-up {n}"), flush=True)
            if not run.ok:
                print("bench: a warm-up run failed; stopping", file=sys.stderr)
                return []
    runs = []
    for n in range(1, args.rounds + 1):
        # Concurrencies inside the round and variants inside those (A B A B ...): every run is
        # next to its pair, and drift over the bench hits every concurrency alike.
        for c in args.concurrency:
            for variant in variants:
                run = run_once(bench, variant, c, n, f"round{n}")
                runs.append(run)
                print(describe(run, f"round {n}"), flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the finally blocks stop the site and
    # kill the running child instead of leaving them orphaned.
    signal.signal(signal.SIGTERM, _terminate)
    print(f"bench: {environment(args)}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="scrapekit-bench-"))
    keep = args.keep
    try:
        # The project is copied so that nothing a run writes (state, jar, .pyc) lands in the
        # checkout; STATE_DIR, feeds and stats point into tmp as well.
        shutil.copytree(PROJECT, tmp / "project", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "out").mkdir()
        cache_bytecode(tmp / "pycache")
        site, url = start_site(args.pages)
        try:
            print(f"bench: site at {url}; runs write under {tmp}", flush=True)
            bench = Bench(args, url, tmp, time.monotonic() + args.budget)
            runs = measure(bench)
        finally:
            stop_site(site)
        ok = bool(runs) and all(r.ok for r in runs)
        keep = keep or not ok
        if runs:
            print()
            print(tables(runs))
        return 0 if ok else 1
    except BaseException:
        keep = True
        raise
    finally:
        if keep:
            print(f"bench: logs, items and state kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench: interrupted; site and running child stopped", file=sys.stderr)
        sys.exit(130)
