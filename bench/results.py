"""Results of bench runs: `Run` (what one child did) and the tables printed from many runs.

Pages/s comes in two kinds: over the whole process's wall time (the headline) and over the
crawler's own clock ("crawl only"). Ratios against bare are paired round by round.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

BASELINE = "bare"
FULL = "scrapekit"  # the variant the other scrapekit-* variants are compared with


@dataclass
class Run:
    """One child process: what it reported, what the OS measured, and what went wrong."""

    variant: str
    concurrency: int
    round: int
    pages: int = 0
    items: int = 0
    lines: int = 0
    crawl_seconds: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0
    rss_mib: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def pages_per_second(self) -> float:
        """Pages over the whole process's wall time, start-up and close included."""
        return self.pages / self.wall if self.wall else 0.0

    @property
    def crawl_pages_per_second(self) -> float:
        """Pages over the crawler's own clock: start-up, imports and settings left out."""
        return self.pages / self.crawl_seconds if self.crawl_seconds else 0.0

    @property
    def outside_crawl(self) -> float:
        """Wall seconds the crawler's own clock does not see: start-up, imports, exit."""
        return self.wall - self.crawl_seconds

    @property
    def cpu_ms_per_page(self) -> float:
        """User + system CPU of the whole process per page crawled."""
        return 1000 * self.cpu / self.pages if self.pages else 0.0


def describe(run: Run, label: str) -> str:
    """One progress line for a finished run."""
    if run.wall == 0:
        return f"bench: {label} {run.variant} c={run.concurrency}: {'; '.join(run.problems)}"
    return (
        f"bench: {label} {run.variant} c={run.concurrency}: {run.pages} pages in "
        f"{run.wall:.2f} s whole process ({run.pages_per_second:.0f} pages/s; crawl only "
        f"{run.crawl_seconds:.2f} s), {run.cpu_ms_per_page:.2f} CPU ms/page, {run.rss_mib:.1f} "
        "MiB" + ("" if run.ok else "  (FAILED)")
    )


def median_range(values: list[float], fmt: str) -> str:
    """ "median (min-max)" of `values` in `fmt`; just the value for one, "n/a" for none."""
    if not values:
        return "n/a"
    median = format(statistics.median(values), fmt)
    if len(values) == 1:
        return median
    return f"{median} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def _ratios(runs: list[Run], bare: list[Run], measure: Callable[[Run], float]) -> list[float]:
    """measure(run) / measure(`bare` run of the same round), for rounds where both were good.

    Pairing the runs that went right after one another cancels drift in the machine's speed
    (a shared or throttled CPU) that a ratio of two medians would keep.
    """
    by_round = {b.round: b for b in bare if b.ok}
    pairs = [(r, by_round[r.round]) for r in runs if r.ok and r.round in by_round]
    return [measure(r) / measure(b) for r, b in pairs if measure(b)]


def _rows(runs: list[Run], columns: Iterable[tuple[str, Callable[[list[Run]], str]]]) -> list[str]:
    """Markdown rows, one per (concurrency, variant), of `columns` computed on the good runs."""
    columns = list(columns)
    rows = [
        "| conc | variant | " + " | ".join(title for title, _ in columns) + " |",
        "|---:|---|" + "---:|" * len(columns),
    ]
    for c in sorted({r.concurrency for r in runs}):
        for variant in dict.fromkeys(r.variant for r in runs if r.concurrency == c):
            group = [r for r in runs if r.concurrency == c and r.variant == variant]
            good = [r for r in group if r.ok]
            bad = len(group) - len(good)
            flag = f" ⚠ {bad}/{len(group)} runs failed or skipped, not counted" if bad else ""
            cells = [fn(good) if good else "-" for _, fn in columns]
            rows.append(f"| {c} | {variant}{flag} | " + " | ".join(cells) + " |")
    return rows


