"""SQS SendMessageBatch adapter."""

from __future__ import annotations

from typing import Any, Dict, List

from ... import wire

from .base import attributes_size, fifo_fields, message_attributes
from .claim_check import PayloadSink


class SqsSink(PayloadSink):
    service = "sqs"
    max_batch_bytes = 1_048_576
    payload_field = "body"

    def entry(self, item: wire.SqsItem, entry_id: str) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"Id": entry_id, "MessageBody": item.body}
        entry["MessageAttributes"] = message_attributes(item)
        if item.delay_seconds is not None:
            entry["DelaySeconds"] = item.delay_seconds
        entry.update(fifo_fields(item))
        if item.trace:  # a system attribute: not one of the 10, not counted in the size
            entry["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": item.trace}}
        return entry

    def message_size(self, item: wire.SqsItem) -> int:
        return len(item.body.encode()) + attributes_size(item)

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        response: Dict[str, Any] = self.client.send_message_batch(QueueUrl=target, Entries=entries)
        return response
