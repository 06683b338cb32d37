"""Form filling: what a browser would submit, with the caller's values on top."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from scrapekit import Response
from scrapekit.exceptions import FormNotFound
from scrapekit.session.forms import form_request

PAGE = """
<form id="search" action="/search?old=1" method="get"><input name="q" value="x"></form>
<form id="login" action="/login" method="post">
  <input type="hidden" name="csrf_token" value="t0k">
  <input name="username" value="">
  <input type="password" name="password">
  <input type="checkbox" name="remember" checked>
  <input type="checkbox" name="newsletter" value="yes">
  <input type="radio" name="plan" value="free"><input type="radio" name="plan" value="pro" checked>
  <select name="lang">
    <option value="en">English</option><option value="fr" selected>French</option>
  </select>
  <select name="tags" multiple>
    <option selected>a</option><option>b</option><option selected>c</option>
  </select>
  <textarea name="note">hello</textarea>
  <input name="off" value="1" disabled>
  <input type="file" name="upload">
  <input type="submit" name="go" value="Log in"><input type="submit" name="other" value="No">
</form>
"""


def page() -> Response:
    """The login page, as served from http://shop.test/account/."""
    return Response(
        "http://shop.test/account/", headers={"content-type": "text/html"}, body=PAGE.encode()
    )


def test_post_form_keeps_hidden_fields_and_page_values() -> None:
    """Hidden fields, checked boxes, selected options and textareas are sent as a browser would."""
    request = form_request(page(), {"username": "u", "password": "p"}, selector="form#login")
    assert (request.method, request.url) == ("POST", "http://shop.test/login")
    assert parse_qsl(request.body.decode(), keep_blank_values=True) == [
        ("csrf_token", "t0k"),
        ("remember", "on"),
        ("plan", "pro"),
        ("lang", "fr"),
        ("tags", "a"),
        ("tags", "c"),
        ("note", "hello"),
        ("go", "Log in"),
        ("username", "u"),
        ("password", "p"),
    ]


def test_get_form_replaces_the_action_query() -> None:
    """A GET form sends its fields as the query, replacing the action's own query."""
    request = form_request(page(), {"q": "café"})
    assert request.method == "GET"
    assert request.url == "http://shop.test/search?q=caf%C3%A9"


def test_missing_form_is_a_clear_error() -> None:
    """No form matching the selector raises FormNotFound naming it and the page."""
    with pytest.raises(FormNotFound, match=r"no form matches 'form#nope' on http://shop.test/"):
        form_request(page(), selector="form#nope")
