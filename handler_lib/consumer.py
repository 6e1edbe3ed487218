"""The receiving side: what a function fed by SQS, SNS or EventBridge reads of a deferred item.

A message lambda-defer sent carries its item's id (``defer_id``: the idempotency key), the
trace context of the invoke that deferred it (``traceparent``/``tracestate``) and, under
tenant isolation, its tenant (``defer_tenant_id``); a payload that went by S3 arrives as a
pointer in the format of AWS's extended clients. :func:`records` reads all of it from the
event, in one shape whatever the path: an SQS record (an SNS notification delivered raw, or
wrapped in SNS's envelope, or an EventBridge event a rule sent to the queue, are found inside
it), an SNS record, or an EventBridge event. The payload in S3 is fetched when ``body`` is
first read, so an idempotency check keyed on ``defer_id`` that skips a record never fetches
it (nor fails on an object deleted after the first delivery).

Powertools' BatchProcessor takes a :func:`record_handler` as its record handler, and
Powertools' Idempotency (``idempotent_function(data_keyword_argument="record",
config=IdempotencyConfig(event_key_jmespath="defer_id"), ...)``) reads a :class:`Record`
as it is: its ``dict()`` is the record's metadata. Powertools is never imported here.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, TypeVar, Union, overload

from . import wire

__all__ = ["Pointer", "Record", "records", "record", "record_handler"]

log = logging.getLogger("defer_runner.consumer")

#: The tenant of the invoke that deferred the item (message attribute; EventBridge detail field).
TENANT_ATTRIBUTE = "defer_tenant_id"
#: W3C trace context of the invoke that deferred the item (message attributes).
TRACEPARENT_ATTRIBUTE = "traceparent"
TRACESTATE_ATTRIBUTE = "tracestate"
#: What the Java extended client wrote before ``wire.POINTER_SIZE_ATTRIBUTE``; still read.
LEGACY_POINTER_SIZE_ATTRIBUTE = "SQSLargePayloadSize"

AttributeValue = Union[str, bytes]
R = TypeVar("R")


class Pointer(NamedTuple):
    """Where a payload sent by claim check lies."""

    bucket: str
    key: str
    size: Optional[int]  # the payload's size in bytes, as the sender gave it


_default_s3: Any = None
_s3_lock = threading.Lock()


def _s3_client() -> Any:
    """One S3 client for the process, made on the first payload to fetch (botocore's own:
    boto3 would add only its import)."""
    global _default_s3
    if _default_s3 is None:
        with _s3_lock:
            if _default_s3 is None:
                import botocore.session

                _default_s3 = botocore.session.get_session().create_client("s3")
    return _default_s3


class Record:
    """One message as its consumer needs it; ``body`` is the payload, fetched from S3 when
    the message is a pointer (on first read)."""

    __slots__ = ("defer_id", "message_id", "source", "tenant_id", "traceparent", "tracestate",
                 "attributes", "pointer", "raw", "_body", "_s3")

    def __init__(self, *, body: Optional[str], defer_id: Optional[str], message_id: Optional[str], source: str,
                 attributes: Dict[str, AttributeValue], tenant_id: Optional[str] = None,
                 traceparent: Optional[str] = None, tracestate: Optional[str] = None,
                 pointer: Optional[Pointer] = None, raw: Optional[Mapping[str, Any]] = None, s3: Any = None) -> None:
        self.defer_id = defer_id  # None: a message lambda-defer did not send
        self.message_id = message_id
        self.source = source  # "sqs", "sns" or "events": the service that delivered it to this function
        self.tenant_id = tenant_id
        self.traceparent = traceparent
        self.tracestate = tracestate
        self.attributes = attributes  # the message attributes, the pointer's size attribute left out
        self.pointer = pointer
        self.raw = raw  # the record (or event) as the function received it
        self._body = body
        self._s3 = s3

    @property
    def body(self) -> str:
        """The payload as it was deferred (UTF-8 text): from S3 for a pointer, once."""
        if self._body is None:
            assert self.pointer is not None
            s3 = self._s3 if self._s3 is not None else _s3_client()
            response = s3.get_object(Bucket=self.pointer.bucket, Key=self.pointer.key)
            self._body = response["Body"].read().decode("utf-8")
        return self._body

    def json(self) -> Any:
        """``body`` parsed as JSON."""
        return json.loads(self.body)

    def delete_payload(self) -> bool:
        """Delete the payload's S3 object (after the record's work is done); True if there was one."""
        if self.pointer is None:
            return False
        s3 = self._s3 if self._s3 is not None else _s3_client()
        s3.delete_object(Bucket=self.pointer.bucket, Key=self.pointer.key)
        return True

    def otel_context(self) -> Any:
        """The deferring invoke's trace as an OpenTelemetry Context, to parent (or link) the
        span that processes this record; None without a ``traceparent`` or without
        ``opentelemetry-api`` installed (it is never required)."""
        if self.traceparent is None:
            return None
        try:
            from opentelemetry.propagate import extract
        except ImportError:
            return None
        carrier = {TRACEPARENT_ATTRIBUTE: self.traceparent}
        if self.tracestate:
            carrier[TRACESTATE_ATTRIBUTE] = self.tracestate
        return extract(carrier)

    def dict(self) -> Dict[str, Any]:
        """The record's metadata, without the payload: what Powertools' Idempotency reads of a
        Record (key it on ``defer_id``); reading it never fetches from S3."""
        pointer = None if self.pointer is None else {"bucket": self.pointer.bucket, "key": self.pointer.key}
        return {"defer_id": self.defer_id, "message_id": self.message_id, "source": self.source,
                "tenant_id": self.tenant_id, "traceparent": self.traceparent, "tracestate": self.tracestate,
                "pointer": pointer}

    def __repr__(self) -> str:
        return f"Record(source={self.source!r}, defer_id={self.defer_id!r}, message_id={self.message_id!r})"


def records(event: Mapping[str, Any], *, s3: Any = None) -> List[Record]:
    """Every record of an SQS or SNS event, or the one of an EventBridge event.

    ``s3``: the client that fetches payloads sent by claim check (default: one made on first
    use)."""
    if not isinstance(event, Mapping):
        raise TypeError(f"expected a Lambda event (a dict), not {type(event).__name__}")
    if "Records" in event:
        return [_read(r, s3) for r in event["Records"]]
    if "detail-type" in event and "detail" in event:
        return [_event_record(event, s3)]
    raise ValueError("not an SQS, SNS or EventBridge event: no Records, and no detail-type and detail")


def record(raw: Any, *, s3: Any = None) -> Record:
    """One record: an SQS or SNS event record (a dict, or a Powertools event data class), an
    EventBridge event, or a message as boto3's ``receive_message`` returns it."""
    return _read(raw, s3)


