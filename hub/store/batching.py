"""SQL `IN` lists in bounded pieces.

A statement with tens of thousands of bound parameters fails on SQLite (its limit was 999
before 3.32) and is slow to plan on PostgreSQL, so a query over many ids runs once per piece of
at most IN_LIST_MAX. Every such loop of the hub goes through `chunks`, so that the bound is
written once."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

IN_LIST_MAX = 900  # bound parameters per IN list, well under every backend's limit


def chunks(items: Sequence[T], size: int = IN_LIST_MAX) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size` (none for an empty sequence)."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    for i in range(0, len(items), size):
        yield items[i:i + size]
