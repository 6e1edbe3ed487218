"""The hand-off: the extension confirms which items it holds; the function delivers the rest.

Both halves of the rule live here, so it is read in one place:

- The extension notes every item it receives on the connection it came over: per invoke
  (``InvokeReceipts``), and, for items a ``@defer`` process sent outside any invoke (loose
  items), per connection too (``LooseReceipts``). It answers an end marker with an ``Ack``:
  how many of that invoke's (or that connection's loose) items it holds, and which ids when
  that is fewer than sent. Receipts belong to their connection, so however many invokes are
  open at once on others (Managed Instances), none can evict another's.
- The function keeps each item it sent until an ack covers it; ``unconfirmed`` says which
  an ack does not cover (or all of them, with no ack), and the function delivers those
  itself (late, never lost).

An item is never confirmed by another connection's count: a count covers only what came in
order before it on the same connection. Nor is an item confirmed that the extension holds
in memory only (its journal could not take it: a full /tmp): a kill or a reset of the
extension would lose it, so the extension hands it back and the function delivers it.
"""

from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, List, Optional, Tuple, TypeVar

from . import wire

#: Invokes whose states the extension keeps at once (older ones are forgotten); also the
#: bound on invokes open at once on one connection whose receipts are kept.
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


#: The extension's rule for what it may confirm: given the keys its queue holds received
#: items under, the keys of those it does not hold durably (not journaled: a crash or a
#: reset would lose them), which it has let go so the function delivers them itself.
HandBack = Callable[[List[str]], List[str]]

Received = Tuple[str, str]  # (the function's id of the item, the key the extension holds it under)


class InvokeReceipts:
    """The extension's side, one per connection: the items received for each request id open on it.

    Freed at the invoke's end marker, and with the connection. The bound is per connection
    (``limit`` invokes open at once on one connection; past it the oldest open one's receipts
    go, which costs that invoke duplicates, never a loss): another connection's invokes never
    count against it."""

    __slots__ = ("_held",)

    def __init__(self, limit: int = RECENT_REQUESTS) -> None:
        self._held: Recent[str, List[Received]] = Recent(limit)

    def __len__(self) -> int:
        return len(self._held)

    def clear(self) -> None:
        """The connection closed: nothing more can come for its invokes, nor be confirmed."""
        self._held = Recent(self._held.limit)

    def received(self, item: wire.WorkItem, key: Optional[str] = None) -> None:
        """``item`` arrived; the extension holds it under ``key`` (its id unless it collided)."""
        if not item.request_id:
            return
        held = self._held.get(item.request_id)
        if held is None:
            held = []
            self._held[item.request_id] = held
        held.append((item.id, key or item.id))

    def confirm(self, end: wire.EndOfInvoke, hand_back: Optional[HandBack] = None) -> wire.Ack:
        """The ack for an invoke's end marker: its count, and its ids when short. With
        ``hand_back``, only what the extension holds durably counts as held."""
        return _ack(end, self._held.pop(end.request_id) or [], hand_back)


class LooseReceipts:
    """The extension's side, per connection: loose items, confirmed by a marker with no request id.

    They arrive in order on one connection, so when the count covers what the function sent,
    all came; the oldest ids past ``LOOSE_IDS_KEPT`` are forgotten (a short count then costs
    duplicates, never a loss). Only ids of items journaled when they came are forgotten:
    those the journal did not take are kept until the marker, which may have to hand them back."""

    __slots__ = ("ids", "count", "unjournaled")

    def __init__(self) -> None:
        self.ids: List[Received] = []
        self.unjournaled: List[Received] = []
        self.count = 0

    def received(self, item_id: str, key: Optional[str] = None, journaled: bool = True,
                 keep_id: bool = True) -> None:
        """Count a loose item; ``keep_id=False`` (a process with no ``@defer`` handler yet, which
        may never send the marker) counts it without keeping its id, unless the journal did not
        take it: the count must never confirm that one (the marker hands it back)."""
        self.count += 1
        if not keep_id and journaled:
            return
        (self.ids if journaled else self.unjournaled).append((item_id, key or item_id))
        if len(self.ids) > LOOSE_IDS_KEPT:
            del self.ids[:len(self.ids) - LOOSE_IDS_KEPT]

    def confirm(self, end: wire.EndOfInvoke, hand_back: Optional[HandBack] = None) -> wire.Ack:
        kept, count = self.ids + self.unjournaled, self.count
        self.ids, self.unjournaled, self.count = [], [], 0
        return _ack(end, kept, hand_back, count)


def _ack(end: wire.EndOfInvoke, received: List[Received], hand_back: Optional[HandBack],
         count: Optional[int] = None) -> wire.Ack:
    """What the extension confirms of ``received`` (``count`` of them in all: more when the
    ids of some were forgotten): all, by the count, when that covers what was sent and
    nothing is handed back; else the ids held, with a count short of the marker's, so the
    function delivers every other item itself."""
    count = len(received) if count is None else count
    back = set(hand_back([key for _, key in received])) if hand_back is not None and received else set()
    if not back:
        ids = [item_id for item_id, _ in received]
        return wire.Ack(end.request_id, count, ids if count < end.count else None)
    held = [item_id for item_id, key in received if key not in back]
    # More may have come than the function filed when it sent its marker (an item of another
    # thread's, between its send and its filing): the count stays short all the same, so the
    # ids decide, and what was handed back is delivered by the function.
    return wire.Ack(end.request_id, max(0, min(len(held), end.count - 1)), held)


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
