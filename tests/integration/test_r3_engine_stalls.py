"""Expired credentials and a skewed clock are stalls, not the item's fault: against moto
through the fault proxy, an episode of such replies delays delivery and spends no attempt."""

from __future__ import annotations

import json
import os
import time

import pytest

from handler_lib import config as cfg
from handler_lib import wire
from handler_lib._inline import make_drainer
from tests.support.moto_server import drain_messages, drain_queue

# (code, HTTP status) as the services send them.
CREDENTIAL_AND_CLOCK_ERRORS = [
    ("ExpiredToken", 400), ("ExpiredTokenException", 400), ("InvalidSignatureException", 400),
    ("SignatureDoesNotMatch", 403), ("RequestExpired", 400), ("RequestTimeTooSkewed", 403),
]


@pytest.fixture
def env(aws_resources, fault_proxy):
    res = aws_resources()
    os.environ.update({"AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_DLQ_URL": res.dlq_url,
                       "DEFER_MAX_ATTEMPTS": "3"})
    return res, fault_proxy


@pytest.mark.parametrize("code,status", CREDENTIAL_AND_CLOCK_ERRORS)
def test_an_episode_of_credential_or_clock_errors_delays_delivery_and_spends_no_attempt(env, code, status):
    res, proxy = env
    proxy.error(None, code, status, calls=4, service="sqs",  # more replies than DEFER_MAX_ATTEMPTS
                message="The security token included in the request is expired")
    items = [wire.SqsItem(f"stall{k}-{time.monotonic_ns()}", "req", time.time_ns() // 1000, res.queue_url,
                          json.dumps({"n": k})) for k in range(3)]
    drainer = make_drainer(cfg.load())
    for item in items:
        drainer.queue.add(item)
    report = drainer.drain(time.monotonic() + 30)
    assert (report.delivered, report.dead_lettered, report.given_up) == (3, 0, 0), report
    assert len(drainer.queue) == 0
    got = sorted(json.loads(m["Body"])["n"] for m in drain_messages(res.queue_url, 3, timeout=5))
    assert got == [0, 1, 2]
    assert drain_queue(res.dlq_url, 0, timeout=1) == []  # nothing dead-lettered


def test_a_stalled_item_still_counts_its_real_failures(env):
    # A permanent failure after a stall is still permanent: the stall did not reset anything
    res, proxy = env
    proxy.error("SendMessageBatch", "ExpiredToken", 400, calls=1, service="sqs")
    proxy.fail_entries("SendMessageBatch", calls=1, code="InvalidParameterValue", sender_fault=True,
                       service="sqs")
    item = wire.SqsItem(f"stall-perm-{time.monotonic_ns()}", "req", time.time_ns() // 1000, res.queue_url, "x")
    drainer = make_drainer(cfg.load())
    drainer.queue.add(item)
    report = drainer.drain(time.monotonic() + 30)
    assert (report.delivered, report.dead_lettered) == (0, 1), report
    (letter,) = drain_queue(res.dlq_url, 1, timeout=3)
    assert letter["error"]["code"] == "InvalidParameterValue" and letter["attempts"] == 1
