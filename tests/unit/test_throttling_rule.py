"""Throttling never uses an item's attempts (issue 22: nothing is dead-lettered for throttling
alone): the pure rule over codes and HTTP statuses, and the drain's accounting under a throttle
storm longer than DEFER_MAX_ATTEMPTS (in-memory sinks; the real extension behind the fault
proxy is tests/integration/test_fleet_quota.py)."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

import pytest
from botocore.exceptions import ClientError

from handler_lib import wire
from handler_lib.config import Config
from handler_lib.engine.drain import BACKOFF_CAP_S, Drainer, backoff_s
from handler_lib.engine.outcome import THROTTLING_CODES, Outcome, is_stall, is_throttling
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.sinks.base import Sink, http_status
from handler_lib.engine.tasks import TaskRunner

# What the services send when they shed load, as botocore reports each code.
SERVICE_THROTTLES = [
    ("sqs", "RequestThrottled"), ("sqs", "ThrottlingException"), ("sqs", "KmsThrottled"),
    ("sns", "Throttling"), ("sns", "Throttled"), ("sns", "KMSThrottling"),
    ("events", "ThrottlingException"), ("lambda", "TooManyRequestsException"),
    ("lambda", "EC2ThrottledException"), ("stepfunctions", "ThrottlingException"),
    ("stepfunctions", "KmsThrottlingException"), ("s3", "SlowDown"), ("kms", "KMSThrottlingException"),
]


@pytest.mark.parametrize("service,code", SERVICE_THROTTLES)
def test_every_services_throttling_code_is_a_stall_that_uses_no_attempt(service: str, code: str) -> None:
    # GIVEN the code as the service's reply carries it (a sender fault, as SNS and Lambda mark it)
    outcome = Outcome.failure("i0", code, "Rate exceeded", sender_fault=True)
    # THEN it is retried without using an attempt
    assert is_throttling(code) and is_stall(code)
    assert outcome.retryable and not outcome.uses_attempt


def test_http_429_is_throttling_whatever_its_code() -> None:
    outcome = Outcome.failure("i0", "TooManyRequests", "slow down", sender_fault=True, http_status=429)
    assert outcome.throttled and outcome.retryable and not outcome.uses_attempt
    # the same unknown code without the 429 is a sender fault: dead-lettered at once
    permanent = Outcome.failure("i0", "TooManyRequests", "slow down", sender_fault=True, http_status=400)
    assert not permanent.retryable and permanent.uses_attempt


def test_real_failures_still_use_attempts() -> None:
    for code in ("InternalError", "ServiceUnavailable", "InvalidParameterValue", "Defer.TaskFailed"):
        assert not is_throttling(code) and Outcome.failure("i0", code, "").uses_attempt, code


def test_botocore_own_throttling_list_is_covered() -> None:
    from botocore.retries.standard import ThrottledRetryableChecker

    theirs = set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
    # LimitExceededException and TransactionInProgressException are not always throttling
    # (EventBridge's LimitExceededException is a resource count; TransactionInProgress is retried)
    assert theirs - THROTTLING_CODES <= {"LimitExceededException", "TransactionInProgressException"}


def test_http_status_reads_a_botocore_error_and_nothing_else() -> None:
    error = ClientError({"Error": {"Code": "X", "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": 429}}, "Op")
    assert http_status(error) == 429
    assert http_status(ConnectionError("reset")) == 0


def test_stall_backoff_is_the_capped_exponential_with_jitter() -> None:
    assert backoff_s(1, lambda: 0.0) == pytest.approx(0.025)
    assert backoff_s(1, lambda: 1.0) == pytest.approx(0.05)
    assert backoff_s(40, lambda: 1.0) == BACKOFF_CAP_S  # a long storm waits at most the cap


class ThrottlingSink(Sink):
    """Answers the first ``storm`` calls for each item with a 429 ClientError (a code no list
    names), as an API gateway in front of a service does; then delivers."""

    service = "sqs"

    def __init__(self, storm: int) -> None:
        super().__init__(lambda service: None)
        self.storm = storm
        self.calls: Dict[str, int] = {}
        self.lock = threading.Lock()

    def entry(self, item: Any, entry_id: str) -> Dict[str, Any]:
        return {"Id": entry_id, "item_id": item.id}

    def entry_size(self, item: Any) -> int:
        return len(item.body)

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        with self.lock:
            counts = [self.calls.setdefault(e["item_id"], 0) for e in entries]
            for e in entries:
                self.calls[e["item_id"]] += 1
        if min(counts) < self.storm:
            raise ClientError({"Error": {"Code": "TooManyRequests", "Message": "Rate exceeded"},
                               "ResponseMetadata": {"HTTPStatusCode": 429}}, "SendMessageBatch")
        return {"Failed": []}


def test_a_throttle_storm_longer_than_max_attempts_dead_letters_nothing() -> None:
    # GIVEN max_attempts=2 and every call throttled 4 times per item
    queue = PendingQueue()
    sink = ThrottlingSink(storm=4)
    drainer = Drainer(queue, {"sqs": sink}, TaskRunner(), Config(dlq_url="https://sqs/dlq", max_attempts=2))
    for k in range(3):
        queue.add(wire.SqsItem(f"i{k}", "r", 0, "https://sqs/q", "m"))
    # WHEN it drains
    report = drainer.drain(time.monotonic() + 10)
    # THEN everything is delivered, nothing dead-lettered, and each throttle was a retry
    assert (report.delivered, report.dead_lettered, report.given_up) == (3, 0, 0), report
    assert len(queue) == 0
    assert all(n == 5 for n in sink.calls.values()), sink.calls
    assert report.retried >= 4
