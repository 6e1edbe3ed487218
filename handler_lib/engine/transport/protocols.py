"""The wire protocols of the three services: how a call's parameters become a request body,
and how a reply becomes botocore's reply dict or its error.

- AWS JSON (SQS: 1.0, EventBridge: 1.1): ``X-Amz-Target: <prefix>.<Operation>``, a JSON body
  with blobs in base64; errors carry ``__type``, and SQS (query-compatible) says the old
  query error code and fault in ``x-amzn-query-error: <Code>;<Sender|Receiver>``.
- Query (SNS): a form-encoded body (``Action``, ``Version``, members flattened), XML replies
  and ``<ErrorResponse>`` errors.

Replies get botocore's ``ResponseMetadata`` (``RequestId``, ``HTTPStatusCode``,
``HTTPHeaders``, ``RetryAttempts``); an error reply becomes ``ServiceError`` whose
``response`` is what botocore's ``ClientError.response`` would be for the same bytes
(botocore/parsers.py: generic 5xx, JSON and query error parsing).
"""

from __future__ import annotations

import base64
import json
from http.client import responses as REASONS
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import urlencode

from . import shapes
from .errors import ServiceError
from .http import Reply


class Protocol:
    """Turns (operation, parameters) into (headers, body), and a reply into a dict."""

    def request(self, operation: str, shape: shapes.Shape,
                params: Mapping[str, Any]) -> Tuple[Dict[str, str], bytes]:
        raise NotImplementedError

    def reply(self, operation: str, reply: Reply, result: Optional[shapes.Shape]) -> Dict[str, Any]:
        """The parsed reply with its metadata; raises ``ServiceError`` for an error reply."""
        if reply.status >= 300:
            raise ServiceError(operation, self._error(reply))
        parsed = self._result(reply, result)
        parsed["ResponseMetadata"] = _metadata(reply, parsed.pop("ResponseMetadata", None))
        return parsed

    def _result(self, reply: Reply, result: Optional[shapes.Shape]) -> Dict[str, Any]:
        raise NotImplementedError

    def _error(self, reply: Reply) -> Dict[str, Any]:
        body = reply.body.strip()
        if reply.status >= 500 and (not body or body.startswith(b"<html>")):  # a proxy's page, not AWS's
            error: Dict[str, Any] = {"Error": {"Code": str(reply.status), "Message": REASONS.get(reply.status, "")},
                                     "ResponseMetadata": {}}
        else:
            error = self._service_error(reply)
        error["ResponseMetadata"] = _metadata(reply, error.get("ResponseMetadata"))
        return error

    def _service_error(self, reply: Reply) -> Dict[str, Any]:
        raise NotImplementedError


class JsonProtocol(Protocol):
    def __init__(self, version: str, target_prefix: str, query_compatible: bool = False) -> None:
        self.content_type = f"application/x-amz-json-{version}"
        self.target_prefix = target_prefix
        self.query_compatible = query_compatible  # the model's awsQueryCompatible trait (SQS)

    def request(self, operation: str, shape: shapes.Shape,
                params: Mapping[str, Any]) -> Tuple[Dict[str, str], bytes]:
        headers = {"Content-Type": self.content_type, "X-Amz-Target": f"{self.target_prefix}.{operation}"}
        if self.query_compatible:  # ask for the query error codes, as botocore does
            headers["x-amzn-query-mode"] = "true"
        return headers, json.dumps(params, default=_blob, separators=(",", ":")).encode("utf-8")

    def _result(self, reply: Reply, result: Optional[shapes.Shape]) -> Dict[str, Any]:
        parsed = json.loads(reply.body) if reply.body.strip() else {}
        return parsed if isinstance(parsed, dict) else {}

    def _service_error(self, reply: Reply) -> Dict[str, Any]:
        try:
            body = json.loads(reply.body.decode("utf-8")) if reply.body else {}
        except ValueError:
            body = {"message": reply.body.decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {}
        error: Dict[str, Any] = {"Message": body.get("message", body.get("Message", "")), "Code": ""}
        code = str(body.get("__type") or reply.status)
        code = code.split(":", 1)[0].rsplit("#", 1)[-1]
        query = reply.headers.get("x-amzn-query-error", "").split(";")
        if len(query) == 2 and query[0]:
            error.update(QueryErrorCode=code, Type=query[1])
            code = query[0]
        error["Code"] = code
        return {"Error": error, "ResponseMetadata": {}}


class QueryProtocol(Protocol):
    def __init__(self, version: str) -> None:
        self.version = version

    def request(self, operation: str, shape: shapes.Shape,
                params: Mapping[str, Any]) -> Tuple[Dict[str, str], bytes]:
        fields = {"Action": operation, "Version": self.version}
        shapes.form_fields(shape, params, "", fields)
        return ({"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                urlencode(fields).encode("ascii"))

    def _result(self, reply: Reply, result: Optional[shapes.Shape]) -> Dict[str, Any]:
        import xml.etree.ElementTree as ET  # only for the query protocol (SNS)

        root = ET.fromstring(reply.body)
        parsed: Dict[str, Any] = {}
        node = next((c for c in root if c.tag.endswith("Result")), None)
        if result is not None and node is not None:
            parsed = shapes.from_xml(result, node)
        request_id = shapes.child(root, "ResponseMetadata", "RequestId")
        if request_id is not None:
            parsed["ResponseMetadata"] = {"RequestId": request_id.text or ""}
        return parsed

    def _service_error(self, reply: Reply) -> Dict[str, Any]:
        import xml.etree.ElementTree as ET

        try:
            root = ET.fromstring(reply.body)
        except ET.ParseError:
            return {"Error": {"Code": str(reply.status), "Message": reply.body.decode("utf-8", "replace")},
                    "ResponseMetadata": {}}
        node = shapes.child(root, "Error") or shapes.child(root, "Errors", "Error")
        # an empty element is None, as botocore reads it (its message then says "None")
        error: Dict[str, Optional[str]] = {c.tag.rpartition("}")[2]: c.text for c in node} if node is not None else {}
        request_id = shapes.child(root, "RequestId")
        return {"Error": error, "ResponseMetadata": {"RequestId": request_id.text or ""} if request_id is not None else {}}


def _metadata(reply: Reply, found: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    metadata = dict(found or {})
    request_id = reply.headers.get("x-amzn-requestid")
    if request_id and "RequestId" not in metadata:
        metadata["RequestId"] = request_id
    metadata.update(HTTPStatusCode=reply.status, HTTPHeaders=reply.headers, RetryAttempts=0)
    return metadata


def _blob(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
