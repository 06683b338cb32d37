"""HTML forms: build the request a browser would send when a form is submitted.

Used by `Session.submit_form()` to log in: hidden fields (CSRF tokens) are kept, the form's
action and method are honoured, and the caller's values replace the page's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from selectolax.lexbor import LexborNode

from scrapekit.exceptions import FormNotFound
from scrapekit.request import Request
from scrapekit.response import Response

_NOT_SENT = frozenset({"submit", "image", "button", "reset", "file"})
FormValue = str | Iterable[str]


def _field_pairs(form: LexborNode) -> list[tuple[str, str]]:
    """The (name, value) pairs the form would submit as the page stands."""
    pairs: list[tuple[str, str]] = []
    for node in form.css("input, select, textarea"):
        attrs = node.attributes
        name = attrs.get("name")
        if not name or "disabled" in attrs:
            continue
        if node.tag == "input":
            kind = (attrs.get("type") or "text").lower()
            if kind in _NOT_SENT:
                continue
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    pairs.append((name, attrs.get("value") or "on"))
                continue
            pairs.append((name, attrs.get("value") or ""))
        elif node.tag == "select":
            options = node.css("option")
            chosen = [o for o in options if "selected" in o.attributes]
            if not chosen and options and "multiple" not in attrs:
                chosen = options[:1]
            for option in chosen:
                value = option.attributes.get("value")
                pairs.append((name, value if value is not None else option.text(strip=True)))
        else:  # textarea
            pairs.append((name, node.text()))
    return pairs


def _clicked_button(form: LexborNode) -> tuple[str, str] | None:
    """The first named submit button, sent as a browser would when it is clicked."""
    for node in form.css("input[type=submit], button"):
        attrs = node.attributes
        kind = (attrs.get("type") or "submit").lower()
        name = attrs.get("name")
        if kind == "submit" and name and "disabled" not in attrs:
            return (name, attrs.get("value") or "")
    return None


def form_request(
    response: Response,
    formdata: Mapping[str, FormValue] | None = None,
    *,
    selector: str = "form",
    **request_kwargs: Any,
) -> Request:
    """The Request submitting the first form matching `selector` on the page.

    `formdata` values replace the page's values for those names (a list gives several values);
    every other field, hidden ones included, is sent as the page has it.
    """
    form = response.css_first(selector)
    if form is None:
        raise FormNotFound(response.url, selector)
    pairs = _field_pairs(form)
    if (button := _clicked_button(form)) is not None:
        pairs.append(button)
    if formdata:
        pairs = [(k, v) for k, v in pairs if k not in formdata]
        for name, value in formdata.items():
            values = [value] if isinstance(value, str) else list(value)
            pairs.extend((name, str(v)) for v in values)
    action = response.urljoin(form.attributes.get("action") or response.url)
    method = (form.attributes.get("method") or "GET").upper()
    if method == "GET":
        # A GET form replaces the action's query with the form data, as browsers do.
        parts = urlsplit(action)
        action = urlunsplit(parts._replace(query="", fragment=""))
        return Request(action, "GET", params=pairs, **request_kwargs)
    return Request(action, "POST", data=pairs, **request_kwargs)
