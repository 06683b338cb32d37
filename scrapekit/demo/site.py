"""The bundled demo site: a deterministic bookshop catalogue, its login, and the HTTP handler.

Three layers, top to bottom:

1. data: `build_catalogue()` makes the same `Product`s on every run (seeded per product id,
   so product *n* does not depend on how many products there are);
2. `SiteApp`: routing, sessions, CSRF and counters, as a pure `PageRequest -> Reply` function
   guarded by one lock (handler threads call it concurrently);
3. transport: `DemoRequestHandler` + `DemoHTTPServer` (stdlib `ThreadingHTTPServer`, HTTP/1.1
   keep-alive, a Content-Length on every reply, silent unless `verbose`).

Options (`SiteOptions`): products, per_page, session_max_requests, session_max_age,
require_login, delay, username, password, verbose.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import posixpath
import random
import re
import secrets
import socket
import socketserver
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, quote, urlsplit

# -- data --------------------------------------------------------------------------------------

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


# -- pages ---------------------------------------------------------------------------------------

HOME = "/catalogue/page-1.html"
_CSS = (
    "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#222}"
    ".site-header{background:#2c3e50;padding:.6em 1em}.site-header a{color:#fff}"
    ".container{display:flex;gap:2em;padding:1em}.sidebar{min-width:14em}"
    ".products{display:grid;grid-template-columns:repeat(4,1fr);gap:1em}"
    ".product{border:1px solid #ddd;padding:.6em}.price{color:#2a7d2a;font-weight:bold}"
    ".pager{list-style:none;display:flex;gap:1em}.error{color:#b00}"
    ".site-footer{border-top:1px solid #ddd;padding:1em;font-size:.85em}"
)
_STARS = ("One", "Two", "Three", "Four", "Five")
_ERRORS = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Forbidden", "CSRF verification failed. Request aborted."),
    404: ("Page not found", "Sorry, the page you asked for does not exist."),
    405: ("Method not allowed", "This page only answers GET and HEAD."),
}
# The oddities a crawler must survive: non-HTTP schemes, a fragment, and an unparsable URL.
_FOOTER_LINKS = (
    '<nav class="footer-links"><a href="mailto:shop@books.example">Email us</a> · '
    '<a href="tel:+442079460000">+44 20 7946 0000</a> · '
    '<a href="javascript:void(0)" class="cookie-settings">Cookie settings</a> · '
    f'<a href="{HOME}#content">Back to the first page</a> · '
    '<a href="http://[broken">Our partner bookshop</a></nav>'
)


def relative(from_path: str, to_path: str) -> str:
    """The relative href from the page at `from_path` to `to_path` (keeps a trailing slash)."""
    rel = posixpath.relpath(to_path, posixpath.dirname(from_path))
    return rel + "/" if to_path.endswith("/") and not rel.endswith("/") else rel


def _layout(title: str, main: str, logged_in: bool, *, sidebar: str = "", links: str = "") -> str:
    account = (
        '<a class="logout" href="/logout">Log out</a>'
        if logged_in
        else '<a class="login" href="/login">Log in</a>'
    )
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} | Scrapekit Books</title>
<style>{_CSS}</style>
</head>
<body id="top">
<header class="site-header">
<nav class="navbar"><a class="brand" href="{HOME}">Scrapekit Books</a>
<ul class="nav"><li><a href="{HOME}">All products</a></li><li class="account">{account}</li></ul>
</nav>
</header>
<div class="container">
{sidebar}<main id="content">
{main}
</main>
</div>
<footer class="site-footer">
{links}<p>© 2024 Scrapekit Books — a demo shop for scraping practice. Prices are fictional;
nothing is for sale.</p>
</footer>
</body>
</html>
"""


def _sidebar(counts: dict[str, int]) -> str:
    items = "".join(
        f'<li><a href="/catalogue/category/{slug}/">{escape(name)}</a> '
        f'<span class="count">({counts.get(slug, 0)})</span></li>\n'
        for slug, name in CATEGORIES
    )
    return (
        '<aside class="sidebar">\n<h2>Categories</h2>\n'
        f'<ul class="categories">\n{items}</ul>\n</aside>\n'
    )


