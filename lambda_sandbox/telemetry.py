"""Telemetry API subscriptions: the request model and its validation.

Limits are the documented ones (maxItems 1000..10000, maxBytes 262144..1048576,
timeoutMs 25..30000); anything else is a 400 `ValidationError`, as in Lambda.
The destination host must be `sandbox.localdomain` (RIE-LMI's `sandbox` is accepted
too); the sandbox maps it to 127.0.0.1. `schemaVersion` is required, as the API reference
says; Managed Instances accept only `2025-01-29` (as RIE's Managed Instances build does).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Tuple
from urllib.parse import urlsplit

__all__ = ["Buffering", "Subscription", "SubscriptionError", "parse_subscription",
           "SCHEMA_VERSIONS", "MANAGED_SCHEMA_VERSIONS", "EVENT_TYPES"]

SCHEMA_VERSIONS = frozenset({"2022-07-01", "2022-12-13", "2025-01-29"})
MANAGED_SCHEMA_VERSIONS = frozenset({"2025-01-29"})
EVENT_TYPES = frozenset({"platform", "function", "extension"})
SANDBOX_HOSTS = frozenset({"sandbox.localdomain", "sandbox"})
_LIMITS = {"maxItems": (1000, 10000, 10000), "maxBytes": (262144, 1048576, 262144), "timeoutMs": (25, 30000, 1000)}


class SubscriptionError(ValueError):
    """The subscription request is invalid (rendered as 400 ValidationError)."""


@dataclass(frozen=True)
class Buffering:
    max_items: int = 10000
    max_bytes: int = 262144
    timeout_ms: int = 1000


@dataclass(frozen=True)
class Subscription:
    schema_version: str
    types: Tuple[str, ...]
    buffering: Buffering
    host: str
    port: int
    path: str


def _limit(buffering: Mapping[str, Any], key: str) -> int:
    low, high, default = _LIMITS[key]
    value = buffering.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SubscriptionError(f"buffering.{key} must be an integer in {low}..{high}, got {value!r}")
    return value


def parse_subscription(body: Any, *, managed: bool = False) -> Subscription:
    """Validate a `PUT /2022-07-01/telemetry` body; raises SubscriptionError.
    `managed`: the environment is a Managed Instance, which takes only the newest schema."""
    if not isinstance(body, Mapping):
        raise SubscriptionError("body must be a JSON object")
    allowed = MANAGED_SCHEMA_VERSIONS if managed else SCHEMA_VERSIONS
    schema = body.get("schemaVersion")
    if not isinstance(schema, str) or schema not in allowed:
        raise SubscriptionError(f"schemaVersion must be one of {sorted(allowed)}, got {schema!r}")
    types = body.get("types")
    if not isinstance(types, list) or not types or not all(isinstance(t, str) and t in EVENT_TYPES for t in types):
        raise SubscriptionError(f"types must be a non-empty subset of {sorted(EVENT_TYPES)}, got {types!r}")
    raw_buffering = body.get("buffering", {})
    if not isinstance(raw_buffering, Mapping):
        raise SubscriptionError("buffering must be an object")
    buffering = Buffering(_limit(raw_buffering, "maxItems"), _limit(raw_buffering, "maxBytes"),
                          _limit(raw_buffering, "timeoutMs"))
    destination = body.get("destination")
    if not isinstance(destination, Mapping) or destination.get("protocol") != "HTTP":
        raise SubscriptionError("destination.protocol must be HTTP (the sandbox does not implement TCP)")
    parts = urlsplit(str(destination.get("URI", "")))
    try:
        port = parts.port
    except ValueError:  # out of range or not a number
        port = None
    if parts.scheme != "http" or parts.hostname not in SANDBOX_HOSTS or not port:
        raise SubscriptionError(
            f"destination.URI must be http://sandbox.localdomain:PORT/..., got {destination.get('URI')!r}")
    return Subscription(schema, tuple(dict.fromkeys(types)), buffering, "127.0.0.1", port, parts.path or "/")
