"""Turn the arguments of ``defer.sqs/sns/event/call`` into wire items, or fail at the call site.

Every check that can be made in the handler is made here, so bad input raises where it
entered (``TypeError`` / ``ValueError`` naming the limit or the fix) and nothing is queued.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from enum import Enum
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from . import wire
from ._ids import new_id

#: Service limits (bytes are UTF-8 sizes, as the services count them).
SQS_MAX_MESSAGE_BYTES = 1_048_576
SNS_MAX_MESSAGE_BYTES = 262_144
EVENT_MAX_ENTRY_BYTES = 1_048_576  # since 2026-01-29 (it was 256 KB)
#: With DEFER_LARGE_PAYLOAD_BUCKET, the largest SQS or SNS payload (body and attributes): what
#: one hand-off to the extension carries. Over the threshold it travels by S3.
LARGE_PAYLOAD_MAX_BYTES = SQS_MAX_MESSAGE_BYTES
TASK_MAX_ARGS_BYTES = 262_144
MAX_ATTRIBUTES = wire.MAX_ATTRIBUTES
#: The String message attribute that carries the item id on SQS and SNS, for consumers to
#: deduplicate on: it takes one of the 10 attributes, so a message has at most 9 of yours.
ID_ATTRIBUTE = wire.ID_ATTRIBUTE
SQS_MAX_DELAY_SECONDS = 900
MAX_GROUP_ID_CHARS = 128
SNS_MAX_SUBJECT_CHARS = 100
EVENT_MAX_TRACE_HEADER_CHARS = 500
#: Set by the Lambda runtime for each invoke: the X-Ray trace header the item carries on.
ENV_TRACE_ID = "_X_AMZN_TRACE_ID"

def now_us() -> int:
    return time.time_ns() // 1000


# The trace of the running ``@defer``-wrapped invoke, read once when it starts (the runtime
# sets the variable before it calls the handler; os.environ.get costs ~0.4 µs a call);
# outside such an invoke it is read at each call.
READ_AT_CALL: Any = object()
invoke_trace: Any = READ_AT_CALL


def _trace() -> Optional[str]:
    trace = invoke_trace
    if trace is READ_AT_CALL:
        return os.environ.get(ENV_TRACE_ID) or None
    return trace  # type: ignore[no-any-return]


#: The tenant of the running ``@defer``-wrapped invoke under Lambda tenant isolation
#: (``context.tenant_id``), None otherwise: SQS/SNS messages carry it as ``defer_tenant_id``,
#: EventBridge details as a field of that name, ``defer.invoke`` as its TenantId.
TENANT_ATTRIBUTE = wire.TENANT_ATTRIBUTE
invoke_tenant: Optional[str] = None
# What Lambda's TenantId may hold (Invoke's model): a context.tenant_id outside it is not one
# Lambda gave, and is not carried. Compiled by re's cache on first use: not at import.
TENANT_ID = r"[a-zA-Z0-9._:/=+\-@ ]{1,256}"


def tenant_of(context: Any) -> Optional[str]:
    """``context.tenant_id`` when the invoke has a tenant (awslambdaric 3.1 and later set it)."""
    tenant = getattr(context, "tenant_id", None)
    if isinstance(tenant, str) and re.fullmatch(TENANT_ID, tenant):
        return tenant
    return None


# The OpenTelemetry trace context at the call: ``_otel.current`` once a span can be current
# (``opentelemetry.trace`` loaded by the application); until then nothing is imported for it.
_otel_current: Optional[Callable[[], Optional[tuple[str, Optional[str]]]]] = None


def _trace_context() -> tuple[Optional[str], Optional[str]]:
    global _otel_current
    current = _otel_current
    if current is None:
        if "opentelemetry.trace" not in sys.modules:
            return None, None
        from . import _otel

        current = _otel_current = _otel.current
    headers = current()
    return (None, None) if headers is None else headers


# ``defer.json_default``: the user's encoder for types the built-in rules do not cover.
_user_default: Optional[Callable[[Any], Any]] = None


def set_json_default(fn: Optional[Callable[[Any], Any]]) -> None:
    """Install (or, with None, remove) the hook that encodes types the built-in rules do not."""
    global _user_default
    if fn is not None and not callable(fn):
        raise TypeError(f"json_default must be a function of one value, or None, not {type(fn).__name__}")
    _user_default = fn


def json_default() -> Optional[Callable[[Any], Any]]:
    return _user_default


# A Decimal that is not a whole number goes out as its exact digits, which json cannot write
# from ``default``: it writes a marked string, and the marks (a per-process random private-use
# prefix, found only in strings this module wrote) are stripped with their quotes afterwards.
_NUMBER_MARK = "\ue000" + os.urandom(6).hex() + ":"
# (patterns here are compiled by re's cache on first use, not at import: the wrapped
# handler's cold start loads this module, and the four compiles cost ~0.7 ms there; issue 22)
_MARKED_NUMBER = '"' + re.escape(_NUMBER_MARK) + r'([-+.0-9Ee]+)"'


def _decimal(value: Any) -> Any:
    if not value.is_finite():
        raise ValueError(f"Decimal {value} is not a JSON number")
    if value.adjusted() < 64 and value == value.to_integral_value():
        return int(value)
    return _NUMBER_MARK + str(value)


def _record(value: Any) -> Optional[Dict[str, Any]]:
    """A dataclass instance or pydantic v2 model as a dict (pydantic's own JSON form), else None."""
    if hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type):
        fields = sys.modules["dataclasses"].fields  # loaded: the value's class was made by it
        return {f.name: getattr(value, f.name) for f in fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        record: Dict[str, Any] = dump(mode="json")
        return record
    return None


def _encode_default(value: Any) -> Any:
    """What JSON has no type for. A class is looked up only when its module is loaded (a value
    of it cannot exist otherwise), so none of these imports is paid at cold start."""
    modules = sys.modules
    decimal = modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        return _decimal(value)
    dt = modules.get("datetime")
    if dt is not None and isinstance(value, dt.date):  # datetime is a date too
        return value.isoformat()
    uuid = modules.get("uuid")
    if uuid is not None and isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    record = _record(value)
    if record is not None:
        return record
    if _user_default is not None:
        return _user_default(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable "
                    "(set defer.json_default to encode your own types)")


# One encoder, built once: json.dumps with non-default arguments builds a JSONEncoder on
# every call (measured: 0.6 µs of a 7.4 µs defer.sqs with a 1 KB dict). ``default`` runs only
# for values JSON has no type for, so plain payloads pay nothing for it.
_JSON_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                                default=_encode_default).encode


