"""The hand-off: the extension confirms which items it holds; the function delivers the rest.

Both halves of the rule live here, so it is read in one place:

- The extension notes every item it receives: per invoke (``InvokeReceipts``), and, for
  items a ``@defer`` process sent outside any invoke (loose items), per connection
  (``LooseReceipts``). It answers an end marker with an ``Ack``: how many of that invoke's
  (or that connection's loose) items it holds, and which ids when that is fewer than sent.
- The function keeps each item it sent until an ack covers it; ``unconfirmed`` says which
  an ack does not cover (or all of them, with no ack), and the function delivers those
  itself (late, never lost).

An item is never confirmed by another connection's count: a count covers only what came in
order before it on the same connection.
"""

from __future__ import annotations

from typing import Dict, Generic, Iterator, List, Optional, TypeVar

from . import wire

#: Invokes whose receipts and states the extension keeps at once (older ones are forgotten).
RECENT_REQUESTS = 256
#: Ids of loose items kept per connection; past it, the count alone confirms them.
LOOSE_IDS_KEPT = 4096

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A dict of at most ``limit`` keys that forgets the oldest-inserted first.

    The extension keeps per-request state for invokes that may never finish their protocol
    (a handler killed before its end marker): bounded, so a long-lived process stays small."""

    __slots__ = ("_data", "limit")

    def __init__(self, limit: int = RECENT_REQUESTS) -> None:
        self._data: Dict[K, V] = {}
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        if len(self._data) > self.limit:
            del self._data[next(iter(self._data))]

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def get(self, key: K, default: Optional[V] = None) -> Optional[V]:
        return self._data.get(key, default)

    def pop(self, key: K, default: Optional[V] = None) -> Optional[V]:
        return self._data.pop(key, default)


class InvokeReceipts:
    """The extension's side, per invoke: the ids received for each request id."""

    def __init__(self, limit: int = RECENT_REQUESTS) -> None:
        self._held: Recent[str, List[str]] = Recent(limit)

    def received(self, item: wire.WorkItem) -> None:
        if not item.request_id:
            return
        held = self._held.get(item.request_id)
        if held is None:
            held = []
            self._held[item.request_id] = held
        held.append(item.id)

    def confirm(self, end: wire.EndOfInvoke) -> wire.Ack:
        """The ack for an invoke's end marker: its count, and its ids when short."""
        held = self._held.pop(end.request_id) or []
        if len(held) < end.count:
            return wire.Ack(end.request_id, len(held), held)
        return wire.Ack(end.request_id, len(held))


class LooseReceipts:
    """The extension's side, per connection: loose items, confirmed by a marker with no request id.

    They arrive in order on one connection, so when the count covers what the function sent,
    all came; the oldest ids past ``LOOSE_IDS_KEPT`` are forgotten (a short count then costs
    duplicates, never a loss)."""

    __slots__ = ("ids", "count")

    def __init__(self) -> None:
        self.ids: List[str] = []
        self.count = 0

    def received(self, item_id: str, keep_id: bool = True) -> None:
        """Count a loose item; ``keep_id=False`` (a process with no ``@defer`` handler yet, which
        may never send the marker) counts it without keeping its id."""
        self.count += 1
        if not keep_id:
            return
        self.ids.append(item_id)
        if len(self.ids) > LOOSE_IDS_KEPT:
            del self.ids[:len(self.ids) - LOOSE_IDS_KEPT]

    def confirm(self, end: wire.EndOfInvoke) -> wire.Ack:
        ids, count = self.ids, self.count
        self.ids, self.count = [], 0
        return wire.Ack("", count, ids if count < end.count else None)


def unconfirmed(sent: List[wire.WorkItem], ack: Optional[wire.Ack]) -> List[wire.WorkItem]:
    """The function's side: the items of ``sent`` that ``ack`` does not say are held."""
    if ack is None:
        return sent
    if ack.count >= len(sent):
        return []
    held = set(ack.ids or ())
    return [item for item in sent if item.id not in held]


def shortfall(sent: List[wire.WorkItem], ack: Optional[wire.Ack], delivering: int) -> str:
    """Why the function delivers ``delivering`` of ``sent`` itself, for its warning."""
    why = "no confirmation from the extension" if ack is None else f"the extension holds {ack.count} of {len(sent)}"
    return f"lambda-defer: {why}; the function delivered {delivering} items itself"
