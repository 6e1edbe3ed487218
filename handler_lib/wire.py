"""The IPC protocol between the function (``handler_lib``) and the defer-runner extension.

Both sides import this module and nothing else defines the format, so the two can never
drift apart. A frame is a 4-byte big-endian length followed by one msgpack map; every map
carries ``v`` (protocol version) and ``k`` (the kind). msgpack only: nothing received is
ever unpickled or evaluated, and a task is named by ``module:qualname``, never shipped as
code.

Frames, by kind:

- ``hello``  first frame of a connection: who is talking (pid, whether the Lambda
  handler is wrapped by ``@defer``, which tells the extension to wait for end-of-invoke
  markers, and whether the process reports each response its runtime posts, so that every
  invoke gets a marker, those an outer decorator answered without the ``@defer`` handler
  too: ``posts``; absent in older hellos, read as False). Nothing in it names code or paths: tasks are imported only from the function's
  code as the extension itself knows it.
- ``sqs`` / ``sns`` / ``event`` / ``task``  work items.
- ``invoke`` / ``sfn`` / ``callback``  work items too: a Lambda async invoke, a Step Functions
  start, a durable callback's completion.
- ``end``  end of one invoke: its request id and how many items it sent (and how many
  post-response callables ran and failed).
- ``after``  the handler has returned, and post-response work (``defer.after``) runs now:
  its ``end`` comes when that work is done, so the extension waits for it.

And from the extension back to the function, on the same connection:

- ``ack``  the answer to ``end``: how many of that invoke's items the extension holds
  (journaled, or in memory when the journal cannot take them), and when that is fewer than
  the handler sent, which ids it holds, so the handler delivers the rest itself.
- ``backlog``  the extension's queue went over (``on``) or back under its memory bound;
  while it is over, the handler delivers new items itself instead of sending them.

The journal uses the same maps, so a carried-over item is byte-for-byte what was sent.
"""

from __future__ import annotations

import struct
import sys
from typing import (Any, Callable, ClassVar, Dict, List, Literal, Optional, Tuple, Type, TypedDict, TypeVar,
                    Union)

import msgpack

from ._records import NamedTuple  # typing's, to the type checker; made without its checks (issue 22)

PROTOCOL_VERSION = 1
#: Largest frame either side accepts: an SQS message (1 MiB) plus its envelope.
MAX_FRAME_BYTES = 1_048_576 + 65_536
HEADER = struct.Struct(">I")

# A message attribute value as users give it; adapters map it to the service's shape.
AttributeValue = Union[str, int, float, bytes]
#: The message attribute (SQS, SNS) and detail field (EventBridge) that carries the item id,
#: the consumers' idempotency key.
ID_ATTRIBUTE = "defer_id"
#: The claim check, in the format of AWS's SQS and SNS extended clients: a payload kept in S3
#: travels as a message whose body is ``[POINTER_CLASS, {"s3BucketName": ..., "s3Key": ...}]``
#: and whose Number attribute ``POINTER_SIZE_ATTRIBUTE`` is the payload's size in bytes.
POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
POINTER_SIZE_ATTRIBUTE = "ExtendedPayloadSize"
#: Under Lambda tenant isolation: the attribute and detail field that carries the invoke's tenant.
TENANT_ATTRIBUTE = "defer_tenant_id"
#: The W3C trace context at the call (OpenTelemetry), as botocore's instrumentation names it.
TRACEPARENT_ATTRIBUTE = "traceparent"
TRACESTATE_ATTRIBUTE = "tracestate"
#: Message attributes SQS and SNS take per message.
MAX_ATTRIBUTES = 10


def attributes_size(item_id: str, attributes: Optional[Dict[str, Any]]) -> int:
    """Bytes of a message's attributes as SQS and SNS count them (name, value and data type,
    6 bytes for each type name), ``defer_id`` included: both sides size a batch by it."""
    size = len(ID_ATTRIBUTE) + len(item_id.encode()) + 6
    if not attributes:  # the usual message: defer_id alone
        return size
    for name, value in attributes.items():
        size += len(name.encode()) + 6 + (len(value) if isinstance(value, bytes) else len(str(value).encode()))
    return size