def to_text(value: Any, what: str) -> str:
    """A str is sent as is; a dict, list, dataclass or pydantic model is JSON-encoded.

    ``TypeError``: a value of a type JSON cannot carry (and no ``defer.json_default`` for it).
    ``ValueError``: a value JSON cannot carry (NaN, infinity, a circular or too deep structure).
    """
    if isinstance(value, str):
        return value
    data = value if isinstance(value, (dict, list)) else _record(value)
    if data is None:
        raise TypeError(f"{what} must be a str, dict, list, dataclass or pydantic model, "
                        f"not {type(value).__name__}")
    try:
        text = _JSON_ENCODE(data)
    except TypeError as exc:
        raise TypeError(f"{what} is not JSON-serializable: {exc}") from exc
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to encode as JSON") from None
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from exc
    if _NUMBER_MARK in text:
        text = re.sub(_MARKED_NUMBER, r"\1", text)
    return text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _not_unicode(what: str, exc: UnicodeEncodeError) -> ValueError:
    """A lone surrogate, which no service accepts, found when the UTF-8 size is taken."""
    return ValueError(f"{what} is not valid Unicode: a lone surrogate at position {exc.start}")


# What SQS takes in a message body and a String attribute value (SendMessage: "#x9 | #xA |
# #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"; anything else is refused
# with InvalidMessageContents); held to for SNS too, which delivers to SQS subscriptions. The
# regular expression only finds the offender for the message: a search over every body costs
# ~3 µs a KB. The check itself: the other C0 controls are bytes of their own in UTF-8 (no
# multibyte sequence has a byte below 0x80), found by mapping them to NUL and looking for NUL
# (~0.7 µs a KB); U+FFFE and U+FFFF by a search of the str (a no-op unless it holds characters
# that wide); lone surrogates fail the UTF-8 encoding. JSON written by ``to_text`` escapes
# every C0 control, so an ASCII one needs no check at all.
SERVICE_TEXT = "#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF"
_NOT_SERVICE_TEXT = "[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"  # compiled on first refusal:
# its compile is 5 ms, more than the rest of this module's import, and only an error needs it
_CONTROLS = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D}
_CONTROLS_TO_NUL = bytes.maketrans(bytes(sorted(_CONTROLS)), bytes(len(_CONTROLS)))


