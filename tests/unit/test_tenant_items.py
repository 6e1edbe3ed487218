"""Under Lambda tenant isolation every item of an invoke keeps its tenant (context.tenant_id):
SQS/SNS attribute defer_tenant_id, EventBridge detail field defer_tenant_id, defer.invoke's
TenantId (what reaches the services, under the sandbox, is in tests/integration)."""

from __future__ import annotations

import json

import pytest

from handler_lib import defer
from handler_lib.engine.sinks import LambdaInvokeSink, SqsSink
from handler_lib.testing import capture

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
TOPIC = "arn:aws:sns:us-east-1:123456789012:t"


class Context:
    def __init__(self, tenant_id=None) -> None:
        self.aws_request_id = "r-1"
        self.tenant_id = tenant_id

    def get_remaining_time_in_millis(self) -> int:
        return 3000


def run(body, tenant_id="acme"):
    @defer
    def handler(event, context):
        return body()

    with capture() as items:
        result = handler({}, Context(tenant_id))
    return items, result


def test_every_kind_of_item_keeps_the_invokes_tenant():
    items, _ = run(lambda: (defer.sqs(QUEUE, {"n": 1}), defer.sns(TOPIC, "m", attributes={"k": "v"}),
                            defer.event("T", {"n": 2}, source="s"), defer.event("T", '{"n": 3}', source="s"),
                            defer.invoke("billing", {"n": 4})))
    sqs, sns, event, text_event, invoke = items
    assert sqs.attributes == {"defer_tenant_id": "acme"}
    assert sns.attributes == {"k": "v", "defer_tenant_id": "acme"}
    assert json.loads(event.detail)["defer_tenant_id"] == "acme"
    assert text_event.detail == '{"defer_tenant_id":"acme","n": 3}'  # the caller's text kept as written
    assert invoke.tenant_id == "acme"
    entry = SqsSink(lambda s: None).entry(sqs, "0")
    assert entry["MessageAttributes"]["defer_tenant_id"] == {"DataType": "String", "StringValue": "acme"}
    _, request = LambdaInvokeSink(lambda s: None).request(invoke)
    assert request["TenantId"] == "acme"


def test_without_tenant_isolation_nothing_changes():
    items, _ = run(lambda: (defer.sqs(QUEUE, "m"), defer.event("T", {"n": 2}, source="s"),
                            defer.invoke("billing", {})), tenant_id=None)
    sqs, event, invoke = items
    assert sqs.attributes is None and "defer_tenant_id" not in event.detail and invoke.tenant_id is None


def test_the_tenant_belongs_to_its_invoke_only():
    run(lambda: defer.sqs(QUEUE, "m"))
    with capture() as items:
        defer.sqs(QUEUE, "outside any invoke")
    assert items[0].attributes is None


def test_told_otherwise_the_callers_choice_stands():
    items, _ = run(lambda: (defer.invoke("billing", {}, tenant_id="other"), defer.invoke("plain-fn", {}, tenant_id=""),
                            defer.sqs(QUEUE, "m", attributes={"defer_tenant_id": "mine"}),
                            defer.event("T", {"defer_tenant_id": "mine"}, source="s")))
    other, none, sqs, event = items
    assert other.tenant_id == "other" and none.tenant_id is None
    assert sqs.attributes == {"defer_tenant_id": "mine"} and json.loads(event.detail)["defer_tenant_id"] == "mine"


def test_the_tenant_takes_a_slot_like_defer_id():
    nine = {f"a{n}": "v" for n in range(9)}
    with pytest.raises(ValueError, match="one defer_tenant_id .this invoke's tenant., so at most 8"):
        run(lambda: defer.sqs(QUEUE, "m", attributes=nine))
    items, _ = run(lambda: defer.sqs(QUEUE, "m", attributes=nine), tenant_id=None)
    assert len(items[0].attributes) == 9


def test_a_tenant_id_lambda_could_not_have_sent_is_not_carried():
    items, _ = run(lambda: defer.sqs(QUEUE, "m"), tenant_id="bad|tenant")
    assert items[0].attributes is None