TYPE_CHECKING = False  # typing.TYPE_CHECKING, read as True by mypy: the TypedDicts here are the
if TYPE_CHECKING:      # checker's alone (typing checks each field when it makes one; issue 22)
    #: The one set of msgpack options for reading: any key type msgpack can write back as a
    #: hashable value (str, int, float, bytes, bool, None) is accepted, so what ``encode`` lets
    #: through, ``decode`` returns.
    class _UnpackOptions(TypedDict):
        raw: bool
        strict_map_key: bool
        max_bin_len: int
        max_str_len: int
        ext_hook: Callable[[int, bytes], Any]

    class _Common(TypedDict):
        """The fields every work item starts with."""

        id: str
        request_id: str
        enqueued_us: int


# Values a task argument may be besides msgpack's own types, each as an extension type, so a
# task receives what ``.defer()`` was given (JSON payloads carry them as text: a queue's
# consumer reads JSON, a task reads Python). Codes 1 and 2; any other code reads back as the
# ExtType it is.
EXT_UUID = 1
EXT_DECIMAL = 2


def _ext_default(value: Any) -> Any:
    modules = sys.modules  # a value of a class exists only once its module is loaded
    uuid, decimal = modules.get("uuid"), modules.get("decimal")
    if uuid is not None and isinstance(value, uuid.UUID):
        return msgpack.ExtType(EXT_UUID, value.bytes)
    if decimal is not None and isinstance(value, decimal.Decimal):
        return msgpack.ExtType(EXT_DECIMAL, str(value).encode("ascii"))
    raise TypeError(f"can not serialize {type(value).__name__!r} object")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_UUID and len(data) == 16:
        import uuid

        return uuid.UUID(bytes=data)
    if code == EXT_DECIMAL:
        import decimal

        try:
            return decimal.Decimal(data.decode("ascii"))
        except (UnicodeDecodeError, decimal.InvalidOperation):
            pass  # not one this module wrote: kept as it came
    return msgpack.ExtType(code, data)


_UNPACK_OPTIONS: _UnpackOptions = {"raw": False, "strict_map_key": False, "max_bin_len": MAX_FRAME_BYTES,
                      "max_str_len": MAX_FRAME_BYTES, "ext_hook": _ext_hook}


class FrameDecodeError(ValueError):
    """A frame that is not a valid protocol map: wrong size, not msgpack, unknown kind or version."""


# Each frame is a NamedTuple of its fields and a subclass that adds the class constant
# ``kind`` (a NamedTuple body cannot hold a constant that is not a field); the subclass adds
# no per-instance storage (``__slots__ = ()``) and reading a field costs the same.
class _HelloFields(NamedTuple):
    pid: int
    wrapped: bool = False
    posts: bool = False  # an end marker comes for every invoke, also one @defer was not called for


class Hello(_HelloFields):
    __slots__ = ()
    kind: ClassVar[Literal["hello"]] = "hello"

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "hello", "pid": self.pid, "wrapped": self.wrapped,
                "posts": self.posts}


class _EndOfInvokeFields(NamedTuple):
    request_id: str
    count: int  # type: ignore[assignment]  # a field named like tuple.count, which it shadows
    after_run: int = 0  # post-response callables (defer.after) that ran, and how many raised
    after_failed: int = 0


class EndOfInvoke(_EndOfInvokeFields):
    __slots__ = ()
    kind: ClassVar[Literal["end"]] = "end"

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "end", "rid": self.request_id, "n": self.count,
                "ar": self.after_run, "af": self.after_failed}


class _AfterResponseFields(NamedTuple):
    request_id: str


class AfterResponse(_AfterResponseFields):
    __slots__ = ()
    kind: ClassVar[Literal["after"]] = "after"

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "after", "rid": self.request_id}


