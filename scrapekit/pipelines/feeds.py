"""FeedPipeline: writes the items that survive the user pipelines to a file (FEEDS, `-o`/`-O`).

The pipeline manager builds one per FEEDS entry, after the PIPELINES stages, and reads
FEED_EXPORT_FIELDS for the fields. The format comes from the entry or the file extension;
`overwrite` truncates the file (`-O`), otherwise items are appended and the file stays valid.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from scrapekit._types import ItemLike
from scrapekit.items import to_dict
from scrapekit.pipelines.exporters import Exporter, exporter_for, feed_format

log = structlog.get_logger(__name__)


class FeedPipeline:
    """Exports every item it sees to one file, streaming; the file is complete after close().

    Raises `ComponentError` at construction for an unknown format or extension, and
    `PipelineError` at open when appending to a file that cannot be continued.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool,
        format: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.format = feed_format(self.path, format)
        self.fields = list(fields) if fields else None
        self._exporter: Exporter | None = None

    def __repr__(self) -> str:
        mode = "overwrite" if self.overwrite else "append"
        return f"FeedPipeline({os.fspath(self.path)!r}, format={self.format!r}, {mode})"

    def open(self, spider: Any) -> None:
        """Open (and create) the file; an append checks that the existing file can be continued."""
        self._exporter = exporter_for(
            self.path, self.format, overwrite=self.overwrite, fields=self.fields
        )
        log.debug(
            "feed opened", path=os.fspath(self.path), format=self.format, overwrite=self.overwrite
        )

    def process_item(self, item: ItemLike, spider: Any) -> ItemLike:
        """Write the item as one record and pass it on unchanged."""
        if self._exporter is None:
            raise RuntimeError(f"{self!r} got an item before open() or after close()")
        self._exporter.write(to_dict(item))
        return item

    def close(self, spider: Any) -> None:
        """Finish the file (JSON's closing bracket), flush and fsync it; safe to call twice."""
        exporter, self._exporter = self._exporter, None
        if exporter is None:
            return
        exporter.close(fsync=True)
        log.info("feed written", path=os.fspath(self.path), items=exporter.items_written)
