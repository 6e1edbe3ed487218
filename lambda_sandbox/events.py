"""Typed model of every event the sandbox puts on the wire (and parses back).

One module for both directions so that the shapes the sandbox emits and the shapes
tests assert on cannot drift apart: Extensions API events (INVOKE, SHUTDOWN) and
Telemetry API records (`platform.*`, `function`, `extension`). Field names are
snake_case here and camelCase on the wire; `to_dict`/`from_dict` are the only
translation points.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar, Union

__all__ = [
    "Tracing", "InvokeEvent", "ShutdownEvent", "ExtensionEvent", "parse_extension_event",
    "Span", "RuntimeDoneMetrics", "ReportMetrics", "InitReportMetrics",
    "InitStart", "InitRuntimeDone", "InitReport", "PlatformStart", "RuntimeDone",
    "PlatformReport", "ExtensionState", "TelemetrySubscription", "LogsDropped",
    "Record", "TelemetryEvent", "iso_time", "LATEST_SCHEMA",
]

#: the newest Telemetry API schema version; records are built in it and cut down per subscriber
LATEST_SCHEMA = "2025-01-29"
_IRREGULAR = {"memory_size_mb": "memorySizeMB", "max_memory_used_mb": "maxMemoryUsedMB", "uri": "URI"}
_T = TypeVar("_T", bound="_Wire")


def _camel(name: str) -> str:
    if name in _IRREGULAR:
        return _IRREGULAR[name]
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def iso_time(epoch_s: float) -> str:
    """ISO 8601 UTC with milliseconds, the format of Telemetry `time` and span `start`."""
    moment = _dt.datetime.fromtimestamp(epoch_s, tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class _Wire:
    """Base: generic camelCase (de)serialisation; `None` fields are omitted (omitempty)."""

    NESTED: ClassVar[Dict[str, Type["_Wire"]]] = {}

    #: fields a Telemetry schema version introduced: older subscribers do not get them
    SINCE: ClassVar[Dict[str, str]] = {}

    def to_dict(self, schema: str = LATEST_SCHEMA) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or self.SINCE.get(f.name, schema) > schema:
                continue
            if isinstance(value, _Wire):
                value = value.to_dict(schema)
            elif isinstance(value, tuple):
                value = [v.to_dict(schema) if isinstance(v, _Wire) else v for v in value]
            out[_camel(f.name)] = value
        return out

    @classmethod
    def from_dict(cls: Type[_T], data: Mapping[str, Any]) -> _T:
        kwargs: Dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = _camel(f.name)
            if key not in data:
                continue
            value = data[key]
            nested = cls.NESTED.get(f.name)
            if nested is not None and isinstance(value, list):
                value = tuple(nested.from_dict(v) for v in value)
            elif nested is not None and isinstance(value, Mapping):
                value = nested.from_dict(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[f.name] = value
        return cls(**kwargs)


# --- Extensions API events -------------------------------------------------------------

@dataclass(frozen=True)
class Tracing(_Wire):
    value: str
    type: str = "X-Amzn-Trace-Id"
    span_id: Optional[str] = None


@dataclass(frozen=True)
class InvokeEvent(_Wire):
    """INVOKE as `/extension/event/next` returns it; the payload is never included."""

    request_id: str
    deadline_ms: int
    invoked_function_arn: str
    tracing: Optional[Tracing] = None
    event_type: str = "INVOKE"
    NESTED: ClassVar[Dict[str, Type[_Wire]]] = {"tracing": Tracing}


@dataclass(frozen=True)
class ShutdownEvent(_Wire):
    """SHUTDOWN; `shutdown_reason` is lower-case as emitted (`spindown|timeout|failure`)."""

    deadline_ms: int
    shutdown_reason: str
    event_type: str = "SHUTDOWN"


ExtensionEvent = Union[InvokeEvent, ShutdownEvent]


def parse_extension_event(data: Mapping[str, Any]) -> ExtensionEvent:
    """Decode a `/event/next` body; unknown event types raise ValueError."""
    kind = str(data.get("eventType", "")).upper()
    if kind == "INVOKE":
        return InvokeEvent.from_dict(data)
    if kind == "SHUTDOWN":
        return ShutdownEvent.from_dict(data)
    raise ValueError(f"unknown extension event type {data.get('eventType')!r}")


# --- Telemetry API records ------------------------------------------------------------
# Built with every field of the newest schema; `to_dict(schema)` leaves out what a
# subscriber's older `schemaVersion` does not have (each record's SINCE). The fields of
# 2025-01-29 are those of its OAS as AWS's own emulator for it (RIE's Managed Instances
# build) emits them. No stored source lists a difference between 2022-07-01 and 2022-12-13,
# so those two get the same shapes.
_V2025 = "2025-01-29"

@dataclass(frozen=True)
class Span(_Wire):
    name: str
    start: str
    duration_ms: float


@dataclass(frozen=True)
class RuntimeDoneMetrics(_Wire):
    duration_ms: float
    produced_bytes: Optional[int] = None


@dataclass(frozen=True)
class ReportMetrics(_Wire):
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: Optional[float] = None


@dataclass(frozen=True)
class InitReportMetrics(_Wire):
    duration_ms: float


@dataclass(frozen=True)
class _Record(_Wire):
    TYPE: ClassVar[str] = ""


@dataclass(frozen=True)
class InitStart(_Record):
    TYPE: ClassVar[str] = "platform.initStart"
    SINCE: ClassVar[Dict[str, str]] = {"function_name": _V2025, "function_version": _V2025,
                                       "instance_id": _V2025, "instance_max_memory": _V2025}
    initialization_type: str = "on-demand"
    phase: str = "init"
    runtime_version: Optional[str] = None
    runtime_version_arn: Optional[str] = None
    function_name: Optional[str] = None
    function_version: Optional[str] = None
    instance_id: Optional[str] = None
    instance_max_memory: Optional[int] = None  # bytes


@dataclass(frozen=True)
class InitRuntimeDone(_Record):
    TYPE: ClassVar[str] = "platform.initRuntimeDone"
    initialization_type: str = "on-demand"
    phase: str = "init"
    status: str = "success"
    error_type: Optional[str] = None


@dataclass(frozen=True)
class InitReport(_Record):
    TYPE: ClassVar[str] = "platform.initReport"
    NESTED: ClassVar[Dict[str, Type[_Wire]]] = {"metrics": InitReportMetrics}
    metrics: InitReportMetrics = InitReportMetrics(0.0)
    initialization_type: str = "on-demand"
    phase: str = "init"
    status: str = "success"
    error_type: Optional[str] = None


@dataclass(frozen=True)
class PlatformStart(_Record):
    TYPE: ClassVar[str] = "platform.start"
    NESTED: ClassVar[Dict[str, Type[_Wire]]] = {"tracing": Tracing}
    SINCE: ClassVar[Dict[str, str]] = {"function_arn": _V2025}
    request_id: str = ""
    version: Optional[str] = None
    function_arn: Optional[str] = None
    tracing: Optional[Tracing] = None


@dataclass(frozen=True)
class RuntimeDone(_Record):
    TYPE: ClassVar[str] = "platform.runtimeDone"
    NESTED: ClassVar[Dict[str, Type[_Wire]]] = {"metrics": RuntimeDoneMetrics, "spans": Span, "tracing": Tracing}
    request_id: str = ""
    status: str = "success"
    error_type: Optional[str] = None
    metrics: Optional[RuntimeDoneMetrics] = None
    spans: Optional[Tuple[Span, ...]] = None
    tracing: Optional[Tracing] = None


@dataclass(frozen=True)
class PlatformReport(_Record):
    TYPE: ClassVar[str] = "platform.report"
    NESTED: ClassVar[Dict[str, Type[_Wire]]] = {"metrics": ReportMetrics, "spans": Span, "tracing": Tracing}
    request_id: str = ""
    status: str = "success"
    metrics: ReportMetrics = ReportMetrics(0.0, 0, 0, 0)
    error_type: Optional[str] = None
    spans: Optional[Tuple[Span, ...]] = None
    tracing: Optional[Tracing] = None


@dataclass(frozen=True)
class ExtensionState(_Record):
    TYPE: ClassVar[str] = "platform.extension"
    name: str = ""
    state: str = "Ready"
    events: Tuple[str, ...] = ()
    error_type: Optional[str] = None


@dataclass(frozen=True)
class TelemetrySubscription(_Record):
    TYPE: ClassVar[str] = "platform.telemetrySubscription"
    name: str = ""
    state: str = "Subscribed"
    types: Tuple[str, ...] = ()


@dataclass(frozen=True)
class LogsDropped(_Record):
    TYPE: ClassVar[str] = "platform.logsDropped"
    dropped_bytes: int = 0
    dropped_records: int = 0
    reason: str = ""


_RECORDS: Dict[str, Type[_Record]] = {
    cls.TYPE: cls
    for cls in (InitStart, InitRuntimeDone, InitReport, PlatformStart, RuntimeDone,
                PlatformReport, ExtensionState, TelemetrySubscription, LogsDropped)
}
#: what a telemetry event carries: a typed `platform.*` record, or a function or extension log line
Record = Union[_Record, str]


@dataclass(frozen=True)
class TelemetryEvent:
    """The envelope `{"time", "type", "record"}`; `record` is a typed record or a log line."""

    type: str
    record: Record
    time: str = field(default_factory=lambda: iso_time(_dt.datetime.now().timestamp()))

    @classmethod
    def of(cls, record: Record, *, log_type: str = "function", time: Optional[str] = None) -> "TelemetryEvent":
        kind = record.TYPE if isinstance(record, _Record) else log_type
        return cls(type=kind, record=record, time=time or iso_time(_dt.datetime.now().timestamp()))

    @property
    def category(self) -> str:
        """The subscription type that selects this event: platform, function or extension."""
        return "platform" if self.type.startswith("platform.") else self.type

    def to_dict(self, schema: str = LATEST_SCHEMA) -> Dict[str, Any]:
        """The wire form for a subscriber of `schema`."""
        record = self.record.to_dict(schema) if isinstance(self.record, _Record) else self.record
        return {"time": self.time, "type": self.type, "record": record}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TelemetryEvent":
        kind = str(data["type"])
        raw = data.get("record")
        record_cls = _RECORDS.get(kind)
        record: Any = record_cls.from_dict(raw) if record_cls and isinstance(raw, Mapping) else raw
        return cls(type=kind, record=record, time=str(data.get("time", "")))
