"""Spider contracts: checks written in a callback's docstring, run against the live site.

A callback whose docstring has an `@url` line is checked by `scrapekit check`:

    def parse_product(self, response):
        \"\"\"A product page.

        @url http://127.0.0.1:8000/catalogue/product/1.html
        @returns items 1 1
        @returns requests 0 0
        @scrapes title price stock
        \"\"\"

- `@url URL`: the page to fetch (required). `{name}` is replaced by the spider's attribute,
  so `@url {base_url}/catalogue/page-1.html` follows `-a base_url=...`.
- `@cb_kwargs JSON` and `@meta JSON`: the request's cb_kwargs and meta (JSON objects).
- `@returns items|requests [MIN [MAX]]`: how many the callback yields (MIN defaults to 1,
  MAX to no limit); `item` and `request` are accepted too.
- `@scrapes FIELD ...`: every item yielded has each field.

The names and meanings are Scrapy's, so Scrapy docstrings check as they are. A callback with
other contracts but no `@url`, an unknown `@name` or bad arguments fail the check, rather than
being skipped quietly.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from scrapekit.devsession import DevSession, PageResult
from scrapekit.exceptions import InvalidURL
from scrapekit.items import to_dict
from scrapekit.request import Request, check_url
from scrapekit.spider import Spider

KNOWN = ("url", "cb_kwargs", "meta", "returns", "scrapes")
_KINDS = {"item": "items", "items": "items", "request": "requests", "requests": "requests"}


@dataclass(frozen=True, slots=True)
class Contract:
    """One `@name args` line of a docstring."""

    name: str
    text: str

    def __str__(self) -> str:
        return f"@{self.name} {self.text}".rstrip()


@dataclass(slots=True)
class CallbackContracts:
    """A callback's contracts, parsed; `problem` says why they cannot run."""

    callback: str
    contracts: list[Contract]
    url: str = ""
    cb_kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def checks(self) -> list[Contract]:
        """The contracts that judge the output (@returns, @scrapes)."""
        return [c for c in self.contracts if c.name in ("returns", "scrapes")]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One contract's verdict on one callback; `detail` says why it failed."""

    callback: str
    contract: str
    passed: bool
    detail: str = ""


def parse_docstring(doc: str | None) -> list[Contract]:
    """The `@name args` lines of a docstring, in order."""
    contracts = []
    for line in (doc or "").splitlines():
        line = line.strip()
        if line.startswith("@") and len(line) > 1:
            name, _, text = line[1:].partition(" ")
            contracts.append(Contract(name, text.strip()))
    return contracts


def spider_contracts(spider: Spider) -> list[CallbackContracts]:
    """Every callback of the spider whose docstring has contracts, in source order."""
    found = []
    for name, method in _methods(type(spider)):
        contracts = parse_docstring(inspect.getdoc(method))
        if contracts:
            found.append(_prepare(spider, name, contracts))
    return found


def _methods(cls: type) -> Iterator[tuple[str, Any]]:
    """The class's own and inherited methods (not Spider's), most derived first, in the
    order they are written."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is Spider or klass is object:
            break
        for name, value in vars(klass).items():
            if name not in seen and inspect.isfunction(value):
                seen.add(name)
                yield name, value


def _prepare(spider: Spider, callback: str, contracts: list[Contract]) -> CallbackContracts:
    """Read @url, @cb_kwargs and @meta; note the first problem that keeps it from running."""
    prepared = CallbackContracts(callback, contracts)
    problems = []
    for contract in contracts:
        if contract.name not in KNOWN:
            problems.append(f"unknown contract @{contract.name} (known: @{', @'.join(KNOWN)})")
        elif contract.name == "url":
            try:
                url = contract.text.format_map(_Attributes(spider))
            except (KeyError, ValueError, IndexError) as exc:
                problems.append(f"@url {contract.text}: cannot fill in {exc}")
                continue
            try:  # a bad @url fails this callback's row, not the whole check
                prepared.url = check_url(url)
            except InvalidURL as exc:
                problems.append(f"@url {url}: {exc.problem}")
        elif contract.name in ("cb_kwargs", "meta"):
            try:
                value = json.loads(contract.text)
                if not isinstance(value, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                problems.append(f"{contract}: expected a JSON object ({exc})")
                continue
            setattr(prepared, contract.name, value)
        elif contract.name == "returns":
            try:
                _bounds(contract)
            except ValueError as exc:
                problems.append(str(exc))
        elif contract.name == "scrapes" and not contract.text.split():
            problems.append("@scrapes names no field: list them, e.g. @scrapes title price")
    if not prepared.url and not problems:
        problems.append("no @url line: add the page to check the other contracts against")
    if problems:
        prepared.problem = "; ".join(problems)
    return prepared


class _Attributes(dict[str, Any]):
    """The spider's attributes, instance and class ones, for `str.format_map`."""

    def __init__(self, spider: Spider) -> None:
        super().__init__()
        self._spider = spider

    def __missing__(self, key: str) -> Any:
        try:
            return getattr(self._spider, key)
        except AttributeError:
            raise KeyError(key) from None


def _bounds(contract: Contract) -> tuple[str, int, float]:
    """(kind, min, max) of a @returns contract; ValueError naming the contract if malformed."""
    words = contract.text.split()
    usage = f"{contract}: expected @returns items|requests [MIN [MAX]]"
    if not 1 <= len(words) <= 3 or words[0] not in _KINDS:
        raise ValueError(usage)
    try:
        low = int(words[1]) if len(words) > 1 else 1
        high: float = int(words[2]) if len(words) > 2 else math.inf
    except ValueError:
        raise ValueError(usage) from None
    if low < 0 or high < low:
        raise ValueError(f"{usage}, 0 <= MIN <= MAX")
    return _KINDS[words[0]], low, high


async def run_contracts(dev: DevSession, prepared: CallbackContracts) -> list[Outcome]:
    """Fetch the callback's @url, run it, and judge each @returns and @scrapes."""
    name = prepared.callback
    if prepared.problem is not None:
        return [Outcome(name, "(contracts)", False, prepared.problem)]
    request = Request(
        prepared.url, callback=name, cb_kwargs=dict(prepared.cb_kwargs), meta=dict(prepared.meta)
    )
    page = await dev.parse(request)
    if page.error is not None:
        return [Outcome(name, f"@url {prepared.url}", False, page.error)]
    outcomes = [Outcome(name, f"@url {prepared.url}", True)]
    outcomes += [Outcome(name, str(c), *_judge(c, page)) for c in prepared.checks]
    return outcomes


def _judge(contract: Contract, page: PageResult) -> tuple[bool, str]:
    items = [to_dict(o) for o in page.outputs if not isinstance(o, Request)]
    if contract.name == "returns":
        kind, low, high = _bounds(contract)
        count = len(items) if kind == "items" else len(page.outputs) - len(items)
        if low <= count <= high:
            return True, ""
        wanted = f"{low}" if low == high else f"{low}..{'' if high == math.inf else int(high)}"
        return False, f"got {count} {kind}, expected {wanted}"
    fields = contract.text.split()
    for index, item in enumerate(items, 1):
        if missing := [f for f in fields if f not in item]:
            return False, f"item {index} of {len(items)} lacks {', '.join(missing)}"
    return True, ""