def tables(runs: list[Run]) -> str:
    """The whole-process table, the crawl-only table and one line of ratios per concurrency.

    A run that failed or missed pages is left out of the numbers (and flagged), so a broken
    run can never pass for a fast one.
    """

    def baseline(group: list[Run]) -> list[Run]:
        c = group[0].concurrency
        return [r for r in runs if r.variant == BASELINE and r.concurrency == c]

    def ratio(measure: Callable[[Run], float]) -> Callable[[list[Run]], str]:
        def cell(group: list[Run]) -> str:
            if group[0].variant == BASELINE:
                return "1.00"
            return median_range(_ratios(group, baseline(group), measure), ".2f")

        return cell

    def median(measure: Callable[[Run], float], fmt: str) -> Callable[[list[Run]], str]:
        return lambda group: format(statistics.median(measure(r) for r in group), fmt)

    def spread(measure: Callable[[Run], float], fmt: str) -> Callable[[list[Run]], str]:
        return lambda group: median_range([measure(r) for r in group], fmt)

    whole = _rows(
        runs,
        [
            ("runs", lambda group: str(len(group))),
            ("pages/s median (min-max)", spread(lambda r: r.pages_per_second, ".0f")),
            ("wall s", median(lambda r: r.wall, ".2f")),
            ("CPU ms/page", median(lambda r: r.cpu_ms_per_page, ".2f")),
            ("peak RSS MiB", median(lambda r: r.rss_mib, ".1f")),
            ("pages/s vs bare", ratio(lambda r: r.pages_per_second)),
            ("CPU/page vs bare", ratio(lambda r: r.cpu_ms_per_page)),
            ("RSS vs bare", ratio(lambda r: r.rss_mib)),
        ],
    )
    crawl_only = _rows(
        runs,
        [
            (
                "crawl-only pages/s median (min-max)",
                spread(lambda r: r.crawl_pages_per_second, ".0f"),
            ),
            ("crawl s", median(lambda r: r.crawl_seconds, ".2f")),
            ("outside the crawl s", median(lambda r: r.outside_crawl, ".2f")),
            ("crawl-only pages/s vs bare", ratio(lambda r: r.crawl_pages_per_second)),
        ],
    )
    summary = []
    for c in sorted({r.concurrency for r in runs}):
        bare = [r for r in runs if r.variant == BASELINE and r.concurrency == c]
        for variant in dict.fromkeys(r.variant for r in runs if r.variant != BASELINE):
            group = [r for r in runs if r.variant == variant and r.concurrency == c]
            whole_ratios = _ratios(group, bare, lambda r: r.pages_per_second)
            crawl_ratios = _ratios(group, bare, lambda r: r.crawl_pages_per_second)
            if whole_ratios and crawl_ratios:
                summary.append(
                    f"- concurrency {c}: {variant} runs at "
                    f"{statistics.median(whole_ratios):.2f} of bare's pages/s, whole process "
                    f"(crawl only: {statistics.median(crawl_ratios):.2f})"
                )
        # A feature variant against plain scrapekit (e.g. the SQLite frontier against the
        # memory one): the figure that says what the feature costs.
        plain = [r for r in runs if r.variant == FULL and r.concurrency == c]
        for variant in dict.fromkeys(r.variant for r in runs if r.variant.startswith(FULL + "-")):
            group = [r for r in runs if r.variant == variant and r.concurrency == c]
            if ratios := _ratios(group, plain, lambda r: r.pages_per_second):
                summary.append(
                    f"- concurrency {c}: {variant} runs at {median_range(ratios, '.2f')} of "
                    f"{FULL}'s pages/s, whole process, paired by round"
                )
    return "\n".join(
        [
            "Whole process (spawn to exit: start-up, imports, settings, crawl, close):",
            "",
            *whole,
            "",
            "Crawl only (each crawler's own clock; start-up, imports and exit left out):",
            "",
            *crawl_only,
            "",
            *summary,
        ]
    )