def _bad_text(what: str, text: str, service: str) -> ValueError:
    found = re.search(_NOT_SERVICE_TEXT, text)
    where = f"U+{ord(found.group()):04X} at position {found.start()}" if found else "a character"
    return ValueError(f"{what} holds {where}, which {service} does not accept "
                      f"(allowed: {SERVICE_TEXT})")


def _service_text(text: str, what: str, service: str, json_written: bool = False) -> int:
    """The UTF-8 size of a body or String attribute value, refusing what SQS/SNS would:
    no character at all, or one outside ``SERVICE_TEXT``."""
    if text.isascii():
        if not text:
            raise ValueError(f"{what} is empty; {service} needs at least one character")
        if not json_written and 0 in text.encode().translate(_CONTROLS_TO_NUL):
            raise _bad_text(what, text, service)
        return len(text)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _not_unicode(what, exc) from None
    if "\uffff" in text or "\ufffe" in text or (not json_written and 0 in data.translate(_CONTROLS_TO_NUL)):
        raise _bad_text(what, text, service)
    return len(data)


# Message attribute names (SQS and SNS): A-Z a-z 0-9 _ - . only, up to 256 characters, not
# starting or ending with a period, no two in a row, and not starting with AWS. or Amazon.
# in any casing (reserved). Handlers use a few names over and over: those seen to pass are
# remembered (up to _KNOWN_NAMES_MAX), so the check is one set lookup.
MAX_ATTRIBUTE_NAME_CHARS = 256
_ATTRIBUTE_NAME = r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*"
_RESERVED_PREFIXES = ("aws.", "amazon.")
_KNOWN_NAMES_MAX = 1024
_known_names: set[str] = set()
#: SQS Number attributes: "between 10^-128 and 10^+126" in magnitude (or 0).
SQS_NUMBER_MIN, SQS_NUMBER_MAX = 1e-128, 1e126
_INF = float("inf")


def _check_attribute_name(name: str) -> None:
    if name in _known_names:
        return
    if not re.fullmatch(_ATTRIBUTE_NAME, name) or len(name) > MAX_ATTRIBUTE_NAME_CHARS:
        raise ValueError(f"attribute name {name!r} is not one SQS and SNS accept: up to "
                         f"{MAX_ATTRIBUTE_NAME_CHARS} of A-Z a-z 0-9 _ - and ., not starting or ending "
                         "with a period, without two periods in a row")
    if name.lower().startswith(_RESERVED_PREFIXES):
        raise ValueError(f"attribute name {name!r} starts with a prefix AWS reserves (AWS. or Amazon., "
                         "in any casing)")
    if len(_known_names) < _KNOWN_NAMES_MAX:
        _known_names.add(name)


def _check_attribute_value(name: str, value: Any, service: str) -> None:
    """``value`` is str, int, float or bytes (not bool)."""
    if isinstance(value, float):
        if value != value or value in (_INF, -_INF):
            raise ValueError(f"attribute {name!r} is {value}: a Number attribute must be a finite number")
        if service == "SQS" and value and not SQS_NUMBER_MIN <= abs(value) <= SQS_NUMBER_MAX:
            raise ValueError(f"attribute {name!r} is {value!r}: SQS takes Number attributes "
                             "between 1e-128 and 1e126 in magnitude (or 0)")
    elif isinstance(value, bytes):
        if not value:
            raise ValueError(f"attribute {name!r} is empty; {service} needs a value")
    elif isinstance(value, str):
        if not (value.isascii() and value.isprintable()):  # the usual value, #x20-#x7E only, in 2 C calls
            _service_text(value, f"attribute {name!r}", service)
        elif not value:
            raise ValueError(f"attribute {name!r} is empty; {service} needs a value")


#: The attributes that mark a message as a pointer to its payload in S3: ExtendedPayloadSize,
#: and SQSLargePayloadSize, which the Java extended client wrote before it (still read as one
#: by the extended clients and by ``handler_lib.consumer``).
_POINTER_SIZE_ATTRIBUTES = (wire.POINTER_SIZE_ATTRIBUTE, "SQSLargePayloadSize")


