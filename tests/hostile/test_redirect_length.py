"""A redirect to a URL longer than URL_LENGTH_LIMIT: dropped and counted, never fetched.

The admission filters judge redirect hops as they judge links; the URL length rule used to be
left out of that check, so a hop to a huge URL was fetched (and its URL parsed and cached).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Response as WResponse

from scrapekit import Response, Spider, crawl_async

LIMIT = 200


class Pages(Spider):
    """Scrapes whatever it is sent to."""

    name = "pages"

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"url": response.url}


async def test_a_redirect_to_a_url_over_the_limit_is_dropped_as_url_too_long(
    httpserver: HTTPServer,
) -> None:
    """/far redirects to a same-site URL over URL_LENGTH_LIMIT: dropped as "url too long",
    never requested; /near (just under the limit) is followed."""
    far, near = "/" + "x" * (LIMIT + 10), "/" + "n" * 100
    httpserver.expect_request(far).respond_with_data("too far")
    httpserver.expect_request(near).respond_with_data("ok", content_type="text/html")
    httpserver.expect_request("/far").respond_with_response(
        WResponse("", status=302, headers={"Location": far})
    )
    httpserver.expect_request("/near").respond_with_response(
        WResponse("", status=302, headers={"Location": near})
    )
    stats = await crawl_async(
        Pages,
        {
            "LOG_LEVEL": "CRITICAL",
            "URL_LENGTH_LIMIT": LIMIT,
            "ROBOTSTXT_OBEY": False,
            "COOKIES_PERSIST": False,
        },
        start_urls=[httpserver.url_for("/far"), httpserver.url_for("/near")],
    )
    assert stats["dropped"]["requests"] == {"redirect url too long": 1}
    assert (stats["items"], stats["errors"]) == (1, {})
    assert sorted(request.path for request, _ in httpserver.log) == ["/far", "/near", near]
