"""Runtime API 2018-06-01, as awslambdaric calls it.

`next` is a long poll that returns the invoke payload with the Lambda-Runtime-* headers;
it is also the runtime's "done" signal, which produces `platform.runtimeDone`.
Responses for an unknown (or already answered) request id get 400 InvalidRequestID,
as in RIE; in managed-instances mode several workers poll `next` at once, each takes the
oldest waiting invoke, and a response is matched by its request id; a response over 6 MiB
gets 413 and the caller a ResponseSizeTooLarge error.
"""
from __future__ import annotations

import json
import time
from functools import partial
from typing import Optional

from .config import MAX_RESPONSE_BYTES
from .errors import ErrorType, error_body
from .events import InitRuntimeDone
from .httpserver import Request, Response, Router, error_response, json_response
from .host import Host
from .metrics import runtime_done_record
from .state import Environment, Invocation, Phase

__all__ = ["install"]

_BASE = "/2018-06-01/runtime"
_CONTAINER_ERROR = "Container error. Non-recoverable state. Runtime should exit promptly."


def install(router: Router, host: Host) -> None:
    router.add("GET", f"{_BASE}/invocation/next", partial(_next, host))
    router.add("POST", f"{_BASE}/invocation/{{request_id}}/response", partial(_response, host))
    router.add("POST", f"{_BASE}/invocation/{{request_id}}/error", partial(_error, host))
    router.add("POST", f"{_BASE}/init/error", partial(_init_error, host))


def _next(host: Host, request: Request) -> Response:
    with host.cond:
        env = host.env
        if env is None or env.phase is Phase.SHUTDOWN:
            return error_response(500, ErrorType.INTERNAL, _CONTAINER_ERROR)
        now = time.monotonic()
        env.runtime_in_next = True
        inv = host.invocation
        if env.phase is Phase.INIT and env.runtime_ready_at is None:
            env.runtime_ready_at = now
            host.emit(env, InitRuntimeDone(initialization_type=host.config.initialization_type, phase=env.init_phase))
        elif inv is not None and inv.response_at is not None and inv.runtime_done_at is None:
            inv.runtime_done_at = now
            host.emit(env, runtime_done_record(inv))
        host.cond.notify_all()
        inv = _take_concurrent(host, env) if host.config.managed else _take(host, env)
        if inv is None:
            return error_response(500, ErrorType.INTERNAL, _CONTAINER_ERROR)
        inv.delivered_at = time.monotonic()
    headers = {
        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
        "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
        "Lambda-Runtime-Invoked-Function-Arn": host.config.function_arn,
    }
    if inv.request.trace_id:
        headers["Lambda-Runtime-Trace-Id"] = inv.request.trace_id
    if inv.request.client_context:
        headers["Lambda-Runtime-Client-Context"] = inv.request.client_context
    if inv.request.cognito_identity:
        headers["Lambda-Runtime-Cognito-Identity"] = inv.request.cognito_identity
    if inv.request.tenant_id:
        headers["Lambda-Runtime-Aws-Tenant-Id"] = inv.request.tenant_id
    return Response(200, inv.request.payload, headers)


def _take(host: Host, env: Environment) -> Optional[Invocation]:
    """The invoke for the only runtime (`cond` held); None once the environment is gone."""
    host.wait_until(lambda: env.runtime_pending is not None or host.env is not env, None, interruptible=False)
    if host.env is not env or env.runtime_pending is None:
        return None
    inv, env.runtime_pending = env.runtime_pending, None
    return inv


def _take_concurrent(host: Host, env: Environment) -> Optional[Invocation]:
    """The oldest waiting invoke, for one of several workers polling at once (`cond` held)."""
    host.wait_until(lambda: bool(env.waiting) or host.env is not env or env.phase is Phase.SHUTDOWN, None,
                    interruptible=False)
    if host.env is not env or not env.waiting or env.phase is Phase.SHUTDOWN:
        return None
    inv = env.waiting.popleft()
    env.active[inv.request_id] = inv
    return inv


def _accept(host: Host, request: Request, body: bytes, error_type: "str | None") -> Response:
    with host.cond:
        if host.config.managed:
            inv = host.env.active.pop(request.params["request_id"], None) if host.env is not None else None
        else:
            inv = host.invocation
        if (inv is None or inv.request_id != request.params["request_id"] or inv.delivered_at is None
                or inv.response_at is not None):
            return error_response(400, ErrorType.INVALID_REQUEST_ID, "Invalid request ID")
        inv.response_at = time.monotonic()
        if len(body) > MAX_RESPONSE_BYTES:
            inv.error_type = ErrorType.RESPONSE_TOO_LARGE
            inv.response_body = error_body(ErrorType.RESPONSE_TOO_LARGE,
                                           f"Response payload size ({len(body)} bytes) exceeded maximum allowed "
                                           f"payload size ({MAX_RESPONSE_BYTES} bytes).")
            host.cond.notify_all()
            return error_response(413, ErrorType.ENTITY_TOO_LARGE,
                                  f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).")
        inv.response_body = body
        inv.error_type = error_type
        inv.content_type = request.header("Content-Type") or "application/json"
        host.cond.notify_all()
    return json_response(202, {"status": "OK"})


def _response(host: Host, request: Request) -> Response:
    return _accept(host, request, request.body, None)


def _error_type(request: Request) -> str:
    header = request.header("Lambda-Runtime-Function-Error-Type")
    if header:
        return header
    try:
        return str(json.loads(request.body).get("errorType") or "Runtime.Unknown")
    except (ValueError, AttributeError):
        return "Runtime.Unknown"


def _error(host: Host, request: Request) -> Response:
    return _accept(host, request, request.body, _error_type(request))


def _init_error(host: Host, request: Request) -> Response:
    error_type = _error_type(request)
    with host.cond:
        env = host.env
        if env is None or env.phase is not Phase.INIT:
            return error_response(403, ErrorType.INVALID_STATE_TRANSITION, "init/error is only valid during init")
        try:
            message = str(json.loads(request.body).get("errorMessage", ""))
        except (ValueError, AttributeError):
            message = request.body.decode("utf-8", "replace")
        env.init_error_body = request.body or None
        env.fail(error_type, message)
        host.cond.notify_all()
    return json_response(202, {"status": "OK"})