class _AckFields(NamedTuple):
    request_id: str
    count: int  # type: ignore[assignment]  # shadows tuple.count; items of the invoke the extension holds
    ids: Optional[List[str]] = None  # which ones, sent only when count is short of the end marker's


class Ack(_AckFields):
    __slots__ = ()
    kind: ClassVar[Literal["ack"]] = "ack"

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "ack", "rid": self.request_id, "n": self.count,
                "ids": self.ids}


class _BacklogFields(NamedTuple):
    over: bool


class Backlog(_BacklogFields):
    __slots__ = ()
    kind: ClassVar[Literal["backlog"]] = "backlog"

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "backlog", "on": self.over}


class _SqsItemFields(NamedTuple):
    id: str
    request_id: str
    enqueued_us: int
    queue_url: str
    body: str
    group_id: Optional[str] = None
    dedup_id: Optional[str] = None
    delay_seconds: Optional[int] = None
    attributes: Optional[Dict[str, AttributeValue]] = None
    trace: Optional[str] = None  # the invoke's X-Ray trace header
    traceparent: Optional[str] = None  # the W3C trace context at the call (OpenTelemetry), sent
    tracestate: Optional[str] = None  # as message attributes where the user's leave room


class SqsItem(_SqsItemFields):
    __slots__ = ()
    kind: ClassVar[Literal["sqs"]] = "sqs"

    @property
    def target(self) -> str:
        return self.queue_url

    def to_map(self) -> Dict[str, Any]:
        frame = {"v": PROTOCOL_VERSION, "k": "sqs", "id": self.id, "rid": self.request_id,
                 "ts": self.enqueued_us, "url": self.queue_url, "body": self.body,
                 "group": self.group_id, "dedup": self.dedup_id, "delay": self.delay_seconds,
                 "attrs": self.attributes, "trace": self.trace}
        if self.traceparent is not None:  # only on an item that has one: most frames stay as before
            frame["tparent"], frame["tstate"] = self.traceparent, self.tracestate
        return frame


class _SnsItemFields(NamedTuple):
    id: str
    request_id: str
    enqueued_us: int
    topic_arn: str
    message: str
    subject: Optional[str] = None
    group_id: Optional[str] = None
    dedup_id: Optional[str] = None
    attributes: Optional[Dict[str, AttributeValue]] = None
    trace: Optional[str] = None
    traceparent: Optional[str] = None
    tracestate: Optional[str] = None


class SnsItem(_SnsItemFields):
    __slots__ = ()
    kind: ClassVar[Literal["sns"]] = "sns"

    @property
    def target(self) -> str:
        return self.topic_arn

    def to_map(self) -> Dict[str, Any]:
        frame = {"v": PROTOCOL_VERSION, "k": "sns", "id": self.id, "rid": self.request_id,
                 "ts": self.enqueued_us, "arn": self.topic_arn, "body": self.message,
                 "subject": self.subject, "group": self.group_id, "dedup": self.dedup_id,
                 "attrs": self.attributes, "trace": self.trace}
        if self.traceparent is not None:
            frame["tparent"], frame["tstate"] = self.traceparent, self.tracestate
        return frame


class _EventItemFields(NamedTuple):
    id: str
    request_id: str
    enqueued_us: int
    detail_type: str
    detail: str
    source: str
    bus: Optional[str] = None
    resources: Optional[List[str]] = None
    trace: Optional[str] = None


class EventItem(_EventItemFields):
    __slots__ = ()
    kind: ClassVar[Literal["event"]] = "event"

    @property
    def target(self) -> str:
        return self.bus or "default"

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "event", "id": self.id, "rid": self.request_id,
                "ts": self.enqueued_us, "detail_type": self.detail_type, "detail": self.detail,
                "source": self.source, "bus": self.bus, "resources": self.resources,
                "trace": self.trace}


class _TaskItemFields(NamedTuple):
    id: str
    request_id: str
    enqueued_us: int
    function: str  # "package.module:qualname"
    args: List[Any] = []
    kwargs: Dict[str, Any] = {}
    max_attempts: Optional[int] = None
    timeout_s: Optional[float] = None


