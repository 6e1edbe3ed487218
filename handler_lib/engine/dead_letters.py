"""Dead letters: the item as it was deferred, with why, after how many attempts, and (for a
task) the last traceback.

With ``DEFER_DLQ_URL`` the dead letter is itself an SQS item for the DLQ, queued and
journaled like any other, so it shares the batching and retry path; the item counts as
dead-lettered only once its letter is delivered. Without one, the failure is logged at
ERROR (id, kind, target, error; the payload only when ``DEFER_LOG_PAYLOADS`` is on) and
counted.

A letter always fits the DLQ: it is UTF-8 JSON (``ensure_ascii`` off, so "é" costs 2 bytes,
not 6), and when it would still exceed SQS's message size the item's payload is cut to a
prefix and the letter says so: ``"truncated": true`` with the payload's size in bytes and
its SHA-256, so the original can be matched.

``"item"`` is the item for people to read. When JSON cannot hold it exactly (a Binary
message attribute; bytes, non-text dict keys or msgpack types in task arguments) the letter
also holds ``"wire"``: the item's encoded map (its frame body, msgpack) in base64, which is
what redrive sends back; task letters always hold it. When the letter would be too large,
the readable payload is cut first (``"truncated": true``, ``"wire"`` kept). Only when
``"wire"`` cannot fit at all is it left out, and ``"exact"`` then says whether ``"item"``
is the item exactly; a letter with neither cannot be redriven.

Bytes in task arguments are written as ``{"base64": ...}``, and bytes dict keys as
``"base64:..."`` strings (JSON keys are text); a msgpack ``Timestamp`` as
``{"msgpack_timestamp": [seconds, nanoseconds]}`` and an ``ExtType`` as
``{"msgpack_ext": code, "base64": ...}``.

Making a letter never fails: an item whose payload cannot be written as JSON at all (nested
too deep, say) gets a letter without it, ``"item": null`` and ``"unrendered"`` saying why.
An item's dead letter is its way out of the queue; one that cannot be made must not leave
it in flight.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import logging
import time
from typing import Any, Dict, Optional, Tuple, Union

import msgpack

from .. import wire

log = logging.getLogger("defer_runner.dead_letters")

DLQ_SUFFIX = "~dlq"
#: SQS's message limit, less room for the message attributes the SQS sink adds.
LETTER_MAX_BYTES = 1_048_576 - 4_096
_PAYLOAD_KEYS = {"sqs": "body", "sns": "body", "event": "detail", "task": "args", "invoke": "body",
                 "sfn": "body", "callback": "body"}
# Characters SQS refuses in a message body; a letter holding one is sent ASCII-escaped.
_NOT_SQS_TEXT = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def is_dead_letter(item: wire.WorkItem) -> bool:
    return item.id.endswith(DLQ_SUFFIX)


def _encode(letter: Dict[str, Any]) -> str:
    letter = _json_keys(letter)
    text = json.dumps(letter, default=_bytes_as_base64, separators=(",", ":"), ensure_ascii=False)
    # JSON escapes every control character: ASCII text holds nothing SQS refuses (and the
    # scan of a large payload costs more than writing it)
    if not text.isascii() and _NOT_SQS_TEXT.search(text):
        text = json.dumps(letter, default=_bytes_as_base64, separators=(",", ":"))
    return text


def _json_keys(value: Any) -> Any:
    """``value`` with each bytes dict key as ``"base64:<text>"``: task arguments carry them
    (msgpack), JSON does not. msgpack's own types become marked objects: an ``ExtType`` is a
    tuple, which JSON would write as a list that reads as something else."""
    if isinstance(value, dict):
        return {("base64:" + base64.b64encode(k).decode() if isinstance(k, (bytes, bytearray)) else k):
                _json_keys(v) for k, v in value.items()}
    if isinstance(value, msgpack.ExtType):
        return {"msgpack_ext": value.code, "base64": base64.b64encode(bytes(value.data)).decode()}
    if isinstance(value, (list, tuple)):
        return [_json_keys(v) for v in value]
    return value


def _payload(item: wire.WorkItem) -> Tuple[str, str]:
    """(key in the item map, payload text) of the item's payload."""
    key = _PAYLOAD_KEYS[item.kind]
    if isinstance(item, wire.TaskItem):
        return key, json.dumps(_json_keys({"args": item.args, "kwargs": item.kwargs}), default=_bytes_as_base64,
                               ensure_ascii=False)
    return key, item.to_map()[key] or ""  # a callback's success may carry no result


