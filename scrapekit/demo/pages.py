"""The demo site's HTML and JSON: pure functions from products and login state to page text.

The markup and CSS classes are an interface: the demo spider and the tests select on them
(`article.product h3 a`, `ul.pager li.next a`, `p.stock[data-stock]`, `form[action="/login"]`
with its hidden `csrf_token`, `a.login` / `a.logout`), so change them only together.
"""

from __future__ import annotations

import posixpath
from html import escape

from scrapekit.demo.catalogue import CATEGORIES, Product

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
