"""The benchmark site: N deterministic catalogue pages, served fast from memory on 127.0.0.1.

Run as its own process (`python bench/site.py --pages 2000 --port 0`) so the server never shares
a GIL with the crawler being measured. The first line on stdout is the start URL (page 0); the
server then runs until SIGTERM or SIGINT.

Every page is 8-15 KB of HTML (head, nav, text, a product block with title, price and
description) with 10-20 links to other pages of the site. Links come from a seeded RNG, so the
site is identical on every run, and each page links to the next one, so a crawl from page 0
reaches all N pages. Page 0 is "/", page i > 0 is "/page/i"; every link uses exactly that form,
so no two URLs name the same page and a full crawl fetches exactly N pages.

Beside the catalogue, every path `/fan/<n>` (any n) answers a small page of its own, for the
durable-crawl bench (durable.py), whose spider makes up the links itself; `--arrivals FILE`
appends one line per request, `<wall-clock time> <path>`, so that bench can see when a crawl
sent its first request.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import TextIO

DEFAULT_PAGES = 2000
SEED = 20240601
NAV_PAGES = 4  # pages 1..NAV_PAGES appear in every page's nav bar, like category pages

_VOCABULARY = (
    "account active adapter alloy amber anchor angle archive armour assembly balance battery "
    "beacon bearing bench blade block board bolt bracket bridge brush cable canvas carbon "
    "carrier casing cedar chamber channel circuit clamp classic coil compact copper core "
    "cotton coupler crystal current cushion cycle delta desk dial digital drive durable edge "
    "element engine fabric feather fiber filter flask fleet frame gasket gauge glass grip "
    "harbor helix hinge hollow indigo iron jacket kernel lantern laser lever linen lumen "
    "magnet maple marble matrix meadow mesh metro module motor nickel nova oak optic orbit "
    "panel pillar pine pivot plate polar portable prism pulse quartz radial ranger relay "
    "ridge rotor saddle sensor shell signal silver slate spring steel stone summit switch "
    "tablet thread timber titan torque tower trail turbine valve velvet vertex walnut wire "
    "with for the and of to in a is that on by this from at as are be or an it its which"
)
_WORDS = _VOCABULARY.split()
_ADJECTIVES = (
    "Compact",
    "Classic",
    "Deluxe",
    "Rugged",
    "Portable",
    "Modular",
    "Premium",
    "Vintage",
    "Smart",
    "Heavy-Duty",
    "Ultra",
    "Eco",
)
_NOUNS = (
    "Lamp",
    "Kettle",
    "Backpack",
    "Drill",
    "Speaker",
    "Chair",
    "Watch",
    "Tent",
    "Router",
    "Blender",
    "Jacket",
    "Notebook",
    "Monitor",
    "Grinder",
    "Bicycle",
)
_CATEGORIES = ("Home", "Outdoor", "Electronics", "Tools", "Kitchen", "Office", "Apparel")


def page_path(index: int) -> str:
    """The one URL path of page `index` (page 0 is the site root)."""
    return "/" if index == 0 else f"/page/{index}"


def product(index: int, rng: random.Random) -> tuple[str, str]:
    """The (title, price) of page `index`'s product; the item both crawlers extract."""
    title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {index:05d}"
    price = f"${rng.randint(1, 2000)}.{rng.randint(0, 99):02d}"
    return title, price


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(8, 22))
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return "<p>" + " ".join(_sentence(rng) for _ in range(rng.randint(3, 7))) + "</p>\n"


def _links(index: int, count: int, rng: random.Random) -> list[int]:
    """9-19 link targets: nav pages, previous/next (the chain that reaches every page), random."""
    targets = [0, *range(1, min(NAV_PAGES, count - 1) + 1)]
    if index > 0:
        targets.append(index - 1)
    targets.append((index + 1) % count)
    want = rng.randint(9, 19)  # plus the breadcrumb's home link: 10-20 links a page
    while len(targets) < want:
        targets.append(rng.randrange(count))
    return targets


def _relative(index: int, target: int) -> str:
    """A relative href from page `index` that resolves to page `target`'s one path."""
    if target == 0:
        return "../" if index > 0 else "./"
    return f"page/{target}" if index == 0 else str(target)


