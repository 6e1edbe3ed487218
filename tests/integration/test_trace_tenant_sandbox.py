"""What a deferred message carries to its consumer, in the sandbox with the built layer and moto:
the W3C trace context of the handler's OpenTelemetry span (SQS, and SNS to a raw SQS
subscription), the invoke's tenant under tenant isolation (every kind of item), and the exec
wrapper handing on to a second one (DEFER_NEXT_EXEC_WRAPPER, an `otel-instrument`-style
wrapper in a second layer, as ADOT's layer ships it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambda_sandbox import Sandbox
from tests.support.lambda_endpoint import LambdaEndpoint
from tests.support.moto_server import drain_messages
from tests.support.waiting import wait_until

WRAPPER = "/opt/defer-runner/exec-wrapper"


@pytest.fixture
def lambda_api():
    endpoint = LambdaEndpoint().start()
    endpoint.add_function("billing")
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture
def start(built_layer, aws_resources, lambda_api, packaged_function, tmp_path):
    res = aws_resources()
    function_dir = packaged_function("otel_tenant")  # with the OpenTelemetry SDK it imports
    boxes = []

    def start(layers=None, **env: str) -> Sandbox:
        full_env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"),
                    "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
                    "AWS_ENDPOINT_URL_LAMBDA": lambda_api.endpoint_url, **env}
        box = Sandbox(layers or built_layer, function_dir, "app.handler", timeout_s=10, env=full_env,
                      echo=False).start()
        boxes.append(box)
        return box

    yield start, res, lambda_api
    for box in boxes:
        box.stop()


def attributes(message) -> dict:
    return {k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()}


def by_kind(messages) -> dict:
    return {json.loads(m["Body"])["kind"]: m for m in messages}


def test_sqs_and_sns_messages_carry_the_handler_spans_trace_and_a_full_one_goes_whole(start):
    begin, res, _ = start
    box = begin()
    answer = box.invoke({"tag": "t1", "full": True}).json()
    trace_id = answer["trace_id"]
    queue = by_kind(drain_messages(res.queue_url, 2, timeout=5))
    (sns,) = drain_messages(res.topic_queue_url, 1, timeout=5)
    for message in (queue["sqs"], sns):
        parent = attributes(message)["traceparent"]
        version, trace, span, flags = parent.split("-")
        assert (version, trace, len(span), len(flags)) == ("00", trace_id, 16, 2)
    assert attributes(queue["sqs"])["traceparent"] == attributes(sns)["traceparent"]  # one span
    full = queue["full"]
    assert json.loads(full["Body"]) == {"tag": "t1", "kind": "full"}  # sent whole ...
    assert set(attributes(full)) == {"defer_id", *(f"a{n}" for n in range(9))}  # ... without the context
    wait_until(lambda: any('"trace_context_skipped":1' in line.text.replace(" ", "") for line in box.logs), 5,
               message=lambda: "the skipped context was not counted:\n" + "\n".join(l.text for l in box.logs))


def test_under_tenant_isolation_every_kind_of_item_keeps_its_tenant(start):
    begin, res, lambda_api = start
    box = begin()
    answer = box.invoke({"tag": "t2", "every_kind": True}, headers={"X-Amz-Tenant-Id": "acme-7"}).json()
    assert answer["tenant"] == "acme-7"
    queue = drain_messages(res.queue_url, 2, timeout=5)
    (sns,) = drain_messages(res.topic_queue_url, 1, timeout=5)
    (event,) = drain_messages(res.event_queue_url, 1, timeout=5)
    task = next(m for m in queue if "kind" not in m["Body"])  # the queued task's message
    sqs = by_kind([m for m in queue if m is not task])["sqs"]
    for message in (sqs, sns, task):
        assert attributes(message)["defer_tenant_id"] == "acme-7"
    assert json.loads(event["Body"])["detail"]["defer_tenant_id"] == "acme-7"
    invokes = wait_until(lambda: [r for r in lambda_api.requests if r.operation == "Invoke"] or None, 5)
    assert [r.header("X-Amz-Tenant-Id") for r in invokes] == ["acme-7"]
    # the next invoke, of no tenant, carries none
    box.invoke({"tag": "t3"})
    plain = drain_messages(res.queue_url, 1, timeout=5)
    assert "defer_tenant_id" not in attributes(plain[0])


def otel_layer(folder: Path) -> Path:
    """A second layer with an exec wrapper in the shape of ADOT's /opt/otel-instrument: it sets
    up the environment (here: a variable saying it ran, and which Runtime API it was handed),
    says so on stderr, and runs the runtime's command."""
    folder.mkdir()
    script = folder / "otel-instrument"
    script.write_text('#!/bin/bash\necho "otel-instrument: starting $1" >&2\n'
                      'export OTEL_TEST_WRAPPER="ran after AWS_LAMBDA_RUNTIME_API=$AWS_LAMBDA_RUNTIME_API"\n'
                      'exec "$@"\n', newline="\n")
    script.chmod(0o755)
    (folder / "not-executable").write_text("#!/bin/bash\nexec \"$@\"\n", newline="\n")
    return folder


def test_the_exec_wrapper_hands_on_to_the_next_one(start, built_layer, tmp_path):
    begin, res, _ = start
    box = begin([built_layer, otel_layer(tmp_path / "adot")], AWS_LAMBDA_EXEC_WRAPPER=WRAPPER,
                DEFER_NEXT_EXEC_WRAPPER="/opt/otel-instrument")
    answer = box.invoke({"tag": "w1"}).json()
    assert answer["upstream_runtime_api"] == box.runtime_api  # ours ran: the runtime talks to its proxy ...
    prefix = "ran after AWS_LAMBDA_RUNTIME_API="
    assert answer["next_wrapper"].startswith(prefix)  # ... then the next, handed the proxy's address
    seen = answer["next_wrapper"][len(prefix):]
    assert seen.startswith("127.0.0.1:") and seen != box.runtime_api
    assert any("otel-instrument: starting" in line.text for line in box.logs)
    assert [json.loads(m["Body"])["tag"] for m in drain_messages(res.queue_url, 1, timeout=5)] == ["w1"]
    assert not any("DEFER_NEXT_EXEC_WRAPPER" in line.text for line in box.logs)


@pytest.mark.parametrize("next_wrapper, problem", [("/opt/missing-wrapper", "no such file"),
                                                   ("/opt/not-executable", "not an executable file"),
                                                   (WRAPPER, "it is this wrapper")])
def test_a_next_wrapper_that_cannot_run_is_said_and_left_out(start, built_layer, tmp_path, next_wrapper, problem):
    begin, res, _ = start
    box = begin([built_layer, otel_layer(tmp_path / "adot")], AWS_LAMBDA_EXEC_WRAPPER=WRAPPER,
                DEFER_NEXT_EXEC_WRAPPER=next_wrapper)
    answer = box.invoke({"tag": "w2"}).json()
    assert answer["upstream_runtime_api"] == box.runtime_api and answer["next_wrapper"] is None
    errors = [line.text for line in box.logs if "DEFER_NEXT_EXEC_WRAPPER" in line.text]
    assert len(errors) == 1 and f"DEFER_NEXT_EXEC_WRAPPER={next_wrapper}: {problem}" in errors[0], errors
    assert "ERROR" in errors[0] and "starts without it" in errors[0]
    assert [json.loads(m["Body"])["tag"] for m in drain_messages(res.queue_url, 1, timeout=5)] == ["w2"]
