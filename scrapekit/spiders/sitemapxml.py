"""Reading sitemap files safely: XML without entities or network, gzip within the body limit.

A sitemap comes from any server, so it is parsed as hostile input: lxml (parsel's parser) with
entity substitution off (no XXE, no billion laughs), no network access, no DTD loading, and
huge_tree off (lxml's own depth and text-size limits stay on). The body is already bounded by
MAX_RESPONSE_BYTES when it arrives; a `.xml.gz` file (gzip bytes, not a Content-Encoding) is
inflated by `session.body.gunzip` in bounded steps within the same limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

_GZIP_MAGIC = b"\x1f\x8b"
_TYPES = ("urlset", "sitemapindex")


@dataclass
class Sitemap:
    """A parsed sitemap: its type ("urlset" or "sitemapindex") and its entries.

    Each entry is a dict of the <url>/<sitemap> children by local name ("loc", "lastmod",
    "changefreq", "priority"...), plus "alternate": the hrefs of its
    <xhtml:link rel="alternate"> links. `errors` is lxml's first complaint when the XML was
    broken and only partly read ("" when it was well-formed).
    """

    type: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    errors: str = ""


class MalformedSitemap(ValueError):
    """The body is not a sitemap at all (not XML, or no <urlset>/<sitemapindex> root)."""


def is_gzip(body: bytes) -> bool:
    """Whether the body is a gzip file (its magic number)."""
    return body.startswith(_GZIP_MAGIC)


def _parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        recover=True,  # a truncated or sloppy sitemap still gives the entries before the fault
        remove_comments=True,
        remove_pis=True,
    )


def parse_sitemap(body: bytes) -> Sitemap:
    """The sitemap in `body`; MalformedSitemap when it is not one."""
    parser = _parser()
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise MalformedSitemap(f"not XML ({exc})") from None
    errors = _first_error(parser)
    if root is None:
        raise MalformedSitemap(f"not XML ({errors or 'empty document'})")
    kind = _local(root.tag)
    if kind not in _TYPES:
        raise MalformedSitemap(f"the root element is <{kind}>, not <urlset> or <sitemapindex>")
    return Sitemap(kind, list(_entries(root)), errors)


def _entries(root: Any) -> Iterator[dict[str, Any]]:
    for element in root:
        if not isinstance(element.tag, str):  # an entity reference left unresolved
            continue
        entry: dict[str, Any] = {}
        alternate: list[str] = []
        for child in element:
            if not isinstance(child.tag, str):
                continue
            name = _local(child.tag)
            if name == "link":
                if child.get("rel") == "alternate" and (href := (child.get("href") or "").strip()):
                    alternate.append(href)
            else:
                entry[name] = "".join(child.itertext()).strip()
        if entry.get("loc"):
            entry["alternate"] = alternate
            yield entry


def _local(tag: Any) -> str:
    return str(tag).rpartition("}")[2]


def _first_error(parser: Any) -> str:
    for entry in parser.error_log:
        if entry.level >= etree.ErrorLevels.ERROR:
            return f"line {entry.line}: {entry.message}"
    return ""
