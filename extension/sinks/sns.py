"""SNS PublishBatch adapter."""

from __future__ import annotations

from typing import Any, Dict, List

from handler_lib import wire

from .base import Sink, attributes_size, fifo_fields, message_attributes


class SnsSink(Sink):
    service = "sns"
    max_batch_bytes = 262_144

    def entry(self, item: wire.SnsItem, entry_id: str) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"Id": entry_id, "Message": item.message}
        if item.subject is not None:
            entry["Subject"] = item.subject
        entry["MessageAttributes"] = message_attributes(item)
        entry.update(fifo_fields(item))
        return entry

    def entry_size(self, item: wire.SnsItem) -> int:
        return len(item.message.encode()) + attributes_size(item)

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        return self.client.publish_batch(TopicArn=target, PublishBatchRequestEntries=entries)
