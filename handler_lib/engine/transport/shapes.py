"""The request and reply shapes of the calls the lean clients make, from the services' models
(botocore/data/{sqs,sns,events}/*/service-2.json), cut to what the sinks send.

One description serves three purposes: checking a call's arguments before anything is sent
(as botocore's validator does: an unknown or missing member, a wrong type, an empty list, is a
``ParamValidationError`` naming the member), writing query-protocol forms (lists as
``member.N``, maps as ``entry.N.Name``/``.Value``) and reading XML replies.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, FrozenSet, Mapping, NamedTuple, Optional, Union

from .errors import ParamValidationError


class ListOf(NamedTuple):
    member: "Shape"
    min_items: int = 0


class MapOf(NamedTuple):
    value: "Shape"


class Struct(NamedTuple):
    members: Mapping[str, "Shape"]
    required: FrozenSet[str] = frozenset()


#: A scalar shape is the Python type its values have (bytes: a blob, base64 on the wire).
Shape = Union[type, ListOf, MapOf, Struct]

_ATTRIBUTE_VALUE = Struct({"DataType": str, "StringValue": str, "BinaryValue": bytes}, frozenset({"DataType"}))
_ATTRIBUTES = MapOf(_ATTRIBUTE_VALUE)
_SQS_MESSAGE: Dict[str, "Shape"] = {"MessageBody": str, "DelaySeconds": int, "MessageAttributes": _ATTRIBUTES,
                "MessageSystemAttributes": MapOf(_ATTRIBUTE_VALUE),
                "MessageDeduplicationId": str, "MessageGroupId": str}

SEND_MESSAGE_BATCH = Struct(
    {"QueueUrl": str,
     "Entries": ListOf(Struct({"Id": str, **_SQS_MESSAGE}, frozenset({"Id", "MessageBody"})), min_items=1)},
    frozenset({"QueueUrl", "Entries"}))
SEND_MESSAGE = Struct({"QueueUrl": str, **_SQS_MESSAGE}, frozenset({"QueueUrl", "MessageBody"}))
PUBLISH_BATCH = Struct(
    {"TopicArn": str,
     "PublishBatchRequestEntries": ListOf(Struct(
         {"Id": str, "Message": str, "Subject": str, "MessageStructure": str, "MessageAttributes": _ATTRIBUTES,
          "MessageDeduplicationId": str, "MessageGroupId": str}, frozenset({"Id", "Message"})), min_items=1)},
    frozenset({"TopicArn", "PublishBatchRequestEntries"}))
PUBLISH_BATCH_RESULT = Struct({
    "Successful": ListOf(Struct({"Id": str, "MessageId": str, "SequenceNumber": str})),
    "Failed": ListOf(Struct({"Id": str, "Code": str, "Message": str, "SenderFault": bool})),
})
PUT_EVENTS = Struct(
    {"Entries": ListOf(Struct({"Time": str, "Source": str, "Resources": ListOf(str), "DetailType": str,
                               "Detail": str, "EventBusName": str, "TraceHeader": str}), min_items=1)},
    frozenset({"Entries"}))


def validate(shape: Shape, value: Any, where: str = "") -> None:
    """Raise ``ParamValidationError`` naming the first member that does not fit ``shape``."""
    label = where or "the parameters"
    if isinstance(shape, Struct):
        if not isinstance(value, Mapping):
            raise ParamValidationError(f"Invalid type for parameter {label}: expected a dict, got {type(value).__name__}")
        missing = sorted(shape.required - set(value))
        if missing:
            raise ParamValidationError(f"Missing required parameter in {label}: {missing[0]!r}")
        for name, member in value.items():
            if name not in shape.members:
                raise ParamValidationError(f"Unknown parameter in {label}: {name!r}, must be one of: "
                                           f"{', '.join(shape.members)}")
            validate(shape.members[name], member, f"{where}.{name}" if where else name)
    elif isinstance(shape, ListOf):
        if not isinstance(value, (list, tuple)):
            raise ParamValidationError(f"Invalid type for parameter {label}: expected a list, got {type(value).__name__}")
        if len(value) < shape.min_items:
            raise ParamValidationError(f"Invalid length for parameter {label}: at least {shape.min_items} expected")
        for index, member in enumerate(value):
            validate(shape.member, member, f"{label}[{index}]")
    elif isinstance(shape, MapOf):
        if not isinstance(value, Mapping):
            raise ParamValidationError(f"Invalid type for parameter {label}: expected a dict, got {type(value).__name__}")
        for key, member in value.items():
            if not isinstance(key, str):
                raise ParamValidationError(f"Invalid type for a key of {label}: expected a str")
            validate(shape.value, member, f"{label}.{key}")
    else:
        _scalar(shape, value, label)


def _scalar(kind: type, value: Any, label: str) -> None:
    if kind is bytes:
        ok = isinstance(value, (bytes, bytearray))
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ParamValidationError(f"Invalid type for parameter {label}, value: {value!r:.80}, type: "
                                   f"{type(value).__name__}, valid types: {kind.__name__}")


def form_fields(shape: Shape, value: Any, prefix: str, out: Dict[str, str]) -> None:
    """``value`` flattened into query-protocol fields under ``prefix`` (botocore's QuerySerializer)."""
    if isinstance(shape, Struct):
        for name, member in value.items():
            form_fields(shape.members[name], member, f"{prefix}.{name}" if prefix else name, out)
    elif isinstance(shape, ListOf):
        if not value:
            out[prefix] = ""
        for index, member in enumerate(value, 1):
            form_fields(shape.member, member, f"{prefix}.member.{index}", out)
    elif isinstance(shape, MapOf):
        for index, (key, member) in enumerate(value.items(), 1):
            out[f"{prefix}.entry.{index}.Name"] = key
            form_fields(shape.value, member, f"{prefix}.entry.{index}.Value", out)
    else:
        out[prefix] = scalar_text(value)


def scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def from_xml(shape: Shape, node: Any) -> Any:
    """An XML reply's element read as ``shape`` (namespaces ignored), as botocore's QueryParser."""
    if isinstance(shape, Struct):
        parsed: Dict[str, Any] = {}
        children = {_local(child.tag): child for child in node}
        for name, member in shape.members.items():
            child = children.get(name)
            if child is not None:
                parsed[name] = from_xml(member, child)
        return parsed
    if isinstance(shape, ListOf):
        return [from_xml(shape.member, child) for child in node if _local(child.tag) == "member"]
    text = node.text or ""
    if shape is bool:
        return text.strip().lower() == "true"
    if shape is int:
        return int(text)
    return text


def child(node: Any, *path: str) -> Optional[Any]:
    """The first descendant along ``path`` of local names (namespaces ignored), or None."""
    for name in path:
        node = next((c for c in node if _local(c.tag) == name), None)
        if node is None:
            return None
    return node


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]

