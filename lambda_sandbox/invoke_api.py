"""RIE's invoke endpoint: `POST /2015-03-31/functions/function/invocations`.

The reply is written as soon as the runtime posts its response, while extensions may
still be running (the difference from RIE). Headers follow Lambda's Invoke API:
`X-Amzn-RequestId`, `X-Amz-Executed-Version`, and `X-Amz-Function-Error` on errors.
"""
from __future__ import annotations

import base64
import binascii
from functools import partial
from typing import Optional

from .httpserver import Request, Response, Router
from .lifecycle import Lifecycle
from .state import InvokeRequest

__all__ = ["install", "INVOKE_PATH"]

INVOKE_PATH = "/2015-03-31/functions/function/invocations"


def install(router: Router, lc: Lifecycle) -> None:
    router.add("POST", INVOKE_PATH, partial(_invoke, lc))


def _client_context(raw: Optional[str]) -> Optional[str]:
    """The header is base64 JSON; the runtime receives the decoded JSON."""
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return raw


def _invoke(lc: Lifecycle, request: Request) -> Response:
    invoke = InvokeRequest(
        payload=request.body or b"{}",
        trace_id=request.header("X-Amzn-Trace-Id"),
        client_context=_client_context(request.header("X-Amz-Client-Context")),
    )
    outcome = lc.invoke(invoke)
    headers = {"X-Amzn-RequestId": outcome.request_id, "X-Amz-Executed-Version": lc.host.config.function_version}
    if outcome.function_error:
        headers["X-Amz-Function-Error"] = outcome.function_error
    return Response(outcome.status, outcome.body, headers, outcome.content_type)
