"""handler_lib.testing's event builders give what the event sources send: Powertools' own
event models (pydantic, strict about required fields) and data classes read them back."""

from __future__ import annotations

import base64

import pytest
from aws_lambda_powertools.utilities.data_classes import (ALBEvent, APIGatewayProxyEvent, APIGatewayProxyEventV2,
                                                          LambdaFunctionUrlEvent, SQSEvent)
from aws_lambda_powertools.utilities.parser.models import (AlbModel, APIGatewayProxyEventModel,
                                                           APIGatewayProxyEventV2Model, LambdaFunctionUrlModel,
                                                           SqsModel)

from handler_lib.testing import alb_event, api_gateway_rest_event, function_url_event, http_api_event, sqs_event


def test_rest_api_event():
    event = api_gateway_rest_event("POST", "/orders/o-1", body={"n": 1}, query={"dry": "1"},
                                   path_parameters={"id": "o-1"}, resource="/orders/{id}", headers={"X-Tenant": "t"})
    model = APIGatewayProxyEventModel.model_validate(event)
    assert (model.httpMethod, model.path, model.resource, model.body) == ("POST", "/orders/o-1", "/orders/{id}", '{"n":1}')
    parsed = APIGatewayProxyEvent(event)
    assert parsed.json_body == {"n": 1} and parsed.query_string_parameters == {"dry": "1"}
    assert parsed.path_parameters == {"id": "o-1"} and parsed.headers["x-tenant"] == "t"
    assert parsed.request_context.stage == "prod"


def test_http_api_event():
    event = http_api_event("GET", "/orders/o-2", query={"a": "b c"}, path_parameters={"id": "o-2"},
                           route="GET /orders/{id}")
    model = APIGatewayProxyEventV2Model.model_validate(event)
    assert (model.routeKey, model.rawPath, model.rawQueryString) == ("GET /orders/{id}", "/orders/o-2", "a=b+c")
    parsed = APIGatewayProxyEventV2(event)
    assert parsed.request_context.http.method == "GET" and parsed.path_parameters == {"id": "o-2"}
    assert parsed.body is None


def test_function_url_event_with_a_binary_body():
    event = function_url_event("PUT", "/upload", body=b"\x00\x01\xff")
    LambdaFunctionUrlModel.model_validate(event)
    parsed = LambdaFunctionUrlEvent(event)
    assert parsed.is_base64_encoded and base64.b64decode(parsed.body) == b"\x00\x01\xff"
    assert parsed.request_context.domain_name.endswith(".lambda-url.us-east-1.on.aws")
    assert event["routeKey"] == "$default"


def test_alb_event():
    event = alb_event("DELETE", "/orders/o-3", body="gone", query={"force": "true"})
    model = AlbModel.model_validate(event)
    assert (model.httpMethod, model.path, model.body) == ("DELETE", "/orders/o-3", "gone")
    parsed = ALBEvent(event)
    assert parsed.query_string_parameters == {"force": "true"} and "targetgroup" in parsed.request_context.elb_target_group_arn


def test_sqs_event():
    event = sqs_event({"order_id": "o-4"}, "plain", queue_name="orders", attributes={"kind": "order"}, receive_count=3)
    model = SqsModel.model_validate(event)
    assert [r.body for r in model.Records] == ['{"order_id":"o-4"}', "plain"]
    parsed = SQSEvent(event)
    records = list(parsed.records)
    assert records[0].json_body == {"order_id": "o-4"}
    assert records[1].message_attributes["kind"].string_value == "order"
    assert records[0].attributes.approximate_receive_count == "3"
    assert records[0].event_source_arn == "arn:aws:sqs:us-east-1:123456789012:orders"
    assert len({r.message_id for r in records}) == 2


@pytest.mark.parametrize("build", [api_gateway_rest_event, http_api_event, function_url_event, alb_event])
def test_each_http_event_carries_a_base64_body_when_asked(build):
    event = build("POST", "/x", body={"k": "v"}, base64_body=True)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b'{"k":"v"}'
