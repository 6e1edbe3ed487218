"""Events as Lambda's event sources send them, for calling a handler in a unit test.

Each builder returns a plain dict with every field the source always sends (the shapes
Powertools' event models parse), so a handler written against API Gateway, a function URL,
an ALB or an SQS event source gets in a test what it gets in production. A dict or list body
is JSON-encoded, as a client sending JSON would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

if TYPE_CHECKING:
    import uuid

ACCOUNT = "123456789012"
REGION = "us-east-1"
_SOURCE_IP = "203.0.113.10"
_AGENT = "lambda-defer-test/1.0"


def _uuid4() -> "uuid.UUID":
    """uuid is imported when a builder runs, not with handler_lib.testing: a test that checks
    what a handler's first call imports imports testing for capture()."""
    import uuid

    return uuid.uuid4()


def _body(body: Any, base64_body: bool) -> Optional[str]:
    if body is None:
        return None
    text = body if isinstance(body, (str, bytes)) else json.dumps(body, separators=(",", ":"))
    raw = text if isinstance(text, bytes) else text.encode()
    if base64_body or isinstance(body, bytes):
        return base64.b64encode(raw).decode("ascii")
    return raw.decode()


def _headers(host: str, headers: Optional[Mapping[str, str]], body: Any) -> Dict[str, str]:
    base = {"host": host, "user-agent": _AGENT, "x-forwarded-for": _SOURCE_IP,
            "x-amzn-trace-id": f"Root=1-{int(time.time()):08x}-{_uuid4().hex[:24]}"}
    if body is not None and not isinstance(body, (str, bytes)):
        base["content-type"] = "application/json"
    return {**base, **{k.lower(): v for k, v in (headers or {}).items()}}


def _query_string(query: Optional[Mapping[str, str]]) -> str:
    from urllib.parse import urlencode

    return urlencode(dict(query or {}))


def api_gateway_rest_event(method: str = "GET", path: str = "/", *, body: Any = None,
                           headers: Optional[Mapping[str, str]] = None, query: Optional[Mapping[str, str]] = None,
                           path_parameters: Optional[Mapping[str, str]] = None, resource: Optional[str] = None,
                           stage: str = "prod", base64_body: bool = False) -> Dict[str, Any]:
    """An API Gateway REST API (proxy integration, payload format 1.0) event."""
    api_id = "a1b2c3d4e5"
    all_headers = _headers(f"{api_id}.execute-api.{REGION}.amazonaws.com", headers, body)
    now = time.time()
    text = _body(body, base64_body)
    return {
        "version": "1.0", "resource": resource or path, "path": path, "httpMethod": method,
        "headers": all_headers, "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": dict(path_parameters) if path_parameters else None, "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": api_id, "stage": stage, "protocol": "HTTP/1.1",
            "identity": {"sourceIp": _SOURCE_IP, "userAgent": _AGENT},
            "requestId": str(_uuid4()), "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000), "resourcePath": resource or path, "httpMethod": method,
            "path": f"/{stage}{path}", "domainName": all_headers["host"], "domainPrefix": api_id,
        },
        "isBase64Encoded": bool(text is not None and (base64_body or isinstance(body, bytes))),
        "body": text,
    }


def _v2(method: str, path: str, body: Any, headers: Optional[Mapping[str, str]], query: Optional[Mapping[str, str]],
        host: str, api_id: str, route: str, base64_body: bool) -> Dict[str, Any]:
    all_headers = _headers(host, headers, body)
    now = time.time()
    text = _body(body, base64_body)
    event: Dict[str, Any] = {
        "version": "2.0", "routeKey": route, "rawPath": path, "rawQueryString": _query_string(query),
        "headers": all_headers,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": api_id, "domainName": host, "domainPrefix": api_id,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": _SOURCE_IP,
                     "userAgent": _AGENT},
            "requestId": str(_uuid4()), "routeKey": route, "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(text is not None and (base64_body or isinstance(body, bytes))),
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if text is not None:
        event["body"] = text
    return event


def http_api_event(method: str = "GET", path: str = "/", *, body: Any = None,
                   headers: Optional[Mapping[str, str]] = None, query: Optional[Mapping[str, str]] = None,
                   path_parameters: Optional[Mapping[str, str]] = None, route: Optional[str] = None,
                   base64_body: bool = False) -> Dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event; ``route`` defaults to ``"METHOD path"``."""
    api_id = "f6g7h8i9j0"
    event = _v2(method, path, body, headers, query, f"{api_id}.execute-api.{REGION}.amazonaws.com", api_id,
                route or f"{method} {path}", base64_body)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    return event


def function_url_event(method: str = "GET", path: str = "/", *, body: Any = None,
                       headers: Optional[Mapping[str, str]] = None, query: Optional[Mapping[str, str]] = None,
                       base64_body: bool = False) -> Dict[str, Any]:
    """A Lambda function URL event (payload format 2.0, route ``$default``)."""
    url_id = "k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6"
    return _v2(method, path, body, headers, query, f"{url_id}.lambda-url.{REGION}.on.aws", url_id, "$default",
               base64_body)


def alb_event(method: str = "GET", path: str = "/", *, body: Any = None,
              headers: Optional[Mapping[str, str]] = None, query: Optional[Mapping[str, str]] = None,
              base64_body: bool = False) -> Dict[str, Any]:
    """An Application Load Balancer event (single-value headers)."""
    text = _body(body, base64_body)
    return {
        "requestContext": {"elb": {"targetGroupArn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:"
                                                      "targetgroup/lambda-target/0123456789abcdef"}},
        "httpMethod": method, "path": path, "queryStringParameters": dict(query or {}),
        "headers": _headers("lambda-alb-123456789.us-east-1.elb.amazonaws.com", headers, body),
        "body": text if text is not None else "",
        "isBase64Encoded": bool(text is not None and (base64_body or isinstance(body, bytes))),
    }


def sqs_event(*bodies: Any, queue_name: str = "queue", attributes: Optional[Mapping[str, str]] = None,
              receive_count: int = 1) -> Dict[str, Any]:
    """An SQS event source's batch: one record per body (a dict or list is JSON-encoded);
    ``attributes``: String message attributes on every record."""
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"
    now_ms = str(int(time.time() * 1000))
    records = []
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        records.append({
            "messageId": str(_uuid4()), "receiptHandle": base64.b64encode(_uuid4().bytes).decode(),
            "body": text,
            "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": now_ms,
                           "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": now_ms},
            "messageAttributes": {k: {"stringValue": v, "stringListValues": [], "binaryListValues": [],
                                      "dataType": "String"} for k, v in (attributes or {}).items()},
            "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
            "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION,
        })
    return {"Records": records}