def _read(raw: Any, s3: Any) -> Record:
    data = getattr(raw, "raw_event", raw)
    if not isinstance(data, Mapping):
        raise TypeError(f"expected an event record (a dict), not {type(raw).__name__}")
    if "Sns" in data:
        sns = data["Sns"]
        return _message("sns", sns.get("Message"), _sns_attributes(sns.get("MessageAttributes")),
                        sns.get("MessageId"), data, s3)
    if "detail-type" in data and "detail" in data:
        return _event_record(data, s3)
    body = data.get("body", data.get("Body"))
    attributes = _sqs_attributes(data.get("messageAttributes", data.get("MessageAttributes")))
    message_id = data.get("messageId", data.get("MessageId"))
    # SNS (not raw) and EventBridge put their envelope in the body and give the SQS message no
    # attributes of its own; a message that carries defer_id (or a pointer's size) was sent
    # by lambda-defer, and its body is the payload as deferred, whatever it looks like.
    sent_as_is = wire.ID_ATTRIBUTE in attributes or wire.POINTER_SIZE_ATTRIBUTE in attributes
    inner = None if sent_as_is else _envelope(body)
    if inner is not None and inner.get("Type") == "Notification":  # SNS to SQS, not raw
        return _message("sqs", inner.get("Message"), _sns_attributes(inner.get("MessageAttributes")),
                        message_id, data, s3)
    if inner is not None and "detail-type" in inner:  # an EventBridge rule's target
        found = _event_record(inner, s3)
        found.source, found.message_id, found.raw = "sqs", message_id, data
        return found
    return _message("sqs", body, attributes, message_id, data, s3)


@overload
def record_handler(fn: Callable[..., R], *, delete_payload: bool = False, s3: Any = None) -> Callable[..., R]: ...


@overload
def record_handler(fn: None = None, *, delete_payload: bool = False,
                   s3: Any = None) -> Callable[[Callable[..., R]], Callable[..., R]]: ...


