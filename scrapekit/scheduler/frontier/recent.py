"""Fingerprints a durable frontier knows to be seen, the recent ones only, in bounded memory.

A page links mostly to pages already queued (a crawl of a site drops 14 of 15 links as
duplicates). A durable frontier keeps the seen fingerprints in its file, so without a memory
of them each duplicate would be encoded for storage and sent to the file only to be dropped
there. Two generations of a set make a cheap bounded memory of the recent ones: when the
young one fills up it becomes the old one, and the old one is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Fingerprints remembered, about (16-byte digests: some 100 bytes each with the set).
LIMIT = 65_536


class RecentlySeen:
    """A bounded set of fingerprints: what is in it was seen; what is not may have been."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._half = max(limit // 2, 1)
        self._young: set[bytes] = set()
        self._old: set[bytes] = set()

    def __contains__(self, fingerprint: bytes) -> bool:
        return fingerprint in self._young or fingerprint in self._old

    def add(self, fingerprints: Iterable[bytes | None]) -> None:
        """Remember these as seen (None, a request that skips the check, is passed over)."""
        young = self._young
        for fingerprint in fingerprints:
            if fingerprint is not None:
                young.add(fingerprint)
        if len(young) >= self._half:
            self._old, self._young = young, set()
