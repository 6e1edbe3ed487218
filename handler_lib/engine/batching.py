"""Split a target's items into API calls (at most N entries and B bytes per call, order kept),
and decide which waiting items may start now.

FIFO order: within one (target, MessageGroupId) one item is in flight at a time, the group's
oldest waiting one; while it backs off after a failure, the items behind it wait too (across
retries and carry-over, which keep arrival order). Other groups and non-FIFO targets stay
parallel, and a batch mixes groups freely.

Why one item of a group per call, not a batch of them: SQS and SNS report the entries of a
batch one by one, so an entry can fail while a later entry of its group in the same call
lands, and that later one has overtaken it for good (the attack machine found it). A group
with many items pays one call per item; the calls of different groups still share batches.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Hashable, Iterable, List, Optional, Sequence, Set, Tuple, TypeVar

from .. import wire

T = TypeVar("T")


def split_batches(items: Iterable[T], max_entries: int, max_bytes: int,
                  size_of: Callable[[T], int], group_of: Optional[Callable[[T], Hashable]] = None
                  ) -> List[List[T]]:
    """Greedy split in order. An item bigger than ``max_bytes`` travels alone (the service
    then rejects it as an entry failure, which is dead-lettered, rather than blocking others).
    With ``group_of``, the items of one group (a key other than None) are kept in one batch
    (the drain starts one item of a FIFO group at a time; this keeps any caller's group whole)."""
    if max_entries < 1 or max_bytes < 1:
        raise ValueError("max_entries and max_bytes must be positive")
    units: List[List[T]] = []
    grouped: Dict[Hashable, List[T]] = {}
    for item in items:
        key = group_of(item) if group_of is not None else None
        if key is None:
            units.append([item])
        elif key in grouped:
            grouped[key].append(item)
        else:
            units.append(grouped.setdefault(key, [item]))
    batches: List[List[T]] = []
    current: List[T] = []
    current_bytes = 0
    for unit in units:
        size = sum(size_of(item) for item in unit)
        if current and (len(current) + len(unit) > max_entries or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.extend(unit)
        current_bytes += size
    if current:
        batches.append(current)
    return batches


def group_by(items: Sequence[T], key: Callable[[T], object]) -> List[List[T]]:
    """Group items by key, keeping first-seen order of keys and of items within a key."""
    groups: Dict[object, List[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


#: (kind, target, MessageGroupId): the FIFO group an item belongs to.
FifoGroup = Tuple[str, str, str]


def fifo_group(item: wire.WorkItem) -> Optional[FifoGroup]:
    """(kind, target, MessageGroupId) of an item for a FIFO target, else None."""
    group = getattr(item, "group_id", None)
    return None if group is None else (item.kind, item.target, group)


def admissible(entries: Sequence[Any], now: float, task_slots: int) -> Set[str]:
    """Ids of the waiting entries that may start now, given every entry in arrival order.

    A task needs a free worker. A FIFO group starts its oldest waiting item, and only when
    none of its items is in flight and that one is due; nothing else of the group."""
    admitted: Set[str] = set()
    closed: Set[FifoGroup] = set()  # groups that start nothing more this round
    for entry in entries:
        item = entry.item
        key = fifo_group(item)
        if key is not None:
            if key in closed:
                continue
            closed.add(key)
            if not entry.in_flight and entry.not_before <= now:
                admitted.add(item.id)
        elif entry.in_flight or entry.not_before > now:
            continue
        elif item.kind == "task":
            if task_slots > 0:
                task_slots -= 1
                admitted.add(item.id)
        else:
            admitted.add(item.id)
    return admitted
