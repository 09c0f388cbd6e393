"""Group labels and join keys as plain values: how owners' DuckDB values become labels.

A *label* is the tuple of one result row's group-key values. Labels are public: they come
from the plan (the catalogue's domains and the query's constants), never from data, and every
party orders them the same way (:func:`label_sort_key`).
"""

from __future__ import annotations

import datetime as dt
import decimal

Label = tuple[object, ...]


def label_value(value: object) -> object:
    """Return a DuckDB value as a label value (decimals as floats, dates as ISO text)."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def value_sort_key(value: object) -> tuple[object, ...]:
    """Return a total order over label values of mixed types (NULL last)."""
    if value is None:
        return (True, "", 0)
    if isinstance(value, bool):
        return (False, "bool", int(value))
    if isinstance(value, int | float):
        return (False, "number", value)
    return (False, type(value).__name__, value)


def label_sort_key(label: Label) -> tuple[object, ...]:
    """Return a total order over labels (tuples of label values, NULL last)."""
    return tuple(value_sort_key(v) for v in label)


def key_bytes(value: object) -> bytes:
    """Return the canonical bytes of a join key value (type-tagged: 1 and '1' differ)."""
    if isinstance(value, bool):
        return b"b:" + str(int(value)).encode()
    if isinstance(value, int):
        return b"i:" + str(value).encode()
    if isinstance(value, float) and value.is_integer():
        return b"i:" + str(int(value)).encode()
    return b"s:" + str(label_value(value)).encode()
