"""Round-4 attack on handler_lib.testing's event builders: an API Gateway REST API (payload
format 1.0) passes header names as the client sent them (HTTP API 2.0 and ALB lowercase
them), so a handler reading ``event["headers"]["Content-Type"]`` works in production."""

from __future__ import annotations

import pytest

from handler_lib.testing import api_gateway_rest_event, http_api_event


@pytest.mark.xfail(strict=True, reason=(
    "api_gateway_rest_event lowercases the header names it is given (and writes its own lowercase), "
    "while a REST API's 1.0 event keeps the client's case: a handler that reads "
    "event['headers']['Content-Type'] passes in production and fails its test with KeyError"))
def test_r4_a_rest_api_event_keeps_the_header_names_as_sent():
    event = api_gateway_rest_event("POST", "/orders", body="{}", headers={"Content-Type": "application/json",
                                                                          "X-Api-Key": "k"})
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["multiValueHeaders"]["X-Api-Key"] == ["k"]


def test_r4_an_http_api_event_lowercases_header_names_as_api_gateway_does():
    event = http_api_event("POST", "/orders", body="{}", headers={"Content-Type": "application/json"})
    assert event["headers"]["content-type"] == "application/json" and "Content-Type" not in event["headers"]
