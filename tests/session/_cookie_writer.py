"""Child process of the two-writer test: 200 cookies of its own plus 50 writes of a shared one.

Usage: python _cookie_writer.py JAR WRITER, then write a line to its stdin to start it, so both
writers open and write the jar at the same time.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from scrapekit.session.cookiejar import Cookie
from scrapekit.session.cookiestore import SqliteCookieStore


async def main(jar: Path, writer: str) -> None:
    """Open the jar (racing the other writer to create it) and write to it."""
    async with SqliteCookieStore(jar, name="shared") as store:
        for i in range(200):
            await store.save([Cookie(f"{writer}-{i}", "own", "example.com", "/")], [])
            if i % 4 == 3:
                shared = Cookie("shared", f"{writer}-{i // 4}", "example.com", "/")
                await store.save([shared], [])


if __name__ == "__main__":
    sys.stdin.readline()
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
