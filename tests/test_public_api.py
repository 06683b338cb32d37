"""The public API: `scrapekit.__all__` is complete, sorted and importable."""

from __future__ import annotations

import scrapekit


def test_all_is_sorted() -> None:
    """__all__ stays sorted so additions are easy to review."""
    assert scrapekit.__all__ == sorted(scrapekit.__all__)


def test_every_public_name_is_in_all() -> None:
    """Every public attribute of the package is listed in __all__ (submodules excepted)."""
    import types

    public = {
        name
        for name, value in vars(scrapekit).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(scrapekit.__all__) - {"__version__"}


def test_public_classes_present_as_scrapekit_names() -> None:
    """Exported classes report scrapekit.X in reprs, whatever module defines them."""
    assert scrapekit.Request.__module__ == "scrapekit"
    assert repr(scrapekit.Spider).startswith("<class 'scrapekit.Spider'")


def test_scrapy_style_spiders_are_public() -> None:
    """CrawlSpider, Rule, LinkExtractor, Link and SitemapSpider import from scrapekit."""
    for name in ("CrawlSpider", "Link", "LinkExtractor", "Rule", "SitemapSpider"):
        assert name in scrapekit.__all__
        assert getattr(scrapekit, name).__module__ == "scrapekit"
    assert issubclass(scrapekit.CrawlSpider, scrapekit.Spider)
    assert issubclass(scrapekit.SitemapSpider, scrapekit.Spider)


def test_selectors_exported_for_isinstance_checks() -> None:
    """What `Response.css()` returns is public, so spiders can type and check it."""
    assert scrapekit.Selector.__module__ == "scrapekit"
    assert issubclass(scrapekit.SelectorList, list)
    selected = scrapekit.Selector(text="<p>x</p>").css("p")
    assert isinstance(selected, scrapekit.SelectorList)
    assert all(isinstance(s, scrapekit.Selector) for s in selected)
