"""The extension's work queue: every item is pending, in flight, or finished (delivered or dead).

Items are never dropped here: an item leaves only through ``finish``. Attempts, the next
time an item may be tried and its last error live beside it; the journal mirrors adds and
finishes so a restarted extension picks up where a killed one stopped.

Entries are keyed by item id. A frame whose id is known is dropped only when its encoded
map is identical (a resend or a replay); a different item with a known id is an id
collision: it is queued under a fresh id (``<id>#<n>``), so the drain, the journal and the
FIFO deduplication id all tell the two apart, and the collision is logged at ERROR.
``queued_bytes`` (the encoded size of the live entries) is what ``over_limit`` compares
with the configured bound; the queue itself never refuses an item.

An item the journal could not take (a full /tmp) is held in memory only until the journal
can write it: ``held`` tells the hand-off that such an item cannot be confirmed to the
function, and ``hand_back`` lets it go when the function is told to deliver it itself.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from .. import wire

from .journal import Journal, renamed_key

log = logging.getLogger("defer_runner.pending")


class Entry:
    """One held item and its delivery state (a plain class: ``dataclasses`` and the ``inspect``
    it imports would load before the extension is ready)."""

    __slots__ = ("item", "attempts", "not_before", "in_flight", "stalls", "last_code", "last_message", "size")

    def __init__(self, item: wire.WorkItem, attempts: int = 0, not_before: float = 0.0, in_flight: bool = False,
                 stalls: int = 0, last_code: str = "", last_message: str = "", size: int = 0) -> None:
        self.item = item
        self.attempts = attempts
        self.not_before = not_before  # monotonic time of the next attempt
        self.in_flight = in_flight
        self.stalls = stalls  # consecutive outages/throttles, which back off without using attempts
        self.last_code = last_code
        self.last_message = last_message
        self.size = size  # encoded bytes of the item

    def __repr__(self) -> str:
        return (f"Entry(id={self.item.id!r}, kind={self.item.kind!r}, attempts={self.attempts}, "
                f"in_flight={self.in_flight}, stalls={self.stalls}, last_code={self.last_code!r})")


class PendingQueue:
    def __init__(self, journal: Optional[Journal] = None, max_queued_bytes: Optional[int] = None) -> None:
        self._entries: Dict[str, Entry] = {}
        self.journal = journal
        self.max_queued_bytes = max_queued_bytes
        self.changed = threading.Condition()
        self.added_total = 0
        self.duplicates = 0
        self.collisions = 0
        self.handed_back = 0  # items the journal could not take, left to the function to deliver
        self.queued_bytes = 0

    # -- intake (the channel's reader thread) ----------------------------------------------
    def add(self, item: wire.WorkItem, *, journal: bool = True, body: Optional[bytes] = None) -> bool:
        """Queue an item; False when the very same item is already queued (a replay or a resend).

        ``body`` is the item's encoded map when the caller has it (the frame it came in), so
        intake does not encode what it just decoded.
        """
        return self.receive(item, journal=journal, body=body)[0]

    def receive(self, item: wire.WorkItem, *, journal: bool = True,
                body: Optional[bytes] = None) -> Tuple[bool, str, bool]:
        """``add``, saying more: (queued now, the key it is held under, journaled now). The key
        is the item's id, or ``<id>#<n>`` for an id collision; a resend of a queued item is
        held under the first copy's key."""
        if body is None:
            body = wire.pack_map(item.to_map())
        with self.changed:
            key, n = item.id, 1
            while (known := self._entries.get(key)) is not None:
                if wire.pack_map(known.item._replace(id=item.id).to_map()) == body:  # byte for byte
                    self.duplicates += 1
                    return False, key, self._journaled(key)
                n += 1
                key = renamed_key(item.id, n)
            if key != item.id:
                self.collisions += 1
                log.error("id collision: a different item with id %s is already queued; this one is queued as %s",
                          item.id, key, extra={"item_id": item.id, "queued_as": key, "kind": item.kind,
                                               "target": item.target})
                item = item._replace(id=key)
                body = wire.pack_map(item.to_map())
            journaled = True
            if journal and self.journal is not None:
                journaled = self.journal.add(key, body)
            self._entries[key] = Entry(item, size=len(body))
            self.queued_bytes += len(body)
            self.added_total += 1
            self.changed.notify_all()
            return True, key, journaled

    # -- the hand-off ---------------------------------------------------------------------
    def held(self, key: str) -> bool:
        """Whether the item queued under ``key`` may be confirmed to the function: it is
        settled (delivered or dead-lettered, so no longer queued) or journaled."""
        with self.changed:
            return key not in self._entries or self._journaled(key)

    def hand_back(self, keys: List[str]) -> List[str]:
        """Of ``keys``, those the queue does not hold durably (queued, not journaled): the
        function is told to deliver them itself, and they stay queued here too. Both copies
        go (a duplicate, as at least once allows), because neither is sure: this process may
        be killed before its drain, and the function's own delivery may come after its end
        marker (post-response work), when the environment may freeze as soon as this drain
        ends. The attack machine lost such items when the queue let them go."""
        back: List[str] = []
        if self.journal is None:
            return back
        with self.changed:
            for key in self.journal.unjournaled_of(keys):
                if key not in self._entries:
                    continue  # settled (delivered or dead-lettered): confirmed
                back.append(key)
                self.handed_back += 1
        return back

    def _journaled(self, key: str) -> bool:
        return self.journal is None or self.journal.journaled(key)

    # -- the drain ------------------------------------------------------------------------
    def take_ready(self, now: Optional[float] = None,
                   admit: Optional[Callable[[Entry], bool]] = None) -> List[Entry]:
        """Entries due now (and admitted), marked in flight (their order of arrival is kept)."""
        now = time.monotonic() if now is None else now
        with self.changed:
            ready = [e for e in self._entries.values() if not e.in_flight and e.not_before <= now
                     and (admit is None or admit(e))]
            for entry in ready:
                entry.in_flight = True
                entry.attempts += 1
            return ready

    def retry_later(self, item_id: str, not_before: float, code: str, message: str, *,
                    uses_attempt: bool = True) -> None:
        with self.changed:
            entry = self._entries.get(item_id)
            if entry is not None:
                entry.in_flight = False
                if uses_attempt:
                    entry.stalls = 0
                else:
                    entry.attempts -= 1
                    entry.stalls += 1
                entry.not_before = not_before
                entry.last_code, entry.last_message = code, message
            self.changed.notify_all()

    def finish(self, item_id: str) -> None:
        """Delivered or dead-lettered: the only way out of the queue."""
        with self.changed:
            entry = self._entries.pop(item_id, None)
            if entry is not None:
                self.queued_bytes -= entry.size
                if self.journal is not None:
                    self.journal.done(item_id)
            self.changed.notify_all()

    def over_limit(self) -> bool:
        """True while the queued items' encoded bytes exceed the configured bound."""
        return self.max_queued_bytes is not None and self.queued_bytes > self.max_queued_bytes

    def maintain_journal(self) -> None:
        """Journal upkeep (writing what it could not take, compaction): off the intake path,
        and without the queue's lock, so intake and the drain go on meanwhile."""
        if self.journal is not None:
            self.journal.maintain()

    def get(self, item_id: str) -> Optional[Entry]:
        with self.changed:
            return self._entries.get(item_id)

    def snapshot(self) -> List[Entry]:
        with self.changed:
            return list(self._entries.values())

    def counts(self) -> Tuple[int, int]:
        """(waiting, in flight)."""
        with self.changed:
            flying = sum(1 for e in self._entries.values() if e.in_flight)
            return len(self._entries) - flying, flying

    def next_due(self) -> Optional[float]:
        with self.changed:
            due = [e.not_before for e in self._entries.values() if not e.in_flight]
            return min(due) if due else None

    def __len__(self) -> int:
        with self.changed:
            return len(self._entries)
