"""Dead letters: the item as it was deferred, with why and after how many attempts.

With ``DEFER_DLQ_URL`` the dead letter is itself an SQS item for the DLQ, queued and
journaled like any other, so it shares the batching and retry path. Without one, the
failure is logged at ERROR (id, kind, target, error; the payload only when
``DEFER_LOG_PAYLOADS`` is on) and counted.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Optional

from handler_lib import wire

DLQ_SUFFIX = "~dlq"


def is_dead_letter(item: wire.WorkItem) -> bool:
    return item.id.endswith(DLQ_SUFFIX)


def dead_letter_body(item: wire.WorkItem, code: str, message: str, attempts: int) -> str:
    return json.dumps({
        "defer_dead_letter": 1,
        "id": item.id,
        "kind": item.kind,
        "target": item.target,
        "request_id": item.request_id,
        "attempts": attempts,
        "error": {"code": code, "message": message},
        "enqueued_at_us": item.enqueued_us,
        "dead_lettered_at_us": time.time_ns() // 1000,
        "item": item.to_map(),
    }, default=_bytes_as_base64, separators=(",", ":"))


def dead_letter_item(dlq_url: str, item: wire.WorkItem, code: str, message: str,
                     attempts: int) -> wire.SqsItem:
    return wire.SqsItem(id=item.id + DLQ_SUFFIX, request_id=item.request_id,
                        enqueued_us=time.time_ns() // 1000, queue_url=dlq_url,
                        body=dead_letter_body(item, code, message, attempts),
                        group_id=item.id if dlq_url.endswith(".fifo") else None)


def describe(item: wire.WorkItem, code: str, message: str, attempts: int,
             log_payloads: bool) -> dict:
    """Fields for the ERROR log line of an item that is given up on."""
    fields: dict = {"item_id": item.id, "kind": item.kind, "target": item.target,
                    "request_id": item.request_id, "attempts": attempts,
                    "error_code": code, "error": message}
    if log_payloads:
        fields["item"] = json.loads(json.dumps(item.to_map(), default=_bytes_as_base64))
    return fields


def _bytes_as_base64(value: Any) -> Optional[dict]:
    if isinstance(value, (bytes, bytearray)):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