def _header(item: wire.WorkItem, code: str, message: str, attempts: int, traceback: str) -> Dict[str, Any]:
    return {
        "defer_dead_letter": 1,
        "id": item.id,
        "kind": item.kind,
        "target": item.target,
        "request_id": item.request_id,
        "attempts": attempts,
        "error": {"code": code, "message": message[:4096], **({"traceback": traceback[-16384:]} if traceback else {})},
        "enqueued_at_us": item.enqueued_us,
        "dead_lettered_at_us": time.time_ns() // 1000,
    }


def dead_letter_body(item: wire.WorkItem, code: str, message: str, attempts: int,
                     traceback: str = "", max_bytes: int = LETTER_MAX_BYTES) -> str:
    """The letter's JSON, within ``max_bytes``. Never raises: see the module's docstring."""
    try:
        return _letter_body(item, code, message, attempts, traceback, max_bytes)
    except Exception as exc:  # noqa: BLE001 - RecursionError included: the item must still leave
        reason = f"{type(exc).__name__}: {exc}"[:512]
        log.error("the dead letter of %s %s to %s holds no readable payload: it could not be written as "
                  "JSON (%s)", item.kind, item.id, item.target, reason, extra={"item_id": item.id})
        letter = _header(item, code, message, attempts, traceback)
        letter.update(item=None, exact=False, unrendered=f"the item's payload could not be written as JSON ({reason})")
        exact = _wire_form(item)
        if exact is not None and len(_encode({**letter, "wire": exact}).encode()) <= max_bytes:
            letter["wire"] = exact
        return _encode(letter)


def _letter_body(item: wire.WorkItem, code: str, message: str, attempts: int, traceback: str,
                 max_bytes: int) -> str:
    letter = _header(item, code, message, attempts, traceback)
    letter["item"] = item.to_map()
    exact = _json_is_exact(item)
    # What redrive sends back: the item exactly as it was deferred. Task arguments always
    # carry it (JSON cannot say whether a dict's "1" was an int key); other items only when
    # their JSON is not the item exactly (a Binary message attribute).
    wire_form = _wire_form(item) if not exact or isinstance(item, wire.TaskItem) else None
    if wire_form is not None:
        letter["wire"] = wire_form
    text = _encode(letter)
    if len(text.encode()) <= max_bytes:
        return text
    key, payload = _payload(item)
    raw = payload.encode("utf-8", "surrogatepass")
    cut = dict(letter, item=dict(letter["item"]), truncated=True, payload_bytes=len(raw),
               payload_sha256=hashlib.sha256(raw).hexdigest())
    if isinstance(item, wire.TaskItem):
        cut["item"]["kwargs"] = None
    cut["item"][key] = ""
    if wire_form is not None and len(_encode(cut).encode()) > max_bytes:
        # Too large for the exact form and any of the readable one: the readable one whole,
        # if it fits (saying whether it is the item exactly), or a prefix of it.
        del letter["wire"], cut["wire"]
        letter["exact"] = exact
        text = _encode(letter)
        if len(text.encode()) <= max_bytes:
            return text
    cut["exact"] = False
    room = max_bytes - len(_encode(cut).encode())
    while True:  # JSON escaping can grow the prefix: shrink until the letter fits
        cut["item"][key] = raw[:max(0, room)].decode("utf-8", "ignore")
        text = _encode(cut)
        over = len(text.encode()) - max_bytes
        if over <= 0:
            return text
        room -= max(over, 16)