def _attributes(attributes: Optional[Mapping[str, Any]], item_id: str,
                service: str) -> tuple[Optional[Dict[str, Any]], int]:
    """Validate message attributes; return them with their size as the services count it,
    ``defer_id`` included (refusing a 10th attribute rather than sending no id: a consumer can
    rely on every message carrying it), and under tenant isolation ``defer_tenant_id`` (the
    same rule: a consumer can rely on every message of a tenant's invoke naming it)."""
    tenant = invoke_tenant
    if attributes is None:
        if tenant is None:
            return None, wire.attributes_size(item_id, None)
        attributes = {}
    elif not isinstance(attributes, Mapping):
        raise TypeError(f"attributes must be a dict of name -> str/int/float/bytes, not {type(attributes).__name__}")
    reserved = 1 if tenant is None or TENANT_ATTRIBUTE in attributes else 2
    if len(attributes) > MAX_ATTRIBUTES - reserved:
        tenant_note = f" and one {TENANT_ATTRIBUTE} (this invoke's tenant)" if reserved == 2 else ""
        raise ValueError(f"{len(attributes)} message attributes; the services allow {MAX_ATTRIBUTES} and "
                         f"one is {ID_ATTRIBUTE} (the item id){tenant_note}, so at most "
                         f"{MAX_ATTRIBUTES - reserved}")
    for name, value in attributes.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"attribute name {name!r} must be a non-empty str")
        if name == ID_ATTRIBUTE:
            raise ValueError(f"attribute {ID_ATTRIBUTE!r} is set by lambda-defer to the item id; use another name")
        if name in _POINTER_SIZE_ATTRIBUTES:
            raise ValueError(f"attribute {name!r} marks a payload kept in S3 (the extended clients' claim check); "
                             "lambda-defer sets it when DEFER_LARGE_PAYLOAD_BUCKET is set; use another name")
        if isinstance(value, bool) or not isinstance(value, (str, int, float, bytes)):
            raise TypeError(f"attribute {name!r} must be str, int, float or bytes, not {type(value).__name__}")
        _check_attribute_name(name)
        _check_attribute_value(name, value, service)
    shaped = dict(attributes)
    if tenant is not None:
        shaped.setdefault(TENANT_ATTRIBUTE, tenant)  # one the caller set stands: told otherwise
    return shaped, wire.attributes_size(item_id, shaped)


def _check_group(target: str, group_id: Optional[str], dedup_id: Optional[str], service: str) -> None:
    fifo = target.endswith(".fifo")
    if fifo and not group_id:
        raise ValueError(f"{target} is a FIFO {service}: pass group_id= (messages with the same group id keep their order)")
    if not fifo and (group_id is not None or dedup_id is not None):
        raise ValueError(f"group_id and dedup_id are for FIFO targets (names ending in .fifo), not {target}")
    if group_id is not None and not _fifo_id(group_id):
        raise ValueError(_bad_fifo_id("group_id", group_id))
    if dedup_id is not None and not _fifo_id(dedup_id):
        raise ValueError(_bad_fifo_id("dedup_id", dedup_id))


def _fifo_id(value: Any) -> bool:
    """A MessageGroupId or MessageDeduplicationId (SQS and SNS): 1 to 128 characters, each
    alphanumeric or punctuation (!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~), that is ASCII 0x21 to
    0x7E: printable ASCII but the space (three C calls: a third of a regular expression's cost)."""
    return (isinstance(value, str) and 0 < len(value) <= MAX_GROUP_ID_CHARS and value.isascii()
            and value.isprintable() and " " not in value)


def _bad_fifo_id(what: str, value: Any) -> str:
    rule = (f"{what} must be a str of 1 to {MAX_GROUP_ID_CHARS} characters, each a letter, a digit or ASCII "
            "punctuation")
    if not isinstance(value, str) or not value or len(value) > MAX_GROUP_ID_CHARS:
        return rule
    position = next(i for i, c in enumerate(value) if not "!" <= c <= "~")
    return f"{rule}: position {position} is {value[position]!r}"


