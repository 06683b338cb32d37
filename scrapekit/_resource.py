"""AsyncResource: the one shape every closable part of a crawl has (anyio's AsyncResource)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncResource:
    """An async context manager whose exit is `aclose()`, so an AsyncExitStack can own it."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release what the resource holds (nothing, by default)."""
