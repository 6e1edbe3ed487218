"""Nothing is dead-lettered for throttling alone (issue 22): the real extension under RIE,
every call through the fault proxy, DEFER_MAX_ATTEMPTS below the number of throttles an item
meets. Throttles back off without using attempts, whatever their code, a 429 included."""

from __future__ import annotations

import pytest

from tests.support.moto_server import drain_queue

from .test_faults_rie import FUNCTION_DIR, tags_of


@pytest.fixture
def start(rie_function):
    start_function, res, proxy = rie_function
    return (lambda **env: start_function(FUNCTION_DIR, 10, **env)), res, proxy


def test_a_429_storm_longer_than_max_attempts_dead_letters_nothing(start) -> None:
    # GIVEN two attempts per item, and more 429s (under a code no list names) than that
    run, res, proxy = start
    rie = run(DEFER_MAX_ATTEMPTS="2")
    proxy.error("SendMessageBatch", "TooManyRequests", 429, calls=6, service="sqs", message="Rate exceeded")
    # WHEN the function defers three items
    status, _, _ = rie.invoke({"tag": "t429", "sqs": 3})
    assert status == 200
    # THEN all three arrive and the DLQ stays empty
    assert tags_of(drain_queue(res.queue_url, 3, timeout=5), "t429") == [0, 1, 2]
    assert drain_queue(res.dlq_url, 0, timeout=0.5) == []
    assert proxy.count("SendMessageBatch") >= 6 + 1


def test_a_quota_far_below_the_load_delays_delivery_and_dead_letters_nothing(start) -> None:
    # GIVEN one attempt per item, and a quota of one SendMessageBatch a second for everyone
    run, res, proxy = start
    rie = run(DEFER_MAX_ATTEMPTS="1")
    proxy.set_quota("SendMessageBatch", 1, unit="requests")
    # WHEN the function defers 40 items (4 batches at once), then the environment is invoked
    # again with nothing, as a fleet's next requests would (carried-over items go then)
    status, _, _ = rie.invoke({"tag": "quota", "sqs": 40})
    assert status == 200
    got = drain_queue(res.queue_url, 40, timeout=3)
    for _ in range(3):
        if len(tags_of(got, "quota")) == 40:
            break
        assert rie.invoke({"tag": "empty"})[0] == 200
        got += drain_queue(res.queue_url, 40 - len(tags_of(got, "quota")), timeout=3)
    # THEN the quota throttled some calls, and every item arrived; none was dead-lettered
    assert proxy.quota_stats()["SendMessageBatch"]["throttled"] >= 1
    assert tags_of(got, "quota") == list(range(40))
    assert drain_queue(res.dlq_url, 0, timeout=0.5) == []