def render_listing(
    path: str,
    heading: str,
    products: tuple[Product, ...],
    number: int,
    per_page: int,
    counts: dict[str, int],
    logged_in: bool,
) -> str:
    """A listing page: `per_page` products, a pager, the category sidebar, the footer links."""
    pages = max(1, -(-len(products) // per_page))
    start = (number - 1) * per_page
    shown = products[start : start + per_page]
    articles = "".join(
        f'<article class="product" data-id="{p.id}">\n'
        f'<p class="star-rating {_STARS[p.id % 5]}" aria-label="{p.id % 5 + 1} of 5 stars"></p>\n'
        f'<h3><a href="{relative(path, p.path)}" title="{escape(p.title)}">'
        f"{escape(p.title)}</a></h3>\n"
        f'<div class="product-price"><p class="price">{p.price_text}</p>\n'
        f'<p class="availability">Available</p></div>\n</article>\n'
        for p in shown
    )
    previous = (
        f'<li class="previous"><a href="page-{number - 1}.html">previous</a></li> '
        if number > 1
        else ""
    )
    following = (
        f' <li class="next"><a href="page-{number + 1}.html">next</a></li>'
        if number < pages
        else ""
    )
    main = (
        f'<h1>{escape(heading)}</h1>\n<p class="results"><strong>{len(products)}</strong> results'
        f" \N{EN DASH} showing <strong>{start + 1 if shown else 0}</strong> to"
        f" <strong>{start + len(shown)}</strong>.</p>\n"
        f'<section class="products">\n{articles}</section>\n'
        f'<ul class="pager">{previous}<li class="current">Page {number} of {pages}</li>'
        f"{following}</ul>"
    )
    title = heading if number == 1 else f"{heading}, page {number}"
    return _layout(title, main, logged_in, sidebar=_sidebar(counts), links=_FOOTER_LINKS)


def render_product(product: Product, logged_in: bool) -> str:
    """A product detail page; stock is shown only to a logged-in visitor."""
    p, path = product, product.path
    if logged_in:
        stock = f'<p class="stock" data-stock="{p.stock}">In stock ({p.stock} available)</p>'
    else:
        stock = '<p class="login-required"><a href="/login">Log in</a> to see stock</p>'
    category_href = relative(path, f"/catalogue/category/{p.category_slug}/")
    main = f"""<ul class="breadcrumb">
<li><a href="{relative(path, HOME)}">Home</a></li>
<li><a href="{category_href}">{escape(p.category)}</a></li>
<li class="active">{escape(p.title)}</li>
</ul>
<article class="product-page" data-id="{p.id}">
<h1>{escape(p.title)}</h1>
<p class="price">{p.price_text}</p>
{stock}
<h2>Product description</h2>
<div class="description"><p>{escape(p.description)}</p></div>
<h2>Product information</h2>
<table class="product-info">
<tr class="upc"><th>UPC</th><td>{p.upc}</td></tr>
<tr><th>Product type</th><td>Books</td></tr>
<tr class="category"><th>Category</th><td>{escape(p.category)}</td></tr>
<tr><th>Price (incl. tax)</th><td>{p.price_text}</td></tr>
<tr><th>Number of reviews</th><td>{p.id % 7}</td></tr>
</table>
</article>"""
    return _layout(p.title, main, logged_in)


def render_login(form_token: str, next_path: str, logged_in: bool, error: str) -> str:
    """The login form, with its CSRF token and, after a failed attempt, the error."""
    error_html = f'<p class="error">{escape(error)}</p>\n' if error else ""
    main = f"""<h1>Log in</h1>
{error_html}<form method="post" action="/login" class="login-form">
<input type="hidden" name="csrf_token" value="{escape(form_token)}">
<input type="hidden" name="next" value="{escape(next_path)}">
<p><label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" required></p>
<p><label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required></p>
<p><button type="submit">Log in</button></p>
</form>"""
    return _layout("Log in", main, logged_in)


def render_error(status: int, logged_in: bool) -> str:
    """An error page for `status`."""
    title, text = _ERRORS[status]
    return render_page(title, text, logged_in)


def render_page(title: str, text: str, logged_in: bool) -> str:
    """A plain page with a heading and one paragraph."""
    return _layout(title, f"<h1>{escape(title)}</h1>\n<p>{escape(text)}</p>", logged_in)


def render_redirect(location: str) -> str:
    """The small body sent with a redirect."""
    href = escape(location)
    body = f'<p>Redirecting to <a href="{href}">{href}</a>.</p>'
    return f"<!DOCTYPE html>\n<title>Redirecting</title>\n{body}\n"


def product_json(product: Product, logged_in: bool) -> dict[str, object]:
    """A product as the JSON API shows it (stock only to a logged-in visitor)."""
    p = product
    data: dict[str, object] = {
        "id": p.id, "slug": p.slug, "title": p.title, "price": str(p.price), "currency": "GBP",
        "upc": p.upc, "category": p.category, "url": p.path,
    }  # fmt: skip
    if logged_in:
        data["stock"] = p.stock
    return data


# -- the site ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteOptions:
    """How a `SiteApp` behaves; `DemoSite` and the `serve` command expose each field."""

    products: int = 500
    per_page: int = 20
    session_max_requests: int | None = None
    session_max_age: float | None = None
    require_login: bool = False
    delay: float = 0.0
    username: str = "demo"
    password: str = "demo"
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.products < 0 or self.per_page < 1:
            raise ValueError("products must be >= 0 and per_page >= 1")


@dataclass(frozen=True, slots=True)
class SiteStats:
    """A snapshot of the site's counters; `by_path` counts requests per route prefix."""

    requests: int = 0
    logins: int = 0
    failed_logins: int = 0
    csrf_failures: int = 0
    session_expiries: int = 0  # redirects to /login caused by an expired or unknown session
    by_path: dict[str, int] = field(default_factory=dict)


STATS_PREFIXES = (
    "/catalogue/page-", "/catalogue/category/", "/catalogue/product/", "/login", "/logout",
    "/api/", "/robots.txt", "/slow",
)  # fmt: skip


class Visitor(Enum):
    """What the request's cookies say about who is asking."""

    ANONYMOUS = "anonymous"  # no session cookie
    LOGGED_IN = "logged in"
    EXPIRED = "expired"  # a session cookie the site no longer honours (expired, unknown, ended)


@dataclass(slots=True)
class _Session:
    created: float
    requests: int = 0
    ended: bool = False


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What `SiteApp.handle` needs from an HTTP request."""

    method: str
    target: str
    cookies: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Reply:
    """What the handler sends back; the body is always complete (Content-Length is exact)."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _html(status: int, page: str, *headers: tuple[str, str]) -> Reply:
    return Reply(status, page.encode(), headers=headers)


def _redirect(location: str, *headers: tuple[str, str]) -> Reply:
    page = render_redirect(location)
    return Reply(302, page.encode(), headers=(("Location", location), *headers))


def _json(status: int, data: object) -> Reply:
    return Reply(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")


def _safe_next(value: str) -> str:
    """Only local paths are redirect targets after login (no open redirect)."""
    return value if value.startswith("/") and not value.startswith("//") else HOME


_LISTING = re.compile(r"/catalogue/page-([1-9][0-9]*)\.html")
_CATEGORY = re.compile(
    r"/catalogue/category/([a-z0-9-]+)/(?:index\.html|page-([1-9][0-9]*)\.html)?"
)
_PRODUCT = re.compile(r"/catalogue/product/([a-z0-9-]+)-([0-9]+)/index\.html")


class SiteApp:
    """Routing, sessions, CSRF and counters; thread-safe, no I/O except `/slow`."""

    def __init__(self, options: SiteOptions) -> None:
        self.options = options
        self.products = build_catalogue(options.products)
        self._by_id = {p.id: p for p in self.products}
        self.categories = {
            slug: tuple(p for p in self.products if p.category_slug == slug)
            for slug, _ in CATEGORIES
        }
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._csrf_tokens: set[str] = set()
        self._counts: dict[str, int] = {}

    # -- state shared by handler threads ----------------------------------------------------

    def stats(self) -> SiteStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            c = self._counts
            by_path = {k[5:]: v for k, v in c.items() if k.startswith("path:")}
            return SiteStats(
                c.get("requests", 0), c.get("logins", 0), c.get("failed_logins", 0),
                c.get("csrf_failures", 0), c.get("session_expiries", 0), by_path,
            )  # fmt: skip

    def reset_stats(self) -> None:
        """Zero every counter (sessions are kept)."""
        with self._lock:
            self._counts.clear()

    def expire_sessions(self) -> None:
        """End every session now, as if each had run out (for re-login tests)."""
        with self._lock:
            for session in self._sessions.values():
                session.ended = True

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def _touch(self, session_id: str | None) -> Visitor:
        """Count one request against the session and say whether it is still valid."""
        if not session_id:  # absent, or emptied by a client that kept a deleted cookie
            return Visitor.ANONYMOUS
        opts = self.options
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.ended:
                return Visitor.EXPIRED
            session.requests += 1
            too_many = opts.session_max_requests is not None and (
                session.requests > opts.session_max_requests
            )
            too_old = opts.session_max_age is not None and (
                time.monotonic() - session.created > opts.session_max_age
            )
            if too_many or too_old:
                session.ended = True
                return Visitor.EXPIRED
            return Visitor.LOGGED_IN

    def _csrf_form_token(self, cookie_token: str) -> str:
        return hmac.new(self._secret, cookie_token.encode(), "sha256").hexdigest()[:32]

    # -- routing ---------------------------------------------------------------------------------

    def handle(self, request: PageRequest) -> Reply:
        """The reply to one request."""
        url = urlsplit(request.target)
        path, query = url.path, parse_qs(url.query)
        prefix = next((p for p in STATS_PREFIXES if path.startswith(p)), "other")
        self._count("requests")
        self._count("path:" + ("/" if path == "/" else prefix))
        visitor = self._touch(request.cookies.get("sessionid"))
        logged_in = visitor is Visitor.LOGGED_IN
        if request.method == "POST" and path != "/login":
            return _html(405, render_error(405, logged_in), ("Allow", "GET, HEAD"))
        if path in ("/", "/index.html"):
            return _redirect(HOME)
        if path == "/robots.txt":
            return Reply(200, b"User-agent: *\nAllow: /\n", "text/plain; charset=utf-8")
        if path == "/login":
            return self._login(request, query, logged_in)
        if path == "/logout":
            session_id = request.cookies.get("sessionid")
            with self._lock:
                if session_id is not None and session_id in self._sessions:
                    self._sessions[session_id].ended = True
            return _redirect("/login", ("Set-Cookie", "sessionid=; Path=/; Max-Age=0; HttpOnly"))
        if path == "/api/products":
            return self._api(query, logged_in)
        if path == "/slow":
            return self._slow(query, logged_in)
        if path.startswith("/catalogue/"):
            if self.options.require_login and not logged_in:
                return self._to_login(path, url.query, visitor)
            return self._catalogue(path, url.query, visitor)
        return _html(404, render_error(404, logged_in))

    def _to_login(self, path: str, query: str, visitor: Visitor) -> Reply:
        if visitor is Visitor.EXPIRED:
            self._count("session_expiries")
        target = path + (f"?{query}" if query else "")
        return _redirect("/login?next=" + quote(target, safe="/"))

    def _catalogue(self, path: str, query: str, visitor: Visitor) -> Reply:
        logged_in = visitor is Visitor.LOGGED_IN
        per_page = self.options.per_page
        if match := _LISTING.fullmatch(path):
            number, products = int(match[1]), self.products
            heading = "All products"
        elif match := _CATEGORY.fullmatch(path):
            if match[1] not in self.categories:
                return _html(404, render_error(404, logged_in))
            number, products = int(match[2] or 1), self.categories[match[1]]
            heading = dict(CATEGORIES)[match[1]]
        elif match := _PRODUCT.fullmatch(path):
            product = self._by_id.get(int(match[2]))
            if product is None or product.slug != match[1]:
                return _html(404, render_error(404, logged_in))
            if visitor is Visitor.EXPIRED:  # product pages show stock: they need a live session
                return self._to_login(path, query, visitor)
            return _html(200, render_product(product, logged_in))
        else:
            return _html(404, render_error(404, logged_in))
        if number > max(1, -(-len(products) // per_page)):
            return _html(404, render_error(404, logged_in))
        counts = {slug: len(items) for slug, items in self.categories.items()}
        page = render_listing(path, heading, products, number, per_page, counts, logged_in)
        return _html(200, page)

    def _login(self, request: PageRequest, query: dict[str, list[str]], logged_in: bool) -> Reply:
        opts = self.options
        cookie_token = request.cookies.get("csrftoken", "")
        with self._lock:
            known_token = cookie_token in self._csrf_tokens
        if request.method != "POST":
            headers: tuple[tuple[str, str], ...] = ()
            if not known_token:  # one pre-session token per client, reused like Django's
                cookie_token = secrets.token_urlsafe(24)
                with self._lock:
                    self._csrf_tokens.add(cookie_token)
                headers = (("Set-Cookie", f"csrftoken={cookie_token}; Path=/; SameSite=Lax"),)
            next_path = _safe_next(query.get("next", [HOME])[0])
            form = render_login(self._csrf_form_token(cookie_token), next_path, logged_in, "")
            return _html(200, form, *headers)
        form_data = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        field_value = {k: v[0] for k, v in form_data.items()}
        sent_token = field_value.get("csrf_token", "")
        if not known_token or not hmac.compare_digest(
            sent_token.encode(), self._csrf_form_token(cookie_token).encode()
        ):
            self._count("csrf_failures")
            return _html(403, render_error(403, logged_in))
        next_path = _safe_next(field_value.get("next", HOME))
        username = field_value.get("username", "").encode()
        password = field_value.get("password", "").encode()
        if not (
            hmac.compare_digest(username, opts.username.encode())
            & hmac.compare_digest(password, opts.password.encode())  # both, always: no timing hint
        ):
            self._count("failed_logins")
            error = "Invalid username or password"
            form = render_login(sent_token, next_path, logged_in, error)
            return _html(200, form)
        session_id = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[session_id] = _Session(created=time.monotonic())
        self._count("logins")
        return _redirect(next_path, ("Set-Cookie", f"sessionid={session_id}; Path=/; HttpOnly"))

    def _api(self, query: dict[str, list[str]], logged_in: bool) -> Reply:
        if self.options.require_login and not logged_in:
            return _json(401, {"error": "login required"})
        try:
            number = int(query.get("page", ["1"])[0])
        except ValueError:
            return _json(400, {"error": "page must be an integer"})
        per_page, total = self.options.per_page, len(self.products)
        page_count = max(1, -(-total // per_page))
        if not 1 <= number <= page_count:
            return _json(404, {"error": f"page {number} does not exist", "pages": page_count})
        shown = self.products[(number - 1) * per_page : number * per_page]
        items = [product_json(p, logged_in) for p in shown]
        next_url = f"/api/products?page={number + 1}" if number < page_count else None
        data = {"page": number, "pages": page_count, "per_page": per_page, "total": total}
        return _json(200, {**data, "next": next_url, "products": items})

    def _slow(self, query: dict[str, list[str]], logged_in: bool) -> Reply:
        try:
            seconds = float(query.get("seconds", ["1"])[0])
        except ValueError:
            return _html(400, render_error(400, logged_in))
        time.sleep(min(max(seconds, 0.0), 60.0))
        return _html(200, render_page("Slow page", f"Waited {seconds:g} s.", logged_in))


# -- transport ---------------------------------------------------------------------------------

_MAX_BODY = 1 << 20


class DemoRequestHandler(BaseHTTPRequestHandler):
    """Turns HTTP/1.1 requests into `PageRequest`s for the server's `SiteApp`."""

    protocol_version = "HTTP/1.1"
    server_version = "scrapekit-demo/1.0"
    sys_version = ""
    timeout = 30.0  # idle keep-alive connections are closed after this long
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms a request on Linux loopback).
    disable_nagle_algorithm = True

    @property
    def demo_server(self) -> DemoHTTPServer:
        """The server, with its real type."""
        return cast("DemoHTTPServer", self.server)

    def setup(self) -> None:
        super().setup()
        self.demo_server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.demo_server.track(self.connection, add=False)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        if self.headers.get("Transfer-Encoding"):
            self._send(Reply(411, b"Length Required\n", "text/plain"), head=False, close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self._send(Reply(413, b"Bad Content-Length\n", "text/plain"), head=False, close=True)
            return
        body = self.rfile.read(length) if length else b""
        cookies: dict[str, str] = {}
        for header in self.headers.get_all("Cookie") or []:
            for pair in header.split(";"):
                name, _, value = pair.strip().partition("=")
                cookies.setdefault(name, value)
        app = self.demo_server.app
        reply = app.handle(PageRequest(method, self.path, cookies, body))
        if app.options.delay > 0:
            time.sleep(app.options.delay)
        self._send(reply, head=method == "HEAD")

    def _send(self, reply: Reply, *, head: bool, close: bool = False) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in reply.headers:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.demo_server.app.options.verbose:
            super().log_message(format, *args)


class DemoHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections so `close_connections` can end them."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SiteApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, DemoRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), slow on some hosts.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        """Remember (or forget) an open client connection."""
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open keep-alive connection, so a stopped site really stops."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Client disconnects are routine for a crawler's test server; stay quiet about them.
        if self.app.options.verbose and not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
