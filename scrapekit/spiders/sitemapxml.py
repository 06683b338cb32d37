"""Reading sitemap files safely: XML without entities or network, gzip within the body limit.

A sitemap comes from any server, so it is parsed as hostile input: lxml (parsel's parser) with
entity substitution off (no XXE, no billion laughs), no network access, no DTD loading, and
huge_tree off (lxml's own depth and text-size limits stay on). The body is already bounded by
MAX_RESPONSE_BYTES when it arrives; a `.xml.gz` file (gzip bytes, not a Content-Encoding) is
inflated by `session.body.gunzip` in bounded steps within the same limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_GZIP_MAGIC = b"\x1f\x8b"
_TYPES = ("urlset", "sitemapindex")


@dataclass
class Sitemap:
    """A parsed sitemap: its type ("urlset" or "sitemapindex") and its entries.

    Each entry is a dict of the <url>/<sitemap> children by local name ("loc", "lastmod",
    "changefreq", "priority"...), plus "alternate": the hrefs of its
    <xhtml:link rel="alternate"> links. `errors` is lxml's complaint when the XML broke off
    and only the entries before the fault were read ("" when it was well-formed).
    """

    type: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    errors: str = ""


class MalformedSitemap(ValueError):
    """The body is not a sitemap at all (not XML, or no <urlset>/<sitemapindex> root)."""


def is_gzip(body: bytes) -> bool:
    """Whether the body is a gzip file (its magic number)."""
    return body.startswith(_GZIP_MAGIC)


_CHUNK = 1 << 20  # bytes fed to the parser at once, well under libxml2's 10 MB buffer limit


def _parser() -> Any:
    from lxml import etree  # here: lxml loads with the first sitemap, not with scrapekit

    return etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_sitemap(body: bytes) -> Sitemap:
    """The sitemap in `body`; MalformedSitemap when it is not one.

    XML that breaks off (truncated, or broken further on) keeps the entries completed
    before the fault, and `errors` says where it broke.
    """
    from lxml import etree

    parser = _parser()
    sitemap: Sitemap | None = None
    depth = 0
    errors = ""

    def take_events() -> None:
        nonlocal sitemap, depth
        for event, element in parser.read_events():
            if event == "start":
                depth += 1
                if depth == 1:
                    kind = _local(element.tag)
                    if kind not in _TYPES:
                        raise MalformedSitemap(
                            f"the root element is <{kind}>, not <urlset> or <sitemapindex>"
                        )
                    sitemap = Sitemap(kind)
                continue
            depth -= 1
            if depth == 1 and sitemap is not None:
                if (entry := _entry(element)) is not None:
                    sitemap.entries.append(entry)
                element.clear()  # the entries are kept as dicts; the tree need not grow

    # Fed in chunks, its events taken as they come: libxml2 refuses one feed over 10 MB
    # without huge_tree (a legal 50 MB sitemap would read as malformed), and the tree of
    # entries already read is cleared instead of built whole first.
    try:
        for start in range(0, len(body), _CHUNK):
            parser.feed(body[start : start + _CHUNK])
            take_events()
        parser.close()
    except etree.XMLSyntaxError as exc:
        errors = str(exc)
    take_events()
    if sitemap is None:
        raise MalformedSitemap(f"not XML ({errors or 'no root element'})")
    sitemap.errors = errors
    return sitemap


def _entry(element: Any) -> dict[str, Any] | None:
    """A <url> or <sitemap> element as a dict, or None if it has no <loc>."""
    entry: dict[str, Any] = {}
    alternate: list[str] = []
    for child in element:
        if not isinstance(child.tag, str):  # an entity reference left unresolved
            continue
        name = _local(child.tag)
        if name == "link":
            if child.get("rel") == "alternate" and (href := (child.get("href") or "").strip()):
                alternate.append(href)
        else:
            entry[name] = "".join(child.itertext()).strip()
    if not entry.get("loc"):
        return None
    entry["alternate"] = alternate
    return entry


def _local(tag: Any) -> str:
    return str(tag).rpartition("}")[2]
