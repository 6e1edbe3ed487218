"""defer.invoke / sfn / callback: bad input fails at the call, nothing is queued; good input
becomes the item the sinks send (what reaches the services is in tests/integration)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler_lib import defer, wire
from handler_lib._workflow_items import durable_name_for
from handler_lib.testing import capture

FN_ARN = "arn:aws:lambda:us-east-1:123456789012:function:billing"
SM_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"


@pytest.mark.parametrize("call, error, match", [
    (lambda: defer.invoke("", {}), TypeError, "non-empty str"),
    (lambda: defer.invoke("bad name", {}), ValueError, "not a Lambda function name or ARN"),
    (lambda: defer.invoke("arn:aws:sqs:us-east-1:123456789012:q", {}), ValueError, "not a Lambda function"),
    (lambda: defer.invoke("f" * 65, {}), ValueError, "not a Lambda function name"),
    (lambda: defer.invoke(FN_ARN + ":live", {}, qualifier="v2"), ValueError, "already names a version"),
    (lambda: defer.invoke("billing", {}, qualifier="no spaces"), ValueError, "not a version or alias"),
    (lambda: defer.invoke("billing", {}, durable_name="n" * 65), ValueError, "durable_name must be 1-64"),
    (lambda: defer.invoke("billing", {}, durable_name="has.dot"), ValueError, "durable_name must be"),
    (lambda: defer.invoke("billing", {}, tenant_id="bad|tenant"), ValueError, "tenant_id must be"),
    (lambda: defer.invoke("billing", "not json"), ValueError, "not JSON text"),
    (lambda: defer.invoke("billing", {"x": object()}), TypeError, "not JSON-serializable"),
    (lambda: defer.invoke("billing", {"x": "y" * 1_048_576}), ValueError, "limited to 1048576"),
    (lambda: defer.invoke("billing", {"x": "y" * 262_144}, durable_name="n"), ValueError, "limited to 262144"),
    (lambda: defer.sfn("orders", {}), ValueError, "not a state machine ARN"),
    (lambda: defer.sfn(SM_ARN, {}, name="n" * 81), ValueError, "name must be 1-80"),
    (lambda: defer.sfn(SM_ARN, {}, name="two words"), ValueError, "name must be"),
    (lambda: defer.sfn(SM_ARN, {"x": "y" * 262_144}), ValueError, "StartExecution allows 262144"),
    (lambda: defer.sfn(SM_ARN, "{not json"), ValueError, "not JSON text"),
    (lambda: defer.callback("not base64!", result={}), ValueError, "not a durable callback id"),
    (lambda: defer.callback("a" * 1025), ValueError, "not a durable callback id"),
    (lambda: defer.callback("abc", result={}, error="no"), ValueError, "not both"),
    (lambda: defer.callback("abc", error={"Code": "x"}), ValueError, "takes ErrorMessage"),
    (lambda: defer.callback("abc", error={"StackTrace": "one line"}), TypeError, "list of str"),
    (lambda: defer.callback("abc", error=42), TypeError, "error must be"),
    (lambda: defer.callback("abc", result="x" * 1_048_577), ValueError, "not JSON text|over 1048576"),
])
def test_bad_input_raises_at_the_call_and_queues_nothing(call, error, match):
    with capture() as items:
        with pytest.raises(error, match=match):
            call()
    assert list(items) == []


@pytest.mark.parametrize("function", ["billing", "billing:live", "123456789012:function:billing", FN_ARN,
                                      FN_ARN + ":$LATEST", "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:x"])
def test_names_and_arns_lambda_takes_are_accepted(function):
    with capture() as items:
        defer.invoke(function, [1, 2])
    assert items.invokes[0].function == function and items.invokes[0].payload == "[1,2]"


def test_a_payload_at_the_limit_is_taken_and_the_limits_differ_for_durable_execution():
    padding = 1_048_576 - len('{"x":""}')
    with capture() as items:
        defer.invoke("billing", {"x": "y" * padding})
        defer.invoke("billing", {"x": "y" * (262_144 - len('{"x":""}'))}, durable_name="at-the-limit")
    assert [len(i.payload) for i in items.invokes] == [1_048_576, 262_144]


def test_capture_shows_each_new_kind_as_the_extension_would_read_it():
    with capture() as items:
        invoke_id = defer.invoke("billing", {"n": 1}, tenant_id="acme")
        sfn_id = defer.sfn(SM_ARN, {"n": 2})
        named = defer.sfn(SM_ARN, {"n": 3}, name="order-3")
        defer.callback("abc=", result={"ok": True})
        defer.callback("def", error=ValueError("no"))
    (invoke,) = items.invokes
    assert invoke.id == invoke_id and invoke.durable_name == invoke_id and invoke.tenant_id == "acme"
    assert not invoke.durable  # no name given: the function may be a plain one
    assert [(e.id, e.name) for e in items.executions] == [(sfn_id, sfn_id), (named, "order-3")]
    assert [(c.result, c.error) for c in items.callbacks] == [
        ('{"ok":true}', None), (None, {"ErrorType": "ValueError", "ErrorMessage": "no"})]
    for item in items:
        assert wire.decode(wire.encode(item)[4:]) == item


def test_a_name_is_shaped_from_any_id():
    assert durable_name_for("3f2a-1") == "3f2a-1"
    assert durable_name_for("a.b:c/" + "x" * 80) == "a_b_c_" + "x" * 58


FIELDS = ["id", "rid", "ts", "fn", "body", "qualifier", "name", "tenant", "durable", "arn", "cb", "error", "trace"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.text(max_size=8), st.binary(max_size=8),
                   st.lists(st.text(max_size=4), max_size=2), st.dictionaries(st.text(max_size=4), st.text(max_size=4),
                                                                               max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["invoke", "sfn", "callback"]), st.dictionaries(st.sampled_from(FIELDS), VALUES))
def test_a_forged_workflow_frame_is_a_frame_decode_error_or_an_item(kind, fields):
    body = wire.pack_map({**fields, "v": wire.PROTOCOL_VERSION, "k": kind})
    try:
        item = wire.decode(body)
    except wire.FrameDecodeError:
        return
    assert item.kind == kind and isinstance(item.target, str) and isinstance(item.id, str)
