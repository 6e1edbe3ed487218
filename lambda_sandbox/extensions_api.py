"""Extensions API 2020-01-01 and the Telemetry API subscription endpoint.

A registration under the name of a launched file is that external extension (the
documented rule); any other name is an internal extension (a thread of the runtime),
INVOKE only, as in Lambda and RIE; in managed-instances mode external extensions get SHUTDOWN
only and internal ones no events (INVOKE is refused with 403 `Extension.InvalidEventType`,
`INVOKE: ErrorInvalidEventType`, as RIE's Managed Instances build answers);
`next` is the extension's "done" signal and a long poll without timeout. Error types
and status codes follow RIE (403 for identifier and state errors).
"""
from __future__ import annotations

import json
import time
import uuid
from functools import partial
from typing import Optional, Tuple

from .config import ACCOUNT_ID, MAX_EXTENSIONS
from .errors import ErrorType
from .events import ExtensionState, TelemetrySubscription
from .httpserver import Request, Response, Router, error_response, json_response
from .host import Host
from .state import ExtensionSlot, Phase
from .telemetry import SubscriptionError, parse_subscription

__all__ = ["install"]

_BASE = "/2020-01-01/extension"
_EVENTS = frozenset({"INVOKE", "SHUTDOWN"})
_CONTAINER_ERROR = "Container error. Non-recoverable state. Extension should exit promptly."


def install(router: Router, host: Host) -> None:
    router.add("POST", f"{_BASE}/register", partial(_register, host))
    router.add("GET", f"{_BASE}/event/next", partial(_next, host))
    router.add("POST", f"{_BASE}/init/error", partial(_report_error, host, True))
    router.add("POST", f"{_BASE}/exit/error", partial(_report_error, host, False))
    router.add("PUT", "/2022-07-01/telemetry", partial(_subscribe, host))
    router.add("PUT", "/2020-08-15/logs", _logs_not_supported)


def _forbidden(error_type: str, message: str) -> Response:
    return error_response(403, error_type, message)


def _identify(host: Host, request: Request) -> Tuple[Optional[ExtensionSlot], Optional[Response]]:
    """The caller's slot, or the documented 403 (caller must hold no lock)."""
    raw = request.header("Lambda-Extension-Identifier")
    if not raw:
        return None, _forbidden(ErrorType.MISSING_EXTENSION_ID, "Missing Lambda-Extension-Identifier header")
    try:
        uuid.UUID(raw)
    except ValueError:
        return None, _forbidden(ErrorType.INVALID_EXTENSION_ID, "Invalid Lambda-Extension-Identifier")
    with host.cond:
        slot = host.env.slot_by_id(raw) if host.env is not None else None
    if slot is None:
        return None, _forbidden(ErrorType.UNKNOWN_EXTENSION_ID, f"Unknown extension identifier {raw}")
    return slot, None


