"""Batcher: group work items of similar length so batches carry little padding."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def length_batches(items: Sequence[T], size: int, length: Callable[[T], int]) -> list[list[T]]:
    """Sort by length (longest first, so a memory problem shows at once) and cut into batches of `size`."""
    ordered = sorted(items, key=length, reverse=True)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]
