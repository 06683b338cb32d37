"""Fixtures shared by the session tests."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request as WRequest
from werkzeug import Response as WResponse


def set_then_redirect(request: WRequest) -> WResponse:
    """/cookies/set?k=v: set the cookies, then redirect to /cookies (httpbin's shape)."""
    response = WResponse("", status=302, headers={"Location": "/cookies"})
    for key, value in request.args.items():
        response.set_cookie(key, value, path="/")
    return response


@pytest.fixture
def cookie_server(httpserver: HTTPServer) -> HTTPServer:
    """/cookies/set sets and redirects; /cookies echoes the Cookie header it got."""
    httpserver.expect_request("/cookies/set").respond_with_handler(set_then_redirect)
    httpserver.expect_request("/cookies").respond_with_handler(
        lambda r: WResponse(json.dumps({"cookie": r.headers.get("Cookie")}))
    )
    return httpserver