class TaskItem(_TaskItemFields):
    __slots__ = ()
    kind: ClassVar[Literal["task"]] = "task"

    @property
    def target(self) -> str:
        return self.function

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "task", "id": self.id, "rid": self.request_id,
                "ts": self.enqueued_us, "fn": self.function, "args": self.args,
                "kwargs": self.kwargs, "max_attempts": self.max_attempts,
                "timeout": self.timeout_s}


class _InvokeItemFields(NamedTuple):
    id: str
    request_id: str
    enqueued_us: int
    function: str  # a function name, partial ARN or ARN
    payload: str  # JSON
    qualifier: Optional[str] = None
    durable_name: Optional[str] = None  # DurableExecutionName: given, or shaped from the id
    tenant_id: Optional[str] = None
    durable: bool = False  # the caller named the execution: the target is a durable function


class InvokeItem(_InvokeItemFields):
    __slots__ = ()
    kind: ClassVar[Literal["invoke"]] = "invoke"

    @property
    def target(self) -> str:
        return self.function if self.qualifier is None else f"{self.function}:{self.qualifier}"

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "invoke", "id": self.id, "rid": self.request_id,
                "ts": self.enqueued_us, "fn": self.function, "body": self.payload,
                "qualifier": self.qualifier, "name": self.durable_name, "tenant": self.tenant_id,
                "durable": self.durable}


class _SfnItemFields(NamedTuple):
    id: str
    request_id: str
    enqueued_us: int
    state_machine_arn: str
    input: str  # JSON
    name: str  # the execution name: given, or the item id
    trace: Optional[str] = None


class SfnItem(_SfnItemFields):
    __slots__ = ()
    kind: ClassVar[Literal["sfn"]] = "sfn"

    @property
    def target(self) -> str:
        return self.state_machine_arn

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "sfn", "id": self.id, "rid": self.request_id,
                "ts": self.enqueued_us, "arn": self.state_machine_arn, "body": self.input,
                "name": self.name, "trace": self.trace}


class _CallbackItemFields(NamedTuple):
    id: str
    request_id: str
    enqueued_us: int
    callback_id: str
    result: Optional[str] = None  # success: the result (JSON text), or None for none
    error: Optional[Dict[str, Any]] = None  # failure: ErrorMessage/ErrorType/ErrorData/StackTrace


class CallbackItem(_CallbackItemFields):
    __slots__ = ()
    kind: ClassVar[Literal["callback"]] = "callback"

    @property
    def target(self) -> str:
        return self.callback_id

    def to_map(self) -> Dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "k": "callback", "id": self.id, "rid": self.request_id,
                "ts": self.enqueued_us, "cb": self.callback_id, "body": self.result,
                "error": self.error}


WorkItem = Union[SqsItem, SnsItem, EventItem, TaskItem, InvokeItem, SfnItem, CallbackItem]
Frame = Union[Hello, EndOfInvoke, AfterResponse, Ack, Backlog, SqsItem, SnsItem, EventItem, TaskItem,
              InvokeItem, SfnItem, CallbackItem]
#: Every work item class: what a journal record or a dead letter may hold.
ITEM_TYPES = (SqsItem, SnsItem, EventItem, TaskItem, InvokeItem, SfnItem, CallbackItem)


def pack_map(payload: Dict[str, Any]) -> bytes:
    """msgpack-encode one map; ``TypeError`` names the value that cannot be sent."""
    try:
        return msgpack.packb(payload, use_bin_type=True, default=_ext_default)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"cannot serialize for deferral (msgpack: {exc}); "
                        "use str, int, float, bool, None, bytes, list, dict, UUID and Decimal values") from exc


