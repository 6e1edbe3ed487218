"""handler_lib.testing: what users' unit tests see."""

import json
import os
from types import SimpleNamespace

from handler_lib import defer
from handler_lib.testing import capture

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
RUNS = []


@defer.task(max_attempts=3, timeout=2.0, pass_item_id=True)
def remember(order_id: str, defer_id: str = "") -> str:
    RUNS.append((order_id, defer_id))
    return order_id


@defer
def handler(event, context):
    defer.sqs(QUEUE, {"order_id": event["id"]}, attributes={"kind": "order", "n": 2})
    defer.sns("arn:aws:sns:us-east-1:1:t.fifo", "hi", group_id=event["id"])
    defer.event("OrderCreated", {"order_id": event["id"]}, source="shop")
    remember.defer(event["id"])
    return {"statusCode": 201}


def test_capture_records_each_kind_with_its_request_id_and_runs_tasks_locally():
    with capture() as deferred:
        assert handler({"id": "o-1"}, SimpleNamespace(aws_request_id="req-9")) == {"statusCode": 201}
    assert [i.kind for i in deferred] == ["sqs", "sns", "event", "task"]
    assert {i.request_id for i in deferred} == {"req-9"}
    assert json.loads(deferred.sqs[0].body) == {"order_id": "o-1"}
    assert deferred.sqs[0].attributes == {"kind": "order", "n": 2}
    assert deferred.sns[0].group_id == "o-1"
    assert json.loads(deferred.events[0].detail) == {"order_id": "o-1", "defer_id": deferred.events[0].id}
    task = deferred.tasks[0]
    assert (task.function, task.max_attempts, task.timeout_s) == (f"{__name__}:remember", 3, 2.0)
    assert deferred.run_tasks() == ["o-1"]
    assert RUNS[-1] == ("o-1", task.id)


def test_ids_are_unique_and_fit_batch_entry_and_dedup_id_rules():
    with capture() as deferred:
        ids = [defer.sqs(QUEUE, "m") for _ in range(1000)]
    assert len(set(ids)) == 1000 and ids == [i.id for i in deferred]
    assert all(len(i) <= 80 and i.replace("-", "").isalnum() for i in ids)


def test_calling_a_task_plainly_runs_it_now():
    assert remember("now") == "now" and RUNS[-1] == ("now", "")


def test_defer_change_sends_a_stream_shaped_record_to_the_target():
    from handler_lib.changes import ChangeTarget

    with capture() as deferred:
        defer.change("orders", "MODIFY", {"id": 7}, {"status": "paid"}, {"status": "new"},
                     target=ChangeTarget.sqs(QUEUE))
    (record,) = json.loads(deferred.sqs[0].body)["Records"]
    assert record["eventName"] == "MODIFY"
    assert record["dynamodb"]["Keys"] == {"id": {"N": "7"}}
    assert record["dynamodb"]["NewImage"]["status"] == {"S": "paid"}


def test_after_calls_are_captured_and_run_on_demand():
    from handler_lib import defer
    from handler_lib.testing import capture

    ran = []

    def work(n, *, label):
        ran.append((n, label))
        defer.sqs("https://sqs.us-east-1.amazonaws.com/1/q", {"n": n})
        return n * 2

    @defer
    def handler(event, context):
        defer.after(work, 21, label="x")
        return "ok"

    with capture() as deferred:
        assert handler({}, type("C", (), {"aws_request_id": "r"})()) == "ok"
        assert ran == [] and len(deferred.after) == 1  # recorded, not run
        assert deferred.run_after() == [42]
    assert ran == [(21, "x")] and len(deferred.sqs) == 1 and deferred.after == []


def test_items_carry_the_trace_header_the_runtime_set_for_the_invoke(monkeypatch):
    @defer
    def wrapped(event, context):
        defer.sqs(QUEUE, "in invoke")
        os.environ["_X_AMZN_TRACE_ID"] = "Root=changed-mid-invoke"  # not the runtime's doing
        defer.event("T", {"n": 1}, source="s")

    with capture() as deferred:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-a;Sampled=1")
        wrapped({}, SimpleNamespace(aws_request_id="r"))
        monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-b;Sampled=0")
        defer.sns("arn:aws:sns:us-east-1:1:t", "outside an invoke: read at the call")
        monkeypatch.delenv("_X_AMZN_TRACE_ID")
        defer.sqs(QUEUE, "no trace")
    assert [i.trace for i in deferred] == ["Root=1-a;Sampled=1", "Root=1-a;Sampled=1", "Root=1-b;Sampled=0", None]
