"""Reading a response body safely: decompressed in bounded steps and cut off at a limit.

httpx2 inflates each network chunk whole, so one 64 KiB chunk of a gzip bomb becomes ~64 MiB
before anyone can look at it. For gzip and deflate, the body is therefore inflated here from
the raw stream with zlib's `max_length`, so memory never passes MAX_RESPONSE_BYTES (plus one
chunk) however small the compressed body is. Other encodings (br, zstd, when their packages
are installed) go through httpx2's decoders and are checked after each chunk.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import httpx2

from scrapekit.exceptions import DecodingError, ResponseTooLarge
from scrapekit.request import Request

_CHUNK = 1 << 16


class _Inflater:
    """A zlib stream (gzip, or deflate with or without its zlib header) inflated in steps."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._obj = zlib.decompressobj(31 if self._gzip else 15)
        self._started = False

    def feed(self, data: bytes, room: int) -> tuple[bytes, bytes]:
        """Inflate at most `room` bytes; return them and the input still to be inflated."""
        try:
            out = self._obj.decompress(data, room)
        except zlib.error:
            if self._gzip or self._started:
                raise
            # Some servers send raw deflate without the zlib header.
            self._obj = zlib.decompressobj(-15)
            out = self._obj.decompress(data, room)
        self._started = True
        return out, self._obj.unconsumed_tail


async def read_body(response: httpx2.Response, request: Request, limit: int) -> bytes:
    """The decoded body; ResponseTooLarge once it passes `limit` bytes (0: no limit)."""
    declared = response.headers.get("content-length")
    if limit and declared and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(
            f"{request.url}: Content-Length {declared} is over MAX_RESPONSE_BYTES={limit}",
            request=request,
        )
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        chunks = _inflated(response, request, encoding, limit)
    else:
        chunks = response.aiter_bytes()
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if limit and size > limit:
            raise ResponseTooLarge(
                f"{request.url}: body passed MAX_RESPONSE_BYTES={limit} (cut off while "
                "reading; raise MAX_RESPONSE_BYTES to accept it)",
                request=request,
            )
        parts.append(chunk)
    return b"".join(parts)


async def _inflated(
    response: httpx2.Response, request: Request, encoding: str, limit: int
) -> AsyncIterator[bytes]:
    inflater = _Inflater(encoding)
    # zlib's max_length 0 means "no limit": ask for one byte past the limit, so the caller
    # sees the overflow, and never more than one chunk at a time.
    step = min(limit + 1, _CHUNK) if limit else _CHUNK
    try:
        async for raw in response.aiter_raw():
            data = raw
            while data:
                out, data = inflater.feed(data, step)
                if out:
                    yield out
    except zlib.error as exc:
        raise DecodingError(
            f"{request.url}: the {encoding} body is corrupt ({exc})", request=request
        ) from exc
