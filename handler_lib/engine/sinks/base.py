"""The one send path shared by every AWS destination; adapters only shape requests and replies.

A sink turns one batch (same target, within the service's limits) into one API call and
returns an Outcome per item: the per-entry failures of the reply are read, and a failure of
the whole call becomes the same failure for every entry. botocore's exceptions stop here.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ... import wire

from ..outcome import INVALID_REQUEST, TRANSPORT, Outcome

# (code, message, sender_fault) per entry id that failed.
EntryFailures = Dict[str, Tuple[str, str, bool]]
#: What a sink needs to get its client: a service name in, a client out (engine.clients.ClientFactory
#: in production; a stub in unit tests).
MakeClient = Callable[[str], Any]


class Sink(ABC):
    service: str  # boto3 service name
    max_entries: int = 10
    max_batch_bytes: int = 262_144

    def __init__(self, client_factory: MakeClient) -> None:
        self._client_factory = client_factory
        self._client: Optional[Any] = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._client_factory(self.service)
        return self._client

    @abstractmethod
    def entry(self, item: Any, entry_id: str) -> Dict[str, Any]:
        """The request entry for one item."""

    @abstractmethod
    def entry_size(self, item: Any) -> int:
        """Bytes the item counts for against ``max_batch_bytes``, as the service counts them."""

    @abstractmethod
    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Make the batch API call."""

    def trace_skipped(self, item: Any) -> bool:
        """Whether the item's trace context did not fit in its message (SQS and SNS)."""
        return False

    def failures(self, response: Dict[str, Any], entries: List[Dict[str, Any]]) -> EntryFailures:
        """The failed entries of a reply: the ``Failed`` list that SQS and SNS batch replies share."""
        return {f["Id"]: (f.get("Code", "Unknown"), f.get("Message", ""), bool(f.get("SenderFault")))
                for f in response.get("Failed") or []}

    def send(self, target: str, items: Sequence[wire.WorkItem]) -> List[Outcome]:
        entries = [self.entry(item, str(index)) for index, item in enumerate(items)]
        try:
            response = self.call(target, entries)
        except Exception as exc:  # noqa: BLE001 - mapped to one outcome per entry below
            code, message, sender_fault = describe_exception(exc)
            status = http_status(exc)
            return [Outcome.failure(item.id, code, message, sender_fault=sender_fault, http_status=status)
                    for item in items]
        failed = self.failures(response, entries)
        outcomes = []
        for index, item in enumerate(items):
            failure = failed.get(str(index))
            if failure is None:
                outcomes.append(Outcome.success(item.id))
            else:
                code, message, sender_fault = failure
                outcomes.append(Outcome.failure(item.id, code, message, sender_fault=sender_fault))
        return outcomes


def describe_exception(exc: BaseException) -> Tuple[str, str, bool]:
    """Map a botocore/transport exception to (code, message, sender_fault)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response.get("Error") or {}
        code = str(error.get("Code") or type(exc).__name__)
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
        sender_fault = error.get("Type") == "Sender" or 400 <= int(status) < 500
        return code, str(error.get("Message") or exc), sender_fault
    if type(exc).__name__ == "ParamValidationError":  # botocore refused the request before sending it
        return INVALID_REQUEST, str(exc), True
    return TRANSPORT, f"{type(exc).__name__}: {exc}", False


def http_status(exc: BaseException) -> int:
    """The HTTP status of a botocore error's reply (0 when there was none): a 429 is throttling
    under any code (engine.outcome.is_throttling)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0
    try:
        return int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    except (TypeError, ValueError):
        return 0


def message_attributes(item: Any) -> Dict[str, Dict[str, Any]]:
    """The item's attributes in the SQS/SNS MessageAttributes shape, and ``defer_id``: its id."""
    shaped: Dict[str, Dict[str, Any]] = {wire.ID_ATTRIBUTE: {"DataType": "String", "StringValue": item.id}}
    for name, value in (item.attributes or {}).items():
        if isinstance(value, bytes):
            shaped[name] = {"DataType": "Binary", "BinaryValue": value}
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            shaped[name] = {"DataType": "Number", "StringValue": repr(value)}
        else:
            shaped[name] = {"DataType": "String", "StringValue": str(value)}
    return shaped


def trace_attributes(item: Any, body_bytes: int, max_message_bytes: int) -> Dict[str, Dict[str, str]]:
    """The item's W3C trace context as String attributes, where they fit: never in place of one
    of the caller's (at most ``MAX_ATTRIBUTES`` with ``defer_id`` and the tenant), never past the
    service's message size, and not at all when the caller sends a ``traceparent`` of their own.
    ``tracestate`` goes only beside ``traceparent``."""
    parent = item.traceparent
    attributes = item.attributes or {}
    if parent is None or wire.TRACEPARENT_ATTRIBUTE in attributes:
        return {}
    room = wire.MAX_ATTRIBUTES - 1 - len(attributes)
    size = body_bytes + wire.attributes_size(item.id, attributes)
    placed: Dict[str, Dict[str, str]] = {}
    for name, value in ((wire.TRACEPARENT_ATTRIBUTE, parent), (wire.TRACESTATE_ATTRIBUTE, item.tracestate)):
        if value is None or name in attributes:
            break
        size += len(name) + 6 + len(value)
        if room <= len(placed) or size > max_message_bytes:
            break
        placed[name] = {"DataType": "String", "StringValue": value}
    return placed


def message_size(item: Any, body_bytes: int, max_message_bytes: int) -> int:
    """An SQS or SNS message's bytes as the service counts them: body, attributes with
    ``defer_id``, and the trace context where it fits."""
    size = body_bytes + attributes_size(item)
    if item.traceparent is not None:
        for name, value in trace_attributes(item, body_bytes, max_message_bytes).items():
            size += len(name) + 6 + len(value["StringValue"])
    return size


def trace_skipped(item: Any, body_bytes: int, max_message_bytes: int) -> bool:
    """Whether part of the item's own trace context found no room (counted when it is delivered)."""
    if item.traceparent is None or wire.TRACEPARENT_ATTRIBUTE in (item.attributes or {}):
        return False
    wanted = 1 if item.tracestate is None else 2
    return len(trace_attributes(item, body_bytes, max_message_bytes)) < wanted


def fifo_fields(item: Any) -> Dict[str, str]:
    """FIFO group and deduplication id (the item id unless one was given), or nothing."""
    if item.group_id is None:
        return {}
    return {"MessageGroupId": item.group_id, "MessageDeduplicationId": item.dedup_id or item.id}


def attributes_size(item: Any) -> int:
    return wire.attributes_size(item.id, item.attributes)
