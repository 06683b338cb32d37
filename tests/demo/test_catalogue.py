"""The demo catalogue's data, without a server."""

from __future__ import annotations

from scrapekit.demo.catalogue import build_catalogue, slugify


def test_catalogue_is_deterministic() -> None:
    """Products are the same on every run and do not depend on the catalogue size."""
    products = build_catalogue(500)
    assert build_catalogue(20) == products[:20]
    one = products[0]
    assert (one.title, one.upc, str(one.price)) == ("The Frozen Fjord", "5128a184c5000001", "46.80")
    assert any("📚" in p.title for p in products)
    assert any("“" in p.title and "," in p.title for p in products)


def test_slugify_folds_accents_and_punctuation() -> None:
    """Slugs are lowercase ASCII with single dashes, never empty."""
    assert slugify("“Café Smörgåsbord”, and Other Stories") == "cafe-smorgasbord-and-other-stories"
    assert slugify("📚") == "item"
