"""RIE's invoke endpoint: `POST /2015-03-31/functions/function/invocations`.

The reply is written as soon as the runtime posts its response, while extensions may
still be running (the difference from RIE). Headers follow Lambda's Invoke API:
`X-Amzn-RequestId`, `X-Amz-Executed-Version`, and `X-Amz-Function-Error` on errors. Request
headers read: `X-Amzn-Trace-Id`, `X-Amz-Client-Context` and `X-Amz-Tenant-Id` (as RIE reads them).
"""
from __future__ import annotations

import base64
import binascii
import re
from functools import partial
from typing import Optional

from .httpserver import Request, Response, Router, json_response
from .lifecycle import Lifecycle
from .state import InvokeRequest

__all__ = ["install", "INVOKE_PATH"]

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
#: Lambda's TenantId (Invoke's model): the `X-Amz-Tenant-Id` header, passed to the runtime as
#: `Lambda-Runtime-Aws-Tenant-Id` (awslambdaric's `context.tenant_id`).
TENANT_ID = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")


def install(router: Router, lc: Lifecycle) -> None:
    router.add("POST", INVOKE_PATH, partial(_invoke, lc))


def _invalid_parameter(message: str) -> Response:
    """Refused as Lambda's Invoke refuses a parameter (rest-json: the code in x-amzn-ErrorType)."""
    return json_response(400, {"Type": "User", "message": message},
                         {"x-amzn-ErrorType": "InvalidParameterValueException"})


def _client_context(raw: Optional[str]) -> Optional[str]:
    """The header is base64 JSON; the runtime receives the decoded JSON."""
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return raw


def _invoke(lc: Lifecycle, request: Request) -> Response:
    tenant_id = request.header("X-Amz-Tenant-Id")
    if tenant_id is not None and not TENANT_ID.fullmatch(tenant_id):
        return _invalid_parameter(f"X-Amz-Tenant-Id {tenant_id!r} is not a tenant id: 1 to 256 of "
                                  "a-z A-Z 0-9 . _ : / = + - @ and space")
    invoke = InvokeRequest(
        payload=request.body or b"{}",
        trace_id=request.header("X-Amzn-Trace-Id"),
        client_context=_client_context(request.header("X-Amz-Client-Context")),
        tenant_id=tenant_id,
    )
    outcome = lc.invoke(invoke)
    headers = {"X-Amzn-RequestId": outcome.request_id, "X-Amz-Executed-Version": lc.host.config.function_version}
    if outcome.function_error:
        headers["X-Amz-Function-Error"] = outcome.function_error
    return Response(outcome.status, outcome.body, headers, outcome.content_type)
