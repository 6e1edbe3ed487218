"""Split a target's items into API calls: at most N entries and B bytes per call, order kept."""

from __future__ import annotations

from typing import Callable, Iterable, List, Sequence, TypeVar

T = TypeVar("T")


def split_batches(items: Iterable[T], max_entries: int, max_bytes: int,
                  size_of: Callable[[T], int]) -> List[List[T]]:
    """Greedy split in order. An item bigger than ``max_bytes`` travels alone (the service
    then rejects it as an entry failure, which is dead-lettered, rather than blocking others)."""
    if max_entries < 1 or max_bytes < 1:
        raise ValueError("max_entries and max_bytes must be positive")
    batches: List[List[T]] = []
    current: List[T] = []
    current_bytes = 0
    for item in items:
        size = size_of(item)
        if current and (len(current) >= max_entries or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += size
    if current:
        batches.append(current)
    return batches


def group_by(items: Sequence[T], key: Callable[[T], object]) -> List[List[T]]:
    """Group items by key, keeping first-seen order of keys and of items within a key."""
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())
