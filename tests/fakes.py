"""Stand-ins the component and pipeline tests share, so they need not build real Settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

#: The `make_module` fixture (tests/conftest.py): writes a module, returns its name.
MakeModule = Callable[[str], str]

PIPELINE_DEFAULTS: dict[str, Any] = {
    "PIPELINES_BASE": {},
    "PIPELINES": {},
    "FEEDS": {},
    "FEED_EXPORT_FIELDS": [],
}


class FakeSettings(dict[str, Any]):
    """A stand-in for scrapekit.settings.Settings: a dict that knows where values came from."""

    def __init__(self, values: Iterable[Any] = (), *, where: str = "settings.toml") -> None:
        super().__init__(values)
        self.where = where

    def source(self, key: str) -> str:
        return self.where


@dataclasses.dataclass
class FakeCrawler:
    """What from_crawler() receives: settings and a spider."""

    settings: FakeSettings
    spider: object = None


def pipeline_crawler(
    *, where: str = "settings.toml", spider: object = None, **settings: Any
) -> FakeCrawler:
    """A crawler whose settings hold the pipeline keys' defaults plus `settings`."""
    return FakeCrawler(FakeSettings({**PIPELINE_DEFAULTS, **settings}, where=where), spider)