def render_page(index: int, count: int, rng: random.Random) -> bytes:
    """One page's HTML, 8-15 KB, deterministic for a given RNG state."""
    title, price = product(index, rng)
    targets = _links(index, count, rng)
    nav_n = 1 + min(NAV_PAGES, count - 1)
    nav = "".join(
        f'<li><a href="{page_path(t)}">{_CATEGORIES[i % len(_CATEGORIES)]}</a></li>'
        for i, t in enumerate(targets[:nav_n])
    )
    chain = targets[nav_n : nav_n + (2 if index > 0 else 1)]
    chain_html = "".join(
        f'<a class="{"prev" if t == index - 1 else "next"}" href="{page_path(t)}">'
        f"{'Previous' if t == index - 1 else 'Next'}</a> "
        for t in chain
    )
    related = "".join(
        # Half the related links are relative, as on real sites.
        f'<li><a href="{_relative(index, t) if rng.random() < 0.5 else page_path(t)}">'
        f"Product {t:05d}</a></li>\n"
        for t in targets[nav_n + len(chain) :]
    )
    description = " ".join(_sentence(rng) for _ in range(4))
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title} | Bench Store</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="description" content="{description[:150]}">\n'
        '<link rel="stylesheet" href="/static/site.css">\n'
        "<style>body{font-family:sans-serif;margin:0}nav ul{display:flex;gap:1em}"
        ".product{border:1px solid #ddd;padding:1em}.price{color:#b12704}</style>\n"
        "</head>\n<body>\n"
        f'<header><div class="logo">Bench Store</div><nav><ul>{nav}</ul></nav></header>\n'
        '<main>\n<div class="breadcrumbs">'
        f'<a href="/">Home</a> &rsaquo; {_CATEGORIES[index % len(_CATEGORIES)]}</div>\n'
        f'<article class="product" data-sku="SKU-{index:06d}">\n<h1>{title}</h1>\n'
        f'<p class="price">{price}</p>\n<div class="description">{description}</div>\n'
        '<button type="button" class="add-to-cart">Add to cart</button>\n</article>\n'
        '<section class="details">\n<h2>Details</h2>\n'
    )
    tail = (
        f'</section>\n<aside class="related"><h2>Related products</h2><ul>\n{related}</ul>'
        f'</aside>\n<div class="pager">{chain_html}</div>\n</main>\n'
        "<footer><p>&copy; Bench Store. All prices include VAT.</p></footer>\n</body>\n</html>\n"
    )
    target = rng.randint(8 * 1024, 14 * 1024)
    body = [head]
    size = len(head) + len(tail)
    while size < target:  # paragraphs are 300-1100 bytes: the page lands inside 8-15 KB
        paragraph = _paragraph(rng)
        body.append(paragraph)
        size += len(paragraph)
    body.append(tail)
    return "".join(body).encode("utf-8")


def build_site(count: int = DEFAULT_PAGES) -> dict[str, bytes]:
    """Every page of the site by URL path, rendered once."""
    rng = random.Random(SEED)
    return {page_path(i): render_page(i, count, rng) for i in range(count)}


def _responses(pages: dict[str, bytes]) -> dict[str, bytes]:
    """Whole HTTP/1.1 responses (status line, headers, body), so a request is one write.

    Every page sets a session cookie (unchanged) and a "last page" cookie (new each time), as
    shops do: a crawler's cookie jar changes on every response.
    """
    out = {}
    for path, body in pages.items():
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Set-Cookie: sid=bench-session; Path=/; HttpOnly\r\n"
            f"Set-Cookie: last_page={path}; Path=/\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: max-age=3600\r\n\r\n"
        ).encode("ascii")
        out[path] = head + body
    robots = b"User-agent: *\nAllow: /\n"
    out["/robots.txt"] = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        + f"Content-Length: {len(robots)}\r\n\r\n".encode("ascii")
        + robots
    )
    return out


_NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found"
)


def fan_page(path: str) -> bytes:
    """The small page at `/fan/<n>`: one title and a price, no links (the spider makes them)."""
    body = (
        f"<!DOCTYPE html>\n<html><head><title>{path}</title></head><body>"
        f'<h1>Item {path.rsplit("/", 1)[-1]}</h1><p class="price">$1.00</p></body></html>\n'
    ).encode("ascii")
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode("ascii")
        + body
    )


def make_server(count: int, port: int = 0, arrivals: TextIO | None = None) -> ThreadingHTTPServer:
    """A keep-alive HTTP/1.1 server for the site on 127.0.0.1:`port` (0 picks a free port).

    With `arrivals`, each request's wall-clock arrival time and path are written there.
    """
    responses = _responses(build_site(count))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Without it, a keep-alive response split over two sends can wait 40 ms for a
        # delayed ACK; we write each response in one call anyway.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            if arrivals is not None:
                line = f"{time.time():.6f} {path}\n"
                with lock:
                    arrivals.write(line)
                    arrivals.flush()
            if path.startswith("/fan/") and path[5:].isdigit():
                self.wfile.write(fan_page(path))
                return
            self.wfile.write(responses.get(path, _NOT_FOUND))

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # the default 5 drops SYNs when a crawler opens its pool at once

        def handle_error(self, request: object, client_address: object) -> None:
            # A crawler killed by run.py's timeout resets its connections: not worth a traceback.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)  # type: ignore[arg-type]

    return Server(("127.0.0.1", port), Handler)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=DEFAULT_PAGES, help="number of pages")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--arrivals", type=Path, help="append '<time> <path>' per request here")
    args = parser.parse_args(argv)
    if args.pages < 1:
        parser.error("--pages must be at least 1")
    arrivals = open(args.arrivals, "a") if args.arrivals else None  # noqa: SIM115
    server = make_server(args.pages, args.port, arrivals)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    host, port = server.server_address[:2]
    print(f"http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if arrivals is not None:
            arrivals.close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
