"""Where change records go (``ChangeTarget``) and how one is sent (``defer_change``).

Apart from ``changes`` so that ``defer.change`` (manual change events, for databases without
an ORM) needs no SQLAlchemy: this module imports only the library's own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from . import _items, wire
from ._changes_records import Change
from ._dispatch import DISPATCHER

MAX_GROUP_ID_CHARS = 128
DEFAULT_DETAIL_TYPE = "DatabaseChange"
DEFAULT_EVENT_SOURCE = "lambda-defer.db"


@dataclass(frozen=True)
class ChangeTarget:
    """Where change records go; build with ``ChangeTarget.sqs/.sns/.eventbridge``."""

    kind: str  # "sqs" | "sns" | "event"
    address: str  # queue URL, topic ARN or bus name ("" = the default bus)
    source: str = DEFAULT_EVENT_SOURCE
    detail_type: str = DEFAULT_DETAIL_TYPE

    @classmethod
    def sqs(cls, queue_url: str) -> "ChangeTarget":
        """One message per record; a ``.fifo`` queue is grouped by table and key."""
        return cls("sqs", _non_empty(queue_url, "queue_url"))

    @classmethod
    def sns(cls, topic_arn: str) -> "ChangeTarget":
        """One message per record, with ``table`` and ``eventName`` attributes for filter policies."""
        return cls("sns", _non_empty(topic_arn, "topic_arn"))

    @classmethod
    def eventbridge(cls, bus: Optional[str] = None, *, source: str = DEFAULT_EVENT_SOURCE,
                    detail_type: str = DEFAULT_DETAIL_TYPE) -> "ChangeTarget":
        """One event per record (the record is the ``detail``); ``bus`` None is the default bus."""
        return cls("event", bus or "", _non_empty(source, "source"), _non_empty(detail_type, "detail_type"))

    def _extra(self) -> Dict[str, Any]:
        return {"delay_seconds": None} if self.kind == "sqs" else {"subject": None}

    @property
    def fifo(self) -> bool:
        return self.address.endswith(".fifo")

    def item(self, change: Change) -> wire.WorkItem:
        """Number the change and shape it as this target's item; raises what a send would
        (``ValueError`` for a record over the service's size, ``TypeError`` for a value)."""
        record = change.to_record()
        group = _group_id(change) if self.fifo else None
        if self.kind == "sqs":
            return _items.sqs_item(
                DISPATCHER.request_id, self.address, {"Records": [record]}, group_id=group, dedup_id=None,
                **self._extra(), attributes={"table": change.table, "eventName": change.event_name})
        if self.kind == "sns":
            return _items.sns_item(
                DISPATCHER.request_id, self.address, {"Records": [record]}, group_id=group, dedup_id=None,
                **self._extra(), attributes={"table": change.table, "eventName": change.event_name})
        return _items.event_item(
            DISPATCHER.request_id, self.detail_type, record, source=self.source, bus=self.address or None,
            resources=[record["eventSourceARN"]])

    def check(self, change: Change) -> None:
        """Raise what ``send`` would raise for this change, sending nothing: ``capture_changes``
        calls it at the flush that records the change, so a record that cannot be sent fails
        its transaction instead of being refused after the COMMIT. (The record is built twice;
        it takes a sequence number of its own, which keeps them increasing.)"""
        wire.encode(self.item(change))

    def send(self, change: Change) -> str:
        """Number the change, shape it as a record and defer its delivery; return the item id."""
        return DISPATCHER.submit(self.item(change))


def defer_change(table: str, event_name: str, keys: Mapping[str, Any], new_image: Optional[Mapping[str, Any]] = None,
                 old_image: Optional[Mapping[str, Any]] = None, *, target: ChangeTarget) -> str:
    """Send one change record for a database without SQLAlchemy; call it after your COMMIT.

    Example
    -------
    >>> cur.execute("UPDATE orders SET status = 'paid' WHERE id = %s", (oid,)); conn.commit()
    >>> defer_change("orders", "MODIFY", {"id": oid}, {"status": "paid"}, {"status": "new"},
    ...              target=ChangeTarget.sqs(CHANGES_QUEUE_URL))
    """
    if not isinstance(target, ChangeTarget):
        raise TypeError(f"target must be a ChangeTarget (ChangeTarget.sqs/.sns/.eventbridge), not {target!r}")
    return target.send(Change(table, event_name, dict(keys), _opt_dict(new_image), _opt_dict(old_image)))


def _group_id(change: Change) -> str:
    """``table#key``; hashed when too long or not made of the characters FIFO group ids allow."""
    text = change.key_text
    if len(text) <= MAX_GROUP_ID_CHARS and all(33 <= ord(c) <= 126 for c in text):
        return text
    table = "".join(c for c in change.table if 33 <= ord(c) <= 126)[:MAX_GROUP_ID_CHARS - 41]
    return table + "#" + hashlib.sha1(text.encode()).hexdigest()


def _non_empty(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty str, not {value!r}")
    return value


def _opt_dict(value: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    return None if value is None else dict(value)
