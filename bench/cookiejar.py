"""Cookie jar costs as the jar grows: what must stay O(1) or O(changes), not O(jar).

    .venv/bin/python bench/cookiejar.py

Prints, for jars of 1k and 100k cookies, the time of one `header_for` (the per-request cost),
a `drain_changes` after one change, and a `purge_expired` with nothing expired (both run by
the write-behind flusher every COOKIES_FLUSH_SECONDS), and the ratio big/small.
"""

from __future__ import annotations

import time

from scrapekit.session.cookiejar import Cookie, CookieJar

NOW = time.time()


def build(size: int) -> CookieJar:
    """A jar with `size` cookies over many sites, plus two for www.example.com."""
    jar = CookieJar()
    jar.extract("http://www.example.com/", ["a=1", "b=2; Domain=example.com"])
    for i in range(size):
        jar.add(Cookie(f"c{i}", "v", f"d{i % 5000}.example", "/", expires=NOW + 3600 + i))
    jar.drain_changes()
    return jar


def per_call(fn: object, repeat: int) -> float:
    """Best-of-5 seconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def main() -> None:
    """Print the table."""
    rows = []
    for size in (1_000, 100_000):
        jar = build(size)

        def drain(jar: CookieJar = jar) -> None:
            jar.set("x", "1", domain="d1.example")
            jar.drain_changes()

        rows.append((
            size,
            per_call(lambda jar=jar: jar.header_for("http://www.example.com/p"), 2000),
            per_call(drain, 200),
            per_call(jar.purge_expired, 200),
        ))  # fmt: skip
    print("| jar size | header_for µs | drain after 1 change µs | purge (none expired) µs |")
    print("|---:|---:|---:|---:|")
    for size, header, drain_cost, purge in rows:
        print(f"| {size:,} | {header * 1e6:.2f} | {drain_cost * 1e6:.2f} | {purge * 1e6:.2f} |")
    small, big = rows
    ratios = " | ".join(f"{b / s:.1f}x" for s, b in zip(small[1:], big[1:], strict=True))
    print(f"| ratio 100k/1k | {ratios} |")


if __name__ == "__main__":
    main()