def _plain(value: Any, depth: int = 0) -> bool:
    """Made of what JSON writes and reads back as it was (text, whole numbers, None, lists,
    maps with text keys): the item's JSON is exact without writing it. False: not known."""
    if value is None or isinstance(value, (str, int)):  # bool too
        return True
    if depth > 32:
        return False
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _json_is_exact(item: wire.WorkItem) -> bool:
    """Whether the item's map, written as JSON and read back, is the same item byte for byte
    (it is not with bytes, non-text dict keys, msgpack's own types)."""
    original = item.to_map()
    if _plain(original):
        return True
    try:
        back = json.loads(json.dumps(original, ensure_ascii=False))
        return wire.pack_map(back) == wire.pack_map(original)
    except Exception:  # noqa: BLE001 - not JSON at all (bytes, Timestamp, too deep)
        return False


def _wire_form(item: wire.WorkItem) -> Optional[str]:
    """The item's encoded map (its frame body) in base64, or None if it cannot be encoded."""
    try:
        return base64.b64encode(wire.pack_map(item.to_map())).decode("ascii")
    except Exception:  # noqa: BLE001
        return None


def dead_letter_item(dlq_url: str, item: wire.WorkItem, code: str, message: str,
                     attempts: int, traceback: str = "") -> wire.SqsItem:
    return wire.SqsItem(id=item.id + DLQ_SUFFIX, request_id=item.request_id,
                        enqueued_us=time.time_ns() // 1000, queue_url=dlq_url,
                        body=dead_letter_body(item, code, message, attempts, traceback),
                        group_id=item.id if dlq_url.endswith(".fifo") else None)


def describe(item: wire.WorkItem, code: str, message: str, attempts: int,
             log_payloads: bool) -> Dict[str, Any]:
    """Fields for the log line of an item that is dead-lettered or given up on."""
    fields: Dict[str, Any] = {"item_id": item.id, "kind": item.kind, "target": item.target,
                    "request_id": item.request_id, "attempts": attempts,
                    "error_code": code, "error": message}
    if log_payloads:
        try:
            fields["item"] = json.loads(json.dumps(_json_keys(item.to_map()), default=_bytes_as_base64))
        except Exception as exc:  # noqa: BLE001 - a log line must not fail its item
            fields["item"] = f"(the item could not be written as JSON: {type(exc).__name__})"
    return fields


def describe_letter(letter: wire.WorkItem, log_payloads: bool) -> Dict[str, Any]:
    """Log fields of the item a queued dead letter stands for (read back from the letter)."""
    try:
        body = json.loads(letter.body)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - ValueError, or RecursionError for deep nesting
        return {"item_id": letter.id[:-len(DLQ_SUFFIX)], "kind": "unknown", "target": "unknown"}
    error = body.get("error") or {}
    fields: Dict[str, Any] = {"item_id": body.get("id"), "kind": body.get("kind"), "target": body.get("target"),
                    "request_id": body.get("request_id"), "attempts": body.get("attempts"),
                    "error_code": error.get("code"), "error": error.get("message")}
    if log_payloads:
        fields["item"] = body.get("item")
    return fields


def _bytes_as_base64(value: Any) -> Union[Dict[str, Any], str, None]:
    if isinstance(value, (bytes, bytearray)):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, msgpack.Timestamp):
        stamp: Any = value  # msgpack-types leaves out Timestamp's attributes
        return {"msgpack_timestamp": [stamp.seconds, stamp.nanoseconds]}
    if type(value).__name__ in ("UUID", "Decimal") and type(value).__module__ in ("uuid", "decimal"):
        return str(value)  # readable; the letter's wire form keeps the type
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
