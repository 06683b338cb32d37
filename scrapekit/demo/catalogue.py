"""The demo site's data: a deterministic bookshop catalogue.

`build_catalogue()` makes the same `Product`s on every run, each seeded by its own id, so product
*n* does not depend on how many products there are. No I/O, no settings: `SiteOptions.products`
only says how many to make.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("travel", "Travel"), ("mystery", "Mystery"), ("historical-fiction", "Historical Fiction"),
    ("poetry", "Poetry"), ("science", "Science"), ("philosophy", "Philosophy"),
    ("romance", "Romance"), ("fantasy", "Fantasy"), ("food-drink", "Food & Drink"),
    ("art", "Art"),
)  # fmt: skip
_ADJECTIVES = (
    "Silent", "Crimson", "Forgotten", "Hidden", "Little", "Last", "Golden", "Broken", "Wandering",
    "Midnight", "Café", "Naïve", "Über", "Frozen", "Quiet", "Electric", "Señor", "Bright", "Lost",
    "Curious", "Distant", "Velvet", "Hollow", "Secret",
)  # fmt: skip
_NOUNS = (
    "Garden", "River", "Atlas", "Kingdom", "Letters", "Smörgåsbord", "Machine", "Orchard",
    "Lighthouse", "Archive", "Harbour", "Crónica", "Cartographer", "Winter", "Island", "Engine",
    "Library", "Fjord", "Daughter", "Alphabet", "Mirror", "Rooftops",
)  # fmt: skip
_SENTENCES = (
    "A “page-turner”, according to nobody in particular.",
    "Set in São Paulo, Kraków and Reykjavík over one long, strange summer.",
    "It’s the kind of book you lend — and never get back.",  # noqa: RUF001 (typographic on purpose)
    "Contains 3 maps, 12 recipes, and one très mysterious cat.",
    "The author’s début, translated from the Portuguese by Zoë Brontë.",  # noqa: RUF001
    'Readers say: "I couldn\'t put it down", which is, frankly, a problem.',
    "Part memoir, part field guide; entirely unreliable.",
    "Winner of the 1987 Prix des Lecteurs (runner-up, anyway).",
    "Every chapter ends on a cliffhanger, except the last one.",
    "Includes an index, a glossary, and a very long footnote.",
)


@dataclass(frozen=True, slots=True)
class Product:
    """One catalogue entry, exactly as the site renders it."""

    id: int
    slug: str
    title: str
    price: Decimal
    upc: str
    category: str
    category_slug: str
    stock: int
    description: str

    @property
    def path(self) -> str:
        """The detail page's URL path."""
        return f"/catalogue/product/{self.slug}-{self.id}/index.html"

    @property
    def price_text(self) -> str:
        """The price as printed on the pages, e.g. `£12.34`."""
        return f"£{self.price}"


def slugify(text: str) -> str:
    """ASCII slug: accents folded, everything else not alphanumeric becomes one dash."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "item"


def make_product(product_id: int) -> Product:
    """Product `product_id`, the same on every run (its own seeded RNG)."""
    rng = random.Random(f"scrapekit-demo:{product_id}")
    adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
    title = f"The {adjective} {noun}"
    if product_id % 37 == 0:
        title = f"“{adjective} {noun}”, and Other Stories"
    elif product_id % 23 == 0:
        title = f"{adjective} & {rng.choice(_ADJECTIVES)}: A {noun}"
    elif product_id % 5 == 0:
        title = f"{noun} of the {adjective} {rng.choice(_NOUNS)}"
    if product_id % 50 == 7:
        title += " 📚"
    sentences = rng.sample(_SENTENCES, 3)
    # Every 11th description has a newline inside the text, to exercise CSV/JSON exporters.
    description = ("\n" if product_id % 11 == 0 else " ").join(sentences)
    if product_id % 60 == 0:
        description += " Now with a cat on the cover 🐈."
    category_slug, category = CATEGORIES[rng.randrange(len(CATEGORIES))]
    digest = hashlib.sha256(f"scrapekit-demo-upc:{product_id}".encode()).hexdigest()
    return Product(
        id=product_id,
        slug=slugify(title),
        title=title,
        price=Decimal(rng.randrange(499, 6000)).scaleb(-2),  # pence -> pounds, always 2 places
        upc=f"{digest[:10]}{product_id:06x}",  # the id suffix makes UPCs unique by construction
        category=category,
        category_slug=category_slug,
        stock=rng.randint(1, 40),
        description=description,
    )


def build_catalogue(count: int) -> tuple[Product, ...]:
    """Products 1..count."""
    return tuple(make_product(i) for i in range(1, count + 1))