def _check_target(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty str, not {value!r}")
    return value


def _message(service: str, noun: str, target: str, message: Any, attributes: Optional[Mapping[str, Any]],
             group_id: Optional[str], dedup_id: Optional[str], limit: int,
             item_id: str, offload_above: Optional[int] = None) -> tuple[str, Optional[Dict[str, Any]]]:
    """The checks SQS and SNS messages share: target, body, attributes, size, FIFO group.
    ``offload_above``: the claim check's threshold (a bucket is set), else None."""
    _check_target(target, "queue_url" if noun == "queue" else "topic_arn")
    what = f"{service} message"
    body = to_text(message, what)
    attrs, attrs_size = _attributes(attributes, item_id, service)
    size = _service_text(body, what, service, json_written=not isinstance(message, str)) + attrs_size
    if offload_above is not None:
        if size > offload_above and len(attrs or ()) + 2 > MAX_ATTRIBUTES:
            raise ValueError(f"{service} message is {size} bytes, over {offload_above}: it goes by S3 with the "
                             f"{wire.POINTER_SIZE_ATTRIBUTE} attribute, and with {ID_ATTRIBUTE} and yours that "
                             f"would be {len(attrs or ()) + 2} attributes; {service} allows {MAX_ATTRIBUTES}")
        if size > LARGE_PAYLOAD_MAX_BYTES:
            raise ValueError(f"{service} message is {size} bytes with its attributes; through "
                             f"DEFER_LARGE_PAYLOAD_BUCKET lambda-defer carries up to {LARGE_PAYLOAD_MAX_BYTES}")
    elif size > limit:
        raise ValueError(f"{service} message is {size} bytes with its attributes; {service} allows {limit} "
                         "(set DEFER_LARGE_PAYLOAD_BUCKET to send larger ones by S3)")
    _check_group(target, group_id, dedup_id, noun)
    return body, attrs


def sqs_item(request_id: str, queue_url: str, message: Any, *, group_id: Optional[str],
             dedup_id: Optional[str], delay_seconds: Optional[int],
             attributes: Optional[Mapping[str, Any]], offload_above: Optional[int] = None) -> wire.SqsItem:
    item_id = new_id()
    body, attrs = _message("SQS", "queue", queue_url, message, attributes, group_id, dedup_id,
                           SQS_MAX_MESSAGE_BYTES, item_id, offload_above)
    if delay_seconds is not None:
        if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int) or not 0 <= delay_seconds <= SQS_MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must be an int in 0..{SQS_MAX_DELAY_SECONDS}")
        if queue_url.endswith(".fifo"):
            raise ValueError("FIFO queues do not take a per-message delay_seconds; set DelaySeconds on the queue")
    return wire.SqsItem(item_id, request_id, now_us(), queue_url, body, group_id, dedup_id,
                        delay_seconds, attrs, _trace(), *_trace_context())



def queued_task_item(queue_url: str, task: wire.TaskItem) -> wire.SqsItem:
    """The SQS message of a ``@defer.task(queue=...)`` call: the task item in its wire form,
    under the task item's own id (the worker passes it as ``defer_id``). FIFO queues get one
    message group per task (its name, each character past ASCII as ``_``), deduplicated by the id."""
    from . import _task_queue

    body = _task_queue.body_of(task)
    fifo = queue_url.endswith(".fifo")
    # the task's name, whose letters may be any Unicode (a group id's are printable ASCII)
    group_id = "".join(c if "!" <= c <= "~" else "_" for c in task.function)[-MAX_GROUP_ID_CHARS:] if fifo else None
    dedup_id = task.id if fifo else None
    body, attrs = _message("SQS", "queue", queue_url, body, None, group_id, dedup_id,
                           SQS_MAX_MESSAGE_BYTES, task.id)
    return wire.SqsItem(task.id, task.request_id, task.enqueued_us, queue_url, body, group_id, dedup_id,
                        None, attrs, _trace(), *_trace_context())

# SNS Subject: "no line breaks or control characters" (C0, DEL, C1), nor what no text may hold.
_CONTROL_CHARACTER = "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]"


def sns_item(request_id: str, topic_arn: str, message: Any, *, subject: Optional[str],
             group_id: Optional[str], dedup_id: Optional[str],
             attributes: Optional[Mapping[str, Any]], offload_above: Optional[int] = None) -> wire.SnsItem:
    item_id = new_id()
    body, attrs = _message("SNS", "topic", topic_arn, message, attributes, group_id, dedup_id,
                           SNS_MAX_MESSAGE_BYTES, item_id, offload_above)
    if subject is not None and (not isinstance(subject, str) or not subject
                                or len(subject) > SNS_MAX_SUBJECT_CHARS or re.search(_CONTROL_CHARACTER, subject)):
        raise ValueError(f"subject must be one line of 1..{SNS_MAX_SUBJECT_CHARS} characters, "
                         "without control characters")
    return wire.SnsItem(item_id, request_id, now_us(), topic_arn, body, subject, group_id,
                        dedup_id, attrs, _trace(), *_trace_context())


