"""A dead letter that cannot be written as JSON never strands its item, under RIE with the
built layer: task arguments holding a msgpack Timestamp or ExtType, or nested ~900 deep,
are dead-lettered like any other (at a failure, and at SHUTDOWN with the rest)."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.support.moto_server import drain_queue

APP = textwrap.dedent('''
    """Defers task items whose arguments JSON cannot hold (built here: an event cannot carry them)."""
    import os
    import time

    import msgpack

    from handler_lib import defer, wire
    from handler_lib._dispatch import DISPATCHER

    TOPIC_ARN = os.environ["TEST_TOPIC_ARN"]


    def nested(depth):
        value = 1
        for _ in range(depth):
            value = [value]
        return value


    ODD = {"timestamp": [msgpack.Timestamp(1_700_000_000, 5)],
           "ext": [msgpack.ExtType(42, b"\\x00\\xff")],
           "deep": [nested(900)]}


    @defer
    def handler(event, context):
        ids = []
        for n, (name, args) in enumerate(event.get("odd", [])):
            item = wire.TaskItem(f"odd-{event['tag']}-{n}", context.aws_request_id, time.time_ns() // 1000,
                                 name, ODD[args], {}, max_attempts=1)
            ids.append(DISPATCHER.submit(item))
        for n in range(event.get("sns", 0)):
            ids.append(defer.sns(TOPIC_ARN, {"tag": event["tag"], "n": n}))
        return {"ids": ids}
''')

SLEEPER = textwrap.dedent('''
    import time

    from handler_lib import defer


    @defer.task
    def run(*args):
        time.sleep(60)  # still running at SHUTDOWN
''')


@pytest.fixture
def odd_function(rie_function, tmp_path):
    start_function, res, proxy = rie_function
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    (code / "sleeper.py").write_text(SLEEPER)
    return (lambda timeout_s, **env: start_function(code, timeout_s, TEST_TOPIC_ARN=res.topic_arn, **env)), res, proxy


def drains(logs: str) -> list:
    found = []
    for line in logs.splitlines():
        start = line.find("{")
        if start >= 0 and '"drain finished"' in line:
            found.append(json.loads(line[start:]))
    return found


def test_letters_of_unwritable_task_arguments_are_sent_and_hold_no_later_drain(odd_function):
    start, res, _ = odd_function
    rie = start(timeout_s=4)
    status, body, _ = rie.invoke({"tag": "odd", "odd": [["nosuch_mod:run", "timestamp"],
                                                        ["nosuch_mod:run", "ext"], ["nosuch_mod:run", "deep"]]})
    assert status == 200, body
    ids = json.loads(body)["ids"]
    letters = drain_queue(res.dlq_url, 3, timeout=8)
    assert sorted(l["id"] for l in letters) == sorted(ids)
    assert {l["error"]["code"] for l in letters} == {"Defer.TaskNotFound"}
    assert {l["target"] for l in letters} == {"nosuch_mod:run"}
    status, _, _ = rie.invoke({"tag": "next", "sns": 1})
    assert status == 200
    last = drains(rie.logs())[-1]
    assert last["in_flight"] == 0 and last["carried_over"] == 0, last  # nothing left in flight


def test_shutdown_dead_letters_everything_after_an_unwritable_letter(odd_function):
    start, res, proxy = odd_function
    rie = start(timeout_s=3, DEFER_DEADLINE_MARGIN_MS="1500")
    rie.invoke({"tag": "warm"})  # a slow cold start must not eat the drain's window
    proxy.throttle("PublishBatch")  # SNS stays throttled: never delivered in this life
    status, body, _ = rie.invoke({"tag": "stuck", "odd": [["sleeper:run", "timestamp"]], "sns": 4})
    assert status == 200, body
    ids = json.loads(body)["ids"]
    rie.stop()  # SIGTERM: SHUTDOWN (a spin-down); the sleeping task is first in the queue
    letters = drain_queue(res.dlq_url, 5, timeout=5)
    assert sorted(l["id"] for l in letters) == sorted(ids), rie.logs()[-4000:]
    assert {l["error"]["code"] for l in letters} == {"Defer.ShutdownUndelivered"}
