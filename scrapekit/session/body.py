"""Reading a response body safely: every content coding undone in bounded steps, cut off at a limit.

A tiny body can claim a chain of codings (`gzip, gzip`, `gzip, deflate`...), each of which
multiplies its size by up to ~1000: a few KB of a double gzip is a gigabyte of zeros. So the
body is decoded here from the raw stream, not by httpx2: the codings are undone in reverse order
of the header (the last one applied first), and every layer is pulled in bounded steps (zlib's
`max_length` / `unconsumed_tail`), lazily, so no layer produces more than one step before the
next one has consumed it. The decoded body stops one step past MAX_RESPONSE_BYTES, and each
inner layer is capped near it too, so neither memory nor CPU grows with the compression ratio.
Only gzip (x-gzip) and deflate (with or without its zlib header) are decoded; `identity` is
skipped; any other coding (br and zstd included: scrapekit does not ask for them) is refused
with a DecodingError naming it. ACCEPT_ENCODING is what the client advertises, to match.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator, Sequence

import httpx2

from scrapekit.exceptions import DecodingError, ResponseTooLarge
from scrapekit.request import Request

#: The codings decoded here, in the order the client advertises them in Accept-Encoding.
ACCEPT_ENCODING = "gzip, deflate"
#: Longest coding chain accepted (urllib3 and httpx2 stop at five too); real servers use one.
MAX_CODINGS = 5

_CHUNK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


class _Inflater:
    """One zlib layer (gzip, or deflate with or without its zlib header), inflated in steps."""

    def __init__(self, coding: str, url: str) -> None:
        self.coding = coding
        self._url = url
        self._gzip = coding in ("gzip", "x-gzip")
        self._obj = zlib.decompressobj(31) if self._gzip else None
        self._head = b""  # deflate: the first byte, until two tell which framing it is
        self._ended = False

    def inflate(self, data: bytes, step: int) -> Iterator[bytes]:
        """Inflate `data`, yielding pieces of at most `step` bytes, one at a time."""
        obj = self._obj
        if obj is None:  # deflate whose framing is not known yet
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return
            obj = self._obj = zlib.decompressobj(15 if _zlib_header(data) else -15)
        try:
            while data and not self._ended:
                out = obj.decompress(data, step)
                data = obj.unconsumed_tail
                if out:
                    yield out
                if obj.eof:
                    # An ended stream keeps what follows in unused_data, across calls.
                    rest = obj.unused_data
                    if self._gzip and len(rest) < 2 and _GZIP_MAGIC.startswith(rest):
                        return  # maybe the next gzip member: wait for its first bytes
                    if not (self._gzip and rest.startswith(_GZIP_MAGIC)):
                        self._ended = True  # bytes after the stream are ignored, as browsers do
                        return
                    obj = self._obj = zlib.decompressobj(31)  # the next gzip member
                    data = rest
            # Output zlib still holds for input it has already consumed.
            while not obj.eof and (out := obj.decompress(b"", step)):
                yield out
        except zlib.error as exc:
            raise DecodingError(
                f"{self._url}: the {self.coding} layer of the body is corrupt ({exc})"
            ) from exc


class _Refused:
    """A coding scrapekit does not decode: refused as soon as the body has a byte."""

    def __init__(self, coding: str, url: str) -> None:
        self.coding = coding
        self._url = url

    def inflate(self, data: bytes, step: int) -> Iterator[bytes]:
        if data:
            hint = "it was not asked for" if self.coding in ("br", "zstd") else "unknown coding"
            raise DecodingError(
                f"{self._url}: Content-Encoding {self.coding!r} is not supported ({hint}; "
                f"scrapekit decodes {ACCEPT_ENCODING}: remove other codings from the "
                "Accept-Encoding header if a spider or DEFAULT_REQUEST_HEADERS sets it)"
            )
        yield from ()


def content_codings(headers: httpx2.Headers) -> list[str]:
    """The codings applied to the body, in the order they were applied, without identity."""
    values = headers.get_list("content-encoding", split_commas=True)
    codings = [value.strip().lower() for value in values]
    return [coding for coding in codings if coding and coding != "identity"]


async def read_body(
    response: httpx2.Response, request: Request, limit: int, *, truncate: bool = False
) -> bytes:
    """The decoded body; ResponseTooLarge once it passes `limit` bytes (0: no limit).

    With `truncate`, the body is cut at `limit` instead (what robots.txt readers do with a
    file too large to read whole): reading stops there and the first `limit` bytes are kept.
    """
    declared = response.headers.get("content-length")
    if limit and not truncate and declared and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(
            f"{request.url}: Content-Length {declared} is over MAX_RESPONSE_BYTES={limit}",
            request=request,
        )
    codings = content_codings(response.headers)
    if len(codings) > MAX_CODINGS:
        raise DecodingError(
            f"{request.url}: {len(codings)} content codings ({', '.join(codings)}); "
            f"at most {MAX_CODINGS} are decoded",
            request=request,
        )
    chunks = _decoded(response, codings, request.url, limit) if codings else response.aiter_raw()
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if limit and size > limit:
                if truncate:
                    parts.append(chunk[: len(chunk) - (size - limit)])
                    break
                raise ResponseTooLarge(
                    f"{request.url}: body passed MAX_RESPONSE_BYTES={limit} (cut off while "
                    "reading; raise MAX_RESPONSE_BYTES to accept it)",
                    request=request,
                )
            parts.append(chunk)
    except ResponseTooLarge as exc:
        if truncate:  # an inner layer passed its cap: keep what was decoded by then
            return b"".join(parts)
        exc.request = request  # raised deep in the decoding chain, which has no request
        raise
    except DecodingError as exc:
        exc.request = request
        raise
    return b"".join(parts)


async def _decoded(
    response: httpx2.Response, codings: Sequence[str], url: str, limit: int
) -> AsyncIterator[bytes]:
    """The raw stream with every coding undone, last applied first, each in bounded steps."""
    layers = [
        _Inflater(coding, url) if coding in ("gzip", "x-gzip", "deflate") else _Refused(coding, url)
        for coding in reversed(codings)
    ]
    # zlib's max_length 0 means "no limit": the last layer asks for one byte past the limit,
    # so the reader sees the overflow, and never more than one chunk at a time.
    last_step = min(limit + 1, _CHUNK) if limit else _CHUNK
    # An inner layer is the compressed form of the body, so it is no larger than the body
    # plus the framing; past that it is a bomb made of empty blocks, which burns CPU only.
    cap = limit + limit // 64 + _CHUNK if limit else 0
    made = [0] * len(layers)

    def push(index: int, data: bytes) -> Iterator[bytes]:
        if index == len(layers):
            yield data
            return
        layer = layers[index]
        step = last_step if index == len(layers) - 1 else _CHUNK
        for out in layer.inflate(data, step):
            if cap and index < len(layers) - 1:
                made[index] += len(out)
                if made[index] > cap:
                    raise ResponseTooLarge(
                        f"{url}: the {layer.coding} layer of the body passed "
                        f"MAX_RESPONSE_BYTES={limit} (a compression bomb?)"
                    )
            yield from push(index + 1, out)

    async for raw in response.aiter_raw():
        for out in push(0, raw):
            yield out


def _zlib_header(data: bytes) -> bool:
    """Whether `data` opens with a zlib header (RFC 1950), rather than raw deflate."""
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0


def gunzip(data: bytes, limit: int, url: str) -> bytes:
    """A gzip file's content (a `.xml.gz` sitemap, not a Content-Encoding), inflated in the
    same bounded steps as a body; ResponseTooLarge once it passes `limit` bytes (0: none)."""
    inflater = _Inflater("gzip", url)
    step = min(limit + 1, _CHUNK) if limit else _CHUNK
    parts: list[bytes] = []
    size = 0
    for out in inflater.inflate(data, step):
        size += len(out)
        if limit and size > limit:
            raise ResponseTooLarge(
                f"{url}: the gzip file passed MAX_RESPONSE_BYTES={limit} once decompressed "
                "(raise MAX_RESPONSE_BYTES to accept it)"
            )
        parts.append(out)
    if not parts and not (inflater._obj is not None and inflater._obj.eof):
        raise DecodingError(f"{url}: the gzip file is corrupt or truncated (nothing inflated)")
    return b"".join(parts)
