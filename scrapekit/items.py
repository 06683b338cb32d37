"""Items: what callbacks yield besides requests, and their plain-dict form for exporters.

An item is a dict, any other Mapping, or a dataclass instance. Pipelines receive it as the
callback yielded it; exporters and storage call `to_dict()`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from scrapekit._types import ItemLike


def is_item(obj: object) -> bool:
    """Whether a callback output is an item (a Mapping or a dataclass instance)."""
    return isinstance(obj, Mapping) or (dataclasses.is_dataclass(obj) and not isinstance(obj, type))


def to_dict(item: ItemLike) -> dict[str, Any]:
    """A shallow dict of the item's fields, in their declared order."""
    if isinstance(item, dict):
        return item
    if isinstance(item, Mapping):
        return dict(item)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    raise TypeError(
        f"{type(item).__name__} is not an item: yield a dict, a Mapping or a dataclass instance"
    )
