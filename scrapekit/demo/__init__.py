"""The bundled demo site, started and stopped from Python (`DemoSite`) or the CLI (`serve`).

    with DemoSite(products=100, session_max_requests=50) as site:
        httpx2.get(site.url + "/catalogue/page-1.html")

The site lives beside this module: `catalogue` (data), `pages` (HTML), `sessions` (signed login
sessions that survive a restart of the site) and `site` (routing and the HTTP server).
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from scrapekit._resource import AsyncResource
from scrapekit.demo.catalogue import Product
from scrapekit.demo.sessions import DEMO_SECRET
from scrapekit.demo.site import DemoHTTPServer, SiteApp, SiteOptions, SiteStats

__all__ = ["DemoSite", "Product", "SiteStats"]


class DemoSite(AsyncResource):
    """The demo site served from a daemon thread on 127.0.0.1 (port 0: a free port).

    A sync and an async context manager; `stop()` / `aclose()` are idempotent, and a stopped
    site cannot be started again (make a new one, on the same `port` if a restart is wanted).
    Sites with the same `secret` accept each other's session cookies, so a login outlives a
    restart; the default secret is the same for every run.
    """

    def __init__(
        self,
        *,
        products: int = 500,
        per_page: int = 20,
        session_max_requests: int | None = None,
        session_max_age: float | None = None,
        require_login: bool = False,
        delay: float = 0.0,
        username: str = "demo",
        password: str = "demo",
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        secret: str = DEMO_SECRET,
    ) -> None:
        options = SiteOptions(
            products=products, per_page=per_page, session_max_requests=session_max_requests,
            session_max_age=session_max_age, require_login=require_login, delay=delay,
            username=username, password=password, verbose=verbose, secret=secret,
        )  # fmt: skip
        self.app = SiteApp(options)
        self._address = (host, port)
        self._server: DemoHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> str:
        """Bind, serve from a daemon thread and return the base URL; a second call is a no-op."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this DemoSite was stopped; create a new one to serve again")
            if self._server is None:
                self._server = DemoHTTPServer(self._address, self.app)
                self._thread = threading.Thread(
                    target=self._server.serve_forever,
                    kwargs={"poll_interval": 0.05},  # how long stop() may wait for the loop
                    name=f"scrapekit-demo:{self._server.server_port}",
                    daemon=True,
                )
                self._thread.start()
            return self.url

    def stop(self) -> None:
        """Stop serving, close open keep-alive connections and join the thread; idempotent."""
        with self._lock:
            server, thread, self._stopped = self._server, self._thread, True
        if server is None or thread is None:
            return
        if thread.is_alive():
            server.shutdown()
        server.server_close()
        server.close_connections()
        thread.join(timeout=5)

    async def aclose(self) -> None:
        """`stop()` without blocking the event loop."""
        await asyncio.to_thread(self.stop)

    @property
    def port(self) -> int:
        """The bound port (raises RuntimeError before `start()`)."""
        if self._server is None:
            raise RuntimeError("DemoSite is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321` (no trailing slash)."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def stats(self) -> SiteStats:
        """A snapshot of the request, login and expiry counters."""
        return self.app.stats()

    @property
    def products(self) -> list[Product]:
        """Every product, in listing order (the same on every run)."""
        return list(self.app.products)

    @property
    def page_count(self) -> int:
        """How many `/catalogue/page-N.html` listing pages there are."""
        return max(1, -(-len(self.app.products) // self.app.options.per_page))

    def reset_stats(self) -> None:
        """Zero the counters (sessions are kept)."""
        self.app.reset_stats()

    def expire_sessions(self) -> None:
        """End every session issued until now, as if each had expired (in this process only)."""
        self.app.expire_sessions()

    def __enter__(self) -> DemoSite:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> DemoSite:
        await asyncio.to_thread(self.start)
        return self

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else self.url if self._server else "not started"
        return f"<DemoSite {len(self.app.products)} products, {state}>"
