"""What happened to one item on one attempt, and which failures are worth another attempt.

The reason strings are the wire-visible failure types we log and dead-letter with.
"""

from __future__ import annotations

from dataclasses import dataclass

# Failure types written to logs and dead letters (one place, like a runtime's error taxonomy).
TASK_NOT_FOUND = "Defer.TaskNotFound"
TASK_FAILED = "Defer.TaskFailed"
TASK_TIMEOUT = "Defer.TaskTimeout"
TRANSPORT = "Defer.TransportError"
SHUTDOWN_UNDELIVERED = "Defer.ShutdownUndelivered"
API_GONE_UNDELIVERED = "Defer.ApiGoneUndelivered"
UNKNOWN_KIND = "Defer.UnknownKind"
INVALID_REQUEST = "Defer.InvalidRequest"  # botocore's own validation refused the request: never sent

# Failures that say nothing about the item (the service was unreachable or shed load):
# they back off and carry over, but never use up the item's attempts, so an outage
# delays delivery instead of dead-lettering (or losing) everything deferred meanwhile.
# The codes as botocore reports them: its own throttling list (retries/standard.py) and the
# throttling errors of the services we call (SQS KmsThrottled, SNS KMSThrottling, Step
# Functions KmsThrottlingException). A reply with HTTP 429 is throttling whatever its code.
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "Throttled", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestLimitExceeded", "KMSThrottlingException", "KMS.ThrottlingException", "SlowDown",
    "EC2ThrottledException", "KmsThrottled", "KMSThrottling", "KmsThrottlingException",
    "BandwidthLimitExceeded", "PriorRequestNotComplete",
})
TOO_MANY_REQUESTS = 429

# The request was refused for who sent it or when, not for what it holds: expired or not yet
# valid credentials, a signature that does not match (a rotated key), a clock that drifted.
# The same request goes through once the credentials are renewed or the clock is right, so
# these stall like throttling (back off, carry over, no attempt used). Were they permanent,
# an episode of them would dead-letter everything, and its letters would fail the same way.
STALL_CODES = THROTTLING_CODES | frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidSignatureException", "SignatureDoesNotMatch",
    "RequestExpired", "RequestTimeTooSkewed", "InvalidClientTokenId", "UnrecognizedClientException",
})

# Error codes that can succeed on a later attempt; everything with a sender fault outside
# this set (validation, missing queue/topic/bus, access denied) goes straight to the DLQ.
RETRYABLE_CODES = STALL_CODES | frozenset({
    "ServiceUnavailable", "ServiceUnavailableException", "InternalError",
    "InternalFailure", "InternalServerError", "RequestTimeout", "RequestTimeoutException",
    "AWS.SimpleQueueService.InternalError", "TransactionInProgressException",
    "ExecutionLimitExceeded", "ResourceConflictException",  # Step Functions' and Lambda's "not now"
    TRANSPORT, TASK_FAILED, TASK_TIMEOUT,
})


def is_throttling(code: str, http_status: int = 0) -> bool:
    """Whether a failure is the service shedding load (its code, or HTTP 429 whatever the code):
    it says nothing about the item, so it backs off without using an attempt."""
    return code in THROTTLING_CODES or http_status == TOO_MANY_REQUESTS


def is_stall(code: str, http_status: int = 0) -> bool:
    """Whether a failure backs off and carries over without using one of the item's attempts:
    throttling, an unreachable endpoint, credentials or clock (STALL_CODES)."""
    return code == TRANSPORT or code in STALL_CODES or is_throttling(code, http_status)


@dataclass(frozen=True)
class Outcome:
    item_id: str
    ok: bool
    code: str = ""
    message: str = ""
    retryable: bool = False
    traceback: str = ""  # a failed task's own frames, for the log and the dead letter
    throttled: bool = False  # HTTP 429 under a code of no list: a stall all the same

    @property
    def uses_attempt(self) -> bool:
        return not (self.throttled or is_stall(self.code))

    @staticmethod
    def success(item_id: str) -> "Outcome":
        return Outcome(item_id, True)

    @staticmethod
    def failure(item_id: str, code: str, message: str, *, sender_fault: bool = False,
                traceback: str = "", http_status: int = 0) -> "Outcome":
        throttled = is_throttling(code, http_status)
        retryable = throttled or code in RETRYABLE_CODES or (not sender_fault and not _looks_permanent(code))
        return Outcome(item_id, False, code, message, retryable, traceback, throttled)


def _looks_permanent(code: str) -> bool:
    lowered = code.lower()
    return any(word in lowered for word in (
        "notfound", "nonexistent", "doesnotexist", "accessdenied", "authoriz", "invalid",
        "validation", "malformed", "toolong", "unsupported", "badrequest", "optin"))