# One packer for the frames whose maps hold msgpack's own types only, in containers this
# library built (dict, list) and checked scalars (str, int, float, bytes, bool, None):
# ``msgpack.packb`` makes a Packer, and its buffer, per call (~0.35 µs of a ~10 µs deferral).
# Shared by every thread, which is safe only because the C packer runs such a map from start
# to end without running Python code (no ``default``; no container of the caller's, whose
# methods it would call), so no other thread can run in between; on an error it empties its
# buffer. Task frames (the caller's arguments, of any type) and callback errors (the caller's
# StackTrace list) go through ``pack_map``. The pure-Python packer (MSGPACK_PUREPYTHON) is
# not shared.
_SHARED_PACK: Optional[Callable[[Any], bytes]] = (
    msgpack.Packer(use_bin_type=True).pack if msgpack.Packer.__module__ == "msgpack._cmsgpack" else None)
_SHARED_PACK_KINDS = frozenset({"hello", "end", "after", "ack", "backlog", "sqs", "sns", "event", "invoke", "sfn"})


def encode(frame: Frame) -> bytes:
    """Length-prefixed frame, ready for ``sendall``; refuses what ``decode`` could not read back."""
    kind = frame.kind
    if _SHARED_PACK is not None and kind in _SHARED_PACK_KINDS:
        try:
            body = _SHARED_PACK(frame.to_map())
        except (TypeError, ValueError, OverflowError):
            body = pack_map(frame.to_map())  # says which value cannot go (or packs a value of a subclass)
    else:
        body = pack_map(frame.to_map())
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"deferred item is {len(body)} bytes encoded; the limit is {MAX_FRAME_BYTES}")
    if kind == "task":  # the only frame holding caller-chosen values of any shape
        unpack_checked(body)
    return HEADER.pack(len(body)) + body


def unpack_checked(body: bytes) -> Any:
    """Read back what ``pack_map`` wrote, with decode's options; ``TypeError`` if it cannot be."""
    try:
        return msgpack.unpackb(body, **_UNPACK_OPTIONS)
    except Exception as exc:  # e.g. a tuple used as a dict key packs, but reads back unhashable
        raise TypeError(f"cannot serialize for deferral: the value would not read back ({exc}); "
                        "dict keys must be str, int, float, bytes, bool or None") from exc


def decode(body: bytes) -> Frame:
    """Decode one frame body (without its length prefix)."""
    if len(body) > MAX_FRAME_BYTES:
        raise FrameDecodeError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        payload = msgpack.unpackb(body, **_UNPACK_OPTIONS)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise FrameDecodeError(f"not a msgpack frame: {exc}") from exc
    return from_map(payload)


def decode_stored(body: bytes) -> Frame:
    """Decode an item a journal stored: as ``decode``, without the frame size cap (a journal
    may hold a record written under a larger one; it replays all the same)."""
    payload = msgpack.unpackb(body, raw=False, strict_map_key=False, ext_hook=_ext_hook)
    return from_map(payload)


