"""Bad input fails in the handler, at the call, with a clear message, and nothing is queued."""

import pytest

from handler_lib import defer
from handler_lib.testing import capture

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
FIFO = QUEUE + ".fifo"
TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"


@defer.task
def known_task(order_id: str) -> str:
    return f"ran {order_id}"


def plain_function(order_id: str) -> None:
    pass


@pytest.mark.parametrize("call, error, match", [
    (lambda: defer.sqs(QUEUE, "x" * 1_048_577), ValueError, "SQS allows 1048576"),
    (lambda: defer.sns(TOPIC, "x" * 262_145), ValueError, "SNS allows 262144"),
    (lambda: defer.event("T", {"x": "y" * 1_048_576}, source="s"), ValueError, "PutEvents allows 1048576"),
    (lambda: defer.sqs(QUEUE, {"when": object()}), TypeError, "not JSON-serializable"),
    (lambda: defer.sqs(QUEUE, 42), TypeError, "must be a str, dict, list"),
    (lambda: defer.sqs(FIFO, "m"), ValueError, "pass group_id"),
    (lambda: defer.sns(TOPIC + ".fifo", "m"), ValueError, "pass group_id"),
    (lambda: defer.sqs(QUEUE, "m", group_id="g"), ValueError, "for FIFO targets"),
    (lambda: defer.sqs(FIFO, "m", group_id="g", delay_seconds=5), ValueError, "per-message delay"),
    (lambda: defer.sqs(QUEUE, "m", delay_seconds=901), ValueError, "0..900"),
    (lambda: defer.sqs(QUEUE, "m", attributes={f"a{i}": i for i in range(11)}), ValueError, "at most 9"),
    (lambda: defer.sqs(QUEUE, "m", attributes={"a": None}), TypeError, "str, int, float or bytes"),
    (lambda: defer.sqs("", "m"), TypeError, "queue_url"),
    (lambda: defer.sns(TOPIC, "m", subject="two\nlines"), ValueError, "one line"),
    (lambda: defer.event("T", "[1, 2]", source="s"), ValueError, "JSON object"),
    (lambda: defer.event("T", "{not json", source="s"), ValueError, "JSON object"),
    (lambda: defer.call(plain_function, "o-1"), ValueError, "@defer.task"),
    (lambda: known_task.defer(object()), TypeError, "cannot serialize"),
    (lambda: known_task.defer("x" * 300_000), ValueError, "task arguments are"),
])
def test_bad_input_raises_at_the_call_and_queues_nothing(call, error, match):
    with capture() as deferred:
        with pytest.raises(error, match=match):
            call()
    assert list(deferred) == []


def test_task_decorator_refuses_what_the_extension_could_not_import():
    def local():
        pass

    with pytest.raises(ValueError, match="module-level"):
        defer.task(local)
    with pytest.raises(ValueError, match="max_attempts"):
        defer.task(max_attempts=0)(plain_function)
    with pytest.raises(ValueError, match="timeout"):
        defer.task(timeout=-1)(plain_function)


def test_defer_id_takes_one_of_the_ten_attributes_and_counts_in_the_size():
    with capture() as deferred:
        with pytest.raises(ValueError, match="one is defer_id .* at most 9"):
            defer.sqs(QUEUE, "m", attributes={f"a{i}": i for i in range(10)})
        with pytest.raises(ValueError, match="set by lambda-defer"):
            defer.sns(TOPIC, "m", attributes={"defer_id": "mine"})
        with pytest.raises(ValueError, match="SQS allows 1048576"):
            defer.sqs(QUEUE, "x" * 1_048_576)  # fits alone; not with the defer_id attribute
        defer.sqs(QUEUE, "m", attributes={f"a{i}": i for i in range(9)})
    assert len(deferred) == 1
