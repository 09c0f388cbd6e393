"""Wording shared by the command-line outputs: counts with the right plural."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """Return ``count`` and ``noun`` in the number it needs: "1 row", "0 rows", "2 queries".

    ``plural`` is the plural form when it is not ``noun + "s"``.
    """
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