def _with_field(text: str, name: str, value: str, has_fields: bool) -> str:
    """JSON object text with one more string field, first: the caller's text is kept as written
    (spacing, order, number spellings), which decoding and encoding it again would not keep."""
    start = text.index("{") + 1
    field = json.dumps(name) + ":" + json.dumps(value) + ("," if has_fields else "")
    return text[:start] + field + text[start:]


def event_item(request_id: str, detail_type: Any, detail: Any, *, source: Any, bus: Optional[str],
               resources: Optional[Sequence[str]]) -> wire.EventItem:
    _check_target(detail_type, "detail_type")
    _check_target(source, "source")
    item_id = new_id()
    if not isinstance(detail, (str, dict, list)):
        detail = _record(detail) or detail  # a dataclass or model is an object like a dict
    tenant = invoke_tenant
    if isinstance(detail, dict) and ("defer_id" not in detail or (tenant is not None and TENANT_ATTRIBUTE not in detail)):
        detail = {**detail}
        detail.setdefault("defer_id", item_id)  # the idempotency key, for consumers
        if tenant is not None:
            detail.setdefault(TENANT_ATTRIBUTE, tenant)
    text = to_text(detail, "event detail")
    if isinstance(detail, str):
        try:
            parsed = json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise ValueError(f"event detail must be a JSON object: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ValueError("event detail must be a JSON object, not a JSON array or scalar")
        if tenant is not None and TENANT_ATTRIBUTE not in parsed:
            text = _with_field(text, TENANT_ATTRIBUTE, tenant, bool(parsed))
    elif not isinstance(detail, dict):
        raise ValueError("event detail must be a JSON object (a dict), not a list")
    if bus is not None:
        _check_target(bus, "bus")
    res: Optional[List[str]] = None
    if resources is not None:
        if isinstance(resources, str) or not all(isinstance(r, str) for r in resources):
            raise TypeError("resources must be a list of ARN strings")
        res = list(resources)
    try:
        size = _utf8_len(text)
    except UnicodeEncodeError as exc:
        raise _not_unicode("event detail", exc) from None
    size += 14 + _utf8_len(detail_type) + _utf8_len(source) + sum(_utf8_len(r) for r in res or ())
    if size > EVENT_MAX_ENTRY_BYTES:
        raise ValueError(f"EventBridge entry is {size} bytes; PutEvents allows {EVENT_MAX_ENTRY_BYTES}")
    trace = _trace()
    if trace is not None and len(trace) > EVENT_MAX_TRACE_HEADER_CHARS:
        trace = None  # PutEvents would refuse the entry; the event matters more than its trace
    return wire.EventItem(item_id, request_id, now_us(), detail_type, text, source, bus, res, trace)


def task_item(request_id: str, function: str, args: Sequence[Any], kwargs: Mapping[str, Any], *,
              max_attempts: Optional[int], timeout_s: Optional[float]) -> wire.TaskItem:
    """The item as the extension will decode it (tuples become lists, IntEnum an int, ...), so
    the task sees the same values wherever it runs, and what the runner cannot read fails here."""
    for key in kwargs:
        if not isinstance(key, str) or not key.isidentifier():
            raise TypeError(f"keyword argument names must be identifiers, not {key!r}")
    item = wire.TaskItem(new_id(), request_id, now_us(), function, list(args), dict(kwargs),
                         max_attempts, timeout_s)
    size = len(wire.pack_map({"a": item.args, "k": item.kwargs}))
    if size > TASK_MAX_ARGS_BYTES:
        raise ValueError(f"task arguments are {size} bytes encoded; the limit is {TASK_MAX_ARGS_BYTES}")
    return round_trip(item)  # type: ignore[return-value]


def round_trip(item: wire.WorkItem) -> wire.WorkItem:
    """``item`` encoded and decoded by the wire codec, as the extension receives it."""
    try:
        return wire.decode(wire.pack_map(item.to_map()))  # type: ignore[return-value]
    except wire.FrameDecodeError as exc:
        raise TypeError(f"the defer-runner could not read this {item.kind} item back: {exc}") from None
