"""An SQS event source for a sandbox: what Lambda's event source mapping does for a function
fed by a queue, so a worker function runs locally as it does in production.

Each poll receives up to ``batch_size`` messages, hands them to the function as one SQS
event (records shaped as Lambda builds them), and settles them by the answer: with
``ReportBatchItemFailures`` on, the records named in ``batchItemFailures`` go back to the
queue and the others are deleted; a function error (it raised, timed out, or answered
something else) sends the whole batch back. Unlike Lambda, a message sent back is visible
again at once (``retry_after_s``, default 0), not after the queue's visibility timeout, so a
local run does not wait.

The caller passes an SQS client (boto3's): the sandbox itself needs no AWS SDK.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Set

__all__ = ["SqsEventSource", "PollResult", "record_of"]


def record_of(message: Mapping[str, Any], queue_arn: str, region: str = "us-east-1") -> Dict[str, Any]:
    """One record of Lambda's SQS event for a message ``ReceiveMessage`` returned (asked with
    ``AttributeNames=["All"]`` and ``MessageAttributeNames=["All"]``)."""
    attributes: Dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attributes[name] = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
        if "StringValue" in value:
            attributes[name]["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            attributes[name]["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"], "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": attributes, "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn, "awsRegion": region}


@dataclass
class PollResult:
    """One batch: how many messages went to the function, which it reported failed, and
    whether the invoke itself failed (then every message of the batch went back)."""

    received: int = 0
    failed: List[str] = field(default_factory=list)
    function_error: Optional[str] = None

    @property
    def done(self) -> int:
        return self.received - len(self.failed) if self.function_error is None else 0


class SqsEventSource:
    """Polls ``queue_url`` for ``sandbox`` (a started :class:`lambda_sandbox.Sandbox`)."""

    def __init__(self, sandbox: Any, sqs: Any, queue_url: str, batch_size: int = 10,
                 report_batch_item_failures: bool = True, retry_after_s: int = 0) -> None:
        if not 1 <= batch_size <= 10:
            raise ValueError(f"batch_size {batch_size} is outside SQS's 1..10 per receive")
        self.sandbox = sandbox
        self.sqs = sqs
        self.queue_url = queue_url
        self.batch_size = batch_size
        self.report_batch_item_failures = report_batch_item_failures
        self.retry_after_s = retry_after_s
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.region = self.queue_arn.split(":")[3]

    def poll(self) -> PollResult:
        """One receive, one invoke, the batch settled; ``received == 0`` when the queue had none."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=0,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return PollResult()
        result = self.sandbox.invoke({"Records": [record_of(m, self.queue_arn, self.region) for m in messages]})
        if result.request_id:
            self.sandbox.wait_for_report(result.request_id)
        outcome = PollResult(received=len(messages))
        ids = sorted(m["MessageId"] for m in messages)
        if result.status != 200 or result.function_error is not None:
            outcome.function_error = result.function_error or f"invoke answered HTTP {result.status}"
        elif self.report_batch_item_failures:
            # Lambda's rules: no answer, or no failures listed, is success for all; an entry
            # without a message id of this batch fails the whole batch.
            try:
                answer = result.json()
            except ValueError:
                answer = None
            failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
            named = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures or []]
            if any(n not in ids for n in named):
                outcome.function_error = f"batchItemFailures names no message of the batch: {named}"
            else:
                outcome.failed = list(dict.fromkeys(str(n) for n in named))  # a record named twice fails once
        if outcome.function_error is not None:
            outcome.failed = ids
        self._settle(messages, set(outcome.failed))
        return outcome

    def drain(self, max_polls: int = 1000) -> List[PollResult]:
        """Poll until a receive finds the queue empty (or ``max_polls``): every batch's result."""
        results = []
        for _ in range(max_polls):
            outcome = self.poll()
            if not outcome.received:
                break
            results.append(outcome)
        return results

    def _settle(self, messages: List[Mapping[str, Any]], failed: Set[str]) -> None:
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[start:start + 10])])
        back = [m for m in messages if m["MessageId"] in failed]
        for start in range(0, len(back), 10):
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_after_s}
                for n, m in enumerate(back[start:start + 10])])
