"""Fixtures the demo site's tests share; each test module starts its own `site`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from scrapekit.demo import DemoSite


@pytest.fixture
def client(site: DemoSite) -> Iterator[httpx2.Client]:
    """An HTTP client for the module's demo site, with its own cookies."""
    with httpx2.Client(base_url=site.url, timeout=5) as http:
        yield http