def record_handler(fn: Optional[Callable[..., R]] = None, *, delete_payload: bool = False,
                   s3: Any = None) -> Union[Callable[..., R], Callable[[Callable[..., R]], Callable[..., R]]]:
    """Decorate ``fn(record: Record)`` into a record handler for Powertools' BatchProcessor
    (or any loop over raw records): it is called as ``fn(record=Record)``, the keyword
    Powertools' ``idempotent_function(data_keyword_argument="record")`` reads, and with
    ``lambda_context`` too when ``fn`` takes it. ``delete_payload``: once ``fn`` returns,
    delete the payload's S3 object (a failure to is logged; the record still succeeded)."""

    def decorate(fn: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(fn)
        def handle(record: Any, **kwargs: Any) -> R:
            found = record if isinstance(record, Record) else _read(record, s3)
            result = fn(record=found, **kwargs)
            if delete_payload and found.pointer is not None:
                try:
                    found.delete_payload()
                except Exception as exc:  # noqa: BLE001 - the work is done; a lifecycle rule expires it
                    log.warning("could not delete the payload s3://%s/%s of %s: %s", found.pointer.bucket,
                                found.pointer.key, found.defer_id, exc)
            return result

        return handle

    return decorate if fn is None else decorate(fn)


def _message(source: str, body: Any, attributes: Dict[str, AttributeValue], message_id: Optional[str],
             raw: Mapping[str, Any], s3: Any) -> Record:
    if not isinstance(body, str):
        raise ValueError(f"the {source} record has no message body")
    pointer = _pointer(body, attributes)
    kept = {k: v for k, v in attributes.items()
            if k not in (wire.POINTER_SIZE_ATTRIBUTE, LEGACY_POINTER_SIZE_ATTRIBUTE)}
    return Record(body=None if pointer is not None else body, defer_id=_text(kept.get(wire.ID_ATTRIBUTE)),
                  message_id=message_id, source=source, attributes=kept,
                  tenant_id=_text(kept.get(TENANT_ATTRIBUTE)), traceparent=_text(kept.get(TRACEPARENT_ATTRIBUTE)),
                  tracestate=_text(kept.get(TRACESTATE_ATTRIBUTE)), pointer=pointer, raw=raw, s3=s3)


def _event_record(event: Mapping[str, Any], s3: Any) -> Record:
    detail = event.get("detail")
    fields = detail if isinstance(detail, Mapping) else {}
    return Record(body=json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
                  defer_id=_text(fields.get(wire.ID_ATTRIBUTE)), message_id=event.get("id"), source="events",
                  attributes={}, tenant_id=_text(fields.get(TENANT_ATTRIBUTE)), raw=event, s3=s3)


def _pointer(body: str, attributes: Mapping[str, AttributeValue]) -> Optional[Pointer]:
    """The claim check's pointer, when the size attribute marks the message as one."""
    size = attributes.get(wire.POINTER_SIZE_ATTRIBUTE, attributes.get(LEGACY_POINTER_SIZE_ATTRIBUTE))
    if size is None:
        return None
    try:
        _, location = json.loads(body)
        bucket, key = location["s3BucketName"], location["s3Key"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"the message has {wire.POINTER_SIZE_ATTRIBUTE} but its body is not a payload pointer "
                         f"(expected [\"{wire.POINTER_CLASS}\", {{\"s3BucketName\": ..., \"s3Key\": ...}}]): "
                         f"{exc}") from None
    try:
        length: Optional[int] = int(size)
    except (TypeError, ValueError):
        length = None
    return Pointer(str(bucket), str(key), length)


def _envelope(body: Any) -> Optional[Dict[str, Any]]:
    """The JSON object an SQS body holds when SNS (not raw) or EventBridge wrapped the message."""
    if not isinstance(body, str) or not body.startswith("{"):
        return None
    try:
        inner = json.loads(body)
    except ValueError:
        return None
    if not isinstance(inner, dict):
        return None
    wrapped = ("Type" in inner and "TopicArn" in inner and "Message" in inner) or (
        "detail-type" in inner and "detail" in inner and "source" in inner)
    return inner if wrapped else None


def _sqs_attributes(attributes: Any) -> Dict[str, AttributeValue]:
    """SQS message attributes in the event's shape (stringValue) or boto3's (StringValue)."""
    found: Dict[str, AttributeValue] = {}
    for name, value in (attributes or {}).items():
        text = value.get("stringValue", value.get("StringValue"))
        if text is None:
            text = value.get("binaryValue", value.get("BinaryValue"))
        if text is not None:
            found[name] = text
    return found


def _sns_attributes(attributes: Any) -> Dict[str, AttributeValue]:
    """SNS message attributes ({"Type": ..., "Value": ...}); Binary values stay base64 text."""
    return {name: value["Value"] for name, value in (attributes or {}).items() if "Value" in value}


def _text(value: Optional[AttributeValue]) -> Optional[str]:
    return value if isinstance(value, str) else None