def _register(host: Host, request: Request) -> Response:
    name = request.header("Lambda-Extension-Name")
    if not name:
        return _forbidden(ErrorType.INVALID_EXTENSION_NAME, "Empty extension name")
    try:
        body = request.json()
        events = body.get("events", []) if isinstance(body, dict) else None
        if (not isinstance(events, list) or not all(isinstance(e, str) for e in events)
                or (isinstance(body, dict) and body.get("configurationKeys"))):
            raise ValueError("body must be {\"events\": [\"INVOKE\"|\"SHUTDOWN\", ...]} "
                             "(configurationKeys are not supported)")
    except ValueError as exc:
        return _forbidden(ErrorType.INVALID_REQUEST_FORMAT, str(exc))
    unknown = [e for e in events if e not in _EVENTS]
    if unknown:
        return _forbidden(ErrorType.INVALID_EVENT_TYPE, f"{unknown[0]}: ErrorInvalidEventType")
    with host.cond:
        env = host.env
        if env is None or env.phase is not Phase.INIT or not env.registration_open:
            return _forbidden(ErrorType.REGISTRATION_CLOSED, "Extension registration closed already")
        slot = env.slot_by_name(name)
        if host.config.managed and "INVOKE" in events:  # no per-invoke event on Managed Instances
            if slot is None:
                return _forbidden(ErrorType.INVALID_EVENT_TYPE, "No events allowed for internal extensions")
            return _forbidden(ErrorType.INVALID_EVENT_TYPE, "INVOKE: ErrorInvalidEventType")
        if slot is None:  # no such file in /opt/extensions: an internal extension, as Lambda and RIE take it
            if "SHUTDOWN" in events:
                return _forbidden(ErrorType.INVALID_EVENT_TYPE,
                                  f"SHUTDOWN: ShutdownEventNotSupportedForInternalExtension ({name!r} is no file "
                                  "in /opt/extensions, so it registers as an internal extension)")
            if len(env.extensions) >= MAX_EXTENSIONS:
                return _forbidden(ErrorType.TOO_MANY_EXTENSIONS, f"the limit is {MAX_EXTENSIONS} extensions")
            slot = ExtensionSlot(name, None)
            env.extensions.append(slot)
        if slot.ext_id is not None:
            return _forbidden(ErrorType.INVALID_EXTENSION_STATE, f"Extension {name} is already registered")
        slot.ext_id = str(uuid.uuid4())
        slot.events = frozenset(events)
        host.emit(env, ExtensionState(name=name, state="Ready", events=tuple(events)))
        host.cond.notify_all()
    payload = {"functionName": host.config.function_name, "functionVersion": host.config.function_version,
               "handler": host.config.handler}
    features = {f.strip() for f in (request.header("Lambda-Extension-Accept-Feature") or "").split(",")}
    if "accountId" in features:
        payload["accountId"] = ACCOUNT_ID
    return json_response(200, payload, {"Lambda-Extension-Identifier": slot.ext_id})


def _next(host: Host, request: Request) -> Response:
    slot, problem = _identify(host, request)
    if problem is not None:
        return problem
    assert slot is not None
    with host.cond:
        env = host.env
        if env is None or slot not in env.extensions:
            return error_response(500, ErrorType.INTERNAL, _CONTAINER_ERROR)
        if slot.error_type is not None:
            return _forbidden(ErrorType.INVALID_EXTENSION_STATE, f"{slot.name} reported an error; it should exit")
        if not slot.pending:
            slot.in_next = True
            slot.next_at = time.monotonic()
            host.cond.notify_all()
            host.wait_until(lambda: bool(slot.pending) or host.env is not env, None, interruptible=False)
        if not slot.pending:
            return error_response(500, ErrorType.INTERNAL, _CONTAINER_ERROR)
        event = slot.pending.popleft()
        slot.in_next = False
    return json_response(200, event.to_dict(), {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})


def _report_error(host: Host, during_init: bool, request: Request) -> Response:
    slot, problem = _identify(host, request)
    if problem is not None:
        return problem
    assert slot is not None
    error_type = request.header("Lambda-Extension-Function-Error-Type")
    if not error_type:
        return _forbidden(ErrorType.MISSING_HEADER, "Missing Lambda-Extension-Function-Error-Type header")
    with host.cond:
        env = host.env
        slot.error_type = error_type
        if during_init and env is not None and env.phase is Phase.INIT:
            env.fail(ErrorType.EXTENSION_INIT_ERROR, f"{slot.name}: {error_type}")
        host.cond.notify_all()
    which = "init" if during_init else "exit"
    host.log(f"lambda_sandbox: extension {slot.name} posted {which}/error {error_type}: "
           f"{request.body.decode('utf-8', 'replace')[:500]}")
    return json_response(202, {"status": "OK"})


def _subscribe(host: Host, request: Request) -> Response:
    slot, problem = _identify(host, request)
    if problem is not None:
        return problem
    assert slot is not None
    try:
        subscription = parse_subscription(request.json(), managed=host.config.managed)
    except (SubscriptionError, ValueError) as exc:
        return error_response(400, ErrorType.VALIDATION, str(exc))
    with host.cond:
        env = host.env
        if env is None or env.phase is not Phase.INIT:
            return _forbidden(ErrorType.SUBSCRIPTION_CLOSED, "Telemetry API subscriptions are accepted during init only")
        env.hub.subscribe(slot.name, subscription)
        host.emit(env, TelemetrySubscription(name=slot.name, state="Subscribed", types=subscription.types))
    return Response(200, json.dumps("OK").encode())


def _logs_not_supported(request: Request) -> Response:
    return json_response(202, {"errorMessage": "Logs API is not supported by lambda_sandbox; use the Telemetry API",
                               "errorType": "Logs.NotSupported"})
