"""Build API Gateway HTTP API (payload format 2.0) events, as API Gateway sends them to Lambda.

Used by the tests and the demo to drive ``app.handler`` exactly as a deployed API would.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any, Optional

API_ID = "a1b2c3d4e5"
STAGE = "$default"


def http_event(method: str, path: str, body: Any = None, *, route: Optional[str] = None,
               path_parameters: Optional[dict[str, str]] = None, base64_body: bool = False,
               headers: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """One v2 event; a dict/list body is JSON-encoded, ``base64_body`` encodes it as API Gateway may."""
    text = body if body is None or isinstance(body, str) else json.dumps(body)
    if text is not None and base64_body:
        text = base64.b64encode(text.encode()).decode()
    now = time.time()
    request_id = uuid.uuid4().hex[:16]
    all_headers = {"content-type": "application/json", "host": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
                   "user-agent": "lambda-defer-demo/1.0", "x-amzn-trace-id": f"Root=1-{int(now):x}-{request_id}",
                   **(headers or {})}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": API_ID,
            "domainName": all_headers["host"], "domainPrefix": API_ID,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": all_headers["user-agent"]},
            "requestId": request_id, "routeKey": route or f"{method} {path}", "stage": STAGE,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(text is not None and base64_body),
    }
    if text is not None:
        event["body"] = text
    if path_parameters:
        event["pathParameters"] = path_parameters
    return event


def post_order(order: Any, **kw: Any) -> dict[str, Any]:
    return http_event("POST", "/orders", order, route="POST /orders", **kw)


def get_order(order_id: str) -> dict[str, Any]:
    return http_event("GET", f"/orders/{order_id}", route="GET /orders/{id}",
                      path_parameters={"id": order_id})


def sample_order(n: int = 1) -> dict[str, Any]:
    """A valid order body (varied a little by ``n``)."""
    return {"email": f"customer{n}@example.com",
            "items": [{"sku": "MUG-01", "quantity": 1 + n % 3, "unit_price_cents": 1250},
                      {"sku": "TEA-07", "quantity": 2, "unit_price_cents": 499}]}