def from_map(payload: Any) -> Frame:
    """Build the typed frame for one decoded map; the only place wire keys are read."""
    if not isinstance(payload, dict):
        raise FrameDecodeError(f"frame is a {type(payload).__name__}, not a map")
    if payload.get("v") != PROTOCOL_VERSION:
        raise FrameDecodeError(f"unsupported protocol version {payload.get('v')!r}")
    kind = payload.get("k")
    builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if builder is None:
        raise FrameDecodeError(f"unknown frame kind {kind!r}")
    try:
        return builder(payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameDecodeError(f"malformed {kind} frame: {exc!r}") from exc


def _str(payload: Dict[str, Any], key: str) -> str:
    value = payload[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


_T = TypeVar("_T")


def _opt(payload: Dict[str, Any], key: str, kind: Union[Type[_T], Tuple[Type[_T], ...]]) -> Optional[_T]:
    value: Optional[_T] = payload.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise TypeError(f"{key} has the wrong type {type(value).__name__}")
    return value


def _common(payload: Dict[str, Any]) -> _Common:
    ts = payload["ts"]
    if not isinstance(ts, int):
        raise TypeError("ts must be an int")
    return {"id": _str(payload, "id"), "request_id": _str(payload, "rid"), "enqueued_us": ts}


def _callback_error(payload: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """A callback failure's Error: str fields, and StackTrace a list of str."""
    error = _opt(payload, "error", dict)
    for key, value in (error or {}).items():
        if key == "StackTrace":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TypeError("error StackTrace must be a list of str")
        elif key not in ("ErrorMessage", "ErrorType", "ErrorData") or not isinstance(value, str):
            raise TypeError(f"error field {key!r} is not a str field of a callback error")
    return error


_BUILDERS: Dict[str, Callable[[Dict[str, Any]], Frame]] = {
    "hello": lambda p: Hello(pid=int(p["pid"]), wrapped=bool(p.get("wrapped")), posts=bool(p.get("posts"))),
    "end": lambda p: EndOfInvoke(request_id=_str(p, "rid"), count=int(p["n"]),
                                 after_run=_opt(p, "ar", int) or 0, after_failed=_opt(p, "af", int) or 0),
    "after": lambda p: AfterResponse(request_id=_str(p, "rid")),
    "ack": lambda p: Ack(request_id=_str(p, "rid"), count=int(p["n"]), ids=_opt(p, "ids", list)),
    "backlog": lambda p: Backlog(over=bool(p["on"])),
    "sqs": lambda p: SqsItem(**_common(p), queue_url=_str(p, "url"), body=_str(p, "body"),
                             group_id=_opt(p, "group", str), dedup_id=_opt(p, "dedup", str),
                             delay_seconds=_opt(p, "delay", int), attributes=_opt(p, "attrs", dict),
                             trace=_opt(p, "trace", str), traceparent=_opt(p, "tparent", str),
                             tracestate=_opt(p, "tstate", str)),
    "sns": lambda p: SnsItem(**_common(p), topic_arn=_str(p, "arn"), message=_str(p, "body"),
                             subject=_opt(p, "subject", str), group_id=_opt(p, "group", str),
                             dedup_id=_opt(p, "dedup", str), attributes=_opt(p, "attrs", dict),
                             trace=_opt(p, "trace", str), traceparent=_opt(p, "tparent", str),
                             tracestate=_opt(p, "tstate", str)),
    "event": lambda p: EventItem(**_common(p), detail_type=_str(p, "detail_type"),
                                 detail=_str(p, "detail"), source=_str(p, "source"),
                                 bus=_opt(p, "bus", str), resources=_opt(p, "resources", list),
                                 trace=_opt(p, "trace", str)),
    "task": lambda p: TaskItem(**_common(p), function=_str(p, "fn"), args=list(p.get("args") or []),
                               kwargs=dict(p.get("kwargs") or {}),
                               max_attempts=_opt(p, "max_attempts", int),
                               timeout_s=_opt(p, "timeout", (int, float))),
    "invoke": lambda p: InvokeItem(**_common(p), function=_str(p, "fn"), payload=_str(p, "body"),
                                   qualifier=_opt(p, "qualifier", str), durable_name=_opt(p, "name", str),
                                   tenant_id=_opt(p, "tenant", str), durable=p.get("durable") is True),
    "sfn": lambda p: SfnItem(**_common(p), state_machine_arn=_str(p, "arn"), input=_str(p, "body"),
                             name=_str(p, "name"), trace=_opt(p, "trace", str)),
    "callback": lambda p: CallbackItem(**_common(p), callback_id=_str(p, "cb"), result=_opt(p, "body", str),
                                       error=_callback_error(p)),
}


class FrameReader:
    """Incremental splitter for a byte stream; a bad length poisons the whole connection."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not complete yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> List[bytes]:
        """Return the complete frame bodies now available; raise FrameDecodeError on a bad length."""
        self._buf += data
        bodies: List[bytes] = []
        while len(self._buf) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buf)
            if length > MAX_FRAME_BYTES:
                raise FrameDecodeError(f"frame length {length} exceeds {MAX_FRAME_BYTES}")
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            bodies.append(bytes(self._buf[HEADER.size:end]))
            del self._buf[:end]
        return bodies
