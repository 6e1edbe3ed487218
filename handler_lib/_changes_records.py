"""DynamoDB Streams-shaped change records: attribute-value typing, sequence numbers, the record.

Pure standard library (no SQLAlchemy), shared by ``capture_changes`` and ``defer_change``.
A record looks like one entry of a DynamoDB Streams event's ``Records`` so that code written
for stream consumers (Powertools' ``DynamoDBStreamEvent``, ``TypeDeserializer``) reads it.
"""

from __future__ import annotations

import base64
import enum
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time as dtime
from decimal import Decimal
from typing import Any, Dict, Mapping, Optional

from ._ids import new_id

EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")
STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"
EVENT_SOURCE = "lambda-defer:db"
EVENT_VERSION = "1.1"

AttributeValue = Dict[str, Any]


def attribute_value(value: Any) -> AttributeValue:
    """One Python value in DynamoDB's typed form: ``{"S": ..}``, ``{"N": ".."}``, ``{"NULL": True}``..."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, enum.Enum):
        return attribute_value(value.value)
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        # DynamoDB has no NaN/Infinity numbers; keep them readable as strings.
        return {"N": repr(value)} if math.isfinite(value) else {"S": repr(value)}
    if isinstance(value, Decimal):
        return {"N": str(value)} if value.is_finite() else {"S": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (datetime, date, dtime)):
        return {"S": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"S": str(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): attribute_value(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple, set, frozenset)):
        return {"L": [attribute_value(v) for v in value]}
    return {"S": str(value)}


def image(values: Mapping[str, Any]) -> Dict[str, AttributeValue]:
    return {name: attribute_value(value) for name, value in values.items()}


class SequenceNumbers:
    """Strictly increasing, fixed-width digit strings (they sort as text and as numbers).

    Seeded from the clock in microseconds, so a later process usually continues above an
    earlier one; only the per-process order is a guarantee.
    """

    WIDTH = 21

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return str(self._last).zfill(self.WIDTH)


SEQUENCE = SequenceNumbers()


@dataclass(frozen=True)
class Change:
    """One row change, before it is given a sequence number and shaped as a record."""

    table: str
    event_name: str
    keys: Mapping[str, Any]
    new_image: Optional[Mapping[str, Any]] = None
    old_image: Optional[Mapping[str, Any]] = None
    source: str = EVENT_SOURCE

    def __post_init__(self) -> None:
        if self.event_name not in EVENT_NAMES:
            raise ValueError(f"event_name must be one of {', '.join(EVENT_NAMES)}, not {self.event_name!r}")
        if not isinstance(self.table, str) or not self.table:
            raise ValueError(f"table must be a non-empty str, not {self.table!r}")
        if not isinstance(self.keys, Mapping) or not self.keys:
            raise ValueError("keys must be a non-empty dict of primary-key column -> value")
        if self.event_name == "INSERT" and self.new_image is None:
            raise ValueError("an INSERT needs new_image")
        if self.event_name == "REMOVE" and self.new_image is not None:
            raise ValueError("a REMOVE has no new_image (pass old_image)")

    @property
    def key_text(self) -> str:
        """The key as text, e.g. ``orders#id=o-1``: the FIFO group id that keeps per-key order."""
        return self.table + "#" + ",".join(f"{k}={self.keys[k]}" for k in sorted(self.keys))

    def to_record(self, *, region: Optional[str] = None) -> Dict[str, Any]:
        """The DynamoDB Streams record; numbers it (call in commit order)."""
        region = region if region is not None else os.environ.get("AWS_REGION", "")
        body: Dict[str, Any] = {
            "ApproximateCreationDateTime": int(time.time()),
            "Keys": image(self.keys),
            "SequenceNumber": SEQUENCE.next(),
            "StreamViewType": STREAM_VIEW_TYPE,
        }
        if self.new_image is not None:
            body["NewImage"] = image(self.new_image)
        if self.old_image is not None:
            body["OldImage"] = image(self.old_image)
        body["SizeBytes"] = len(repr(body.get("Keys"))) + len(repr(body.get("NewImage", ""))) + len(
            repr(body.get("OldImage", "")))
        return {
            "eventID": new_id(),  # unique across forks and SnapStart restores, like item ids
            "eventName": self.event_name,
            "eventVersion": EVENT_VERSION,
            "eventSource": self.source,
            "awsRegion": region,
            "eventSourceARN": f"arn:{self.source}:{region}::table/{self.table}",
            "dynamodb": body,
        }
