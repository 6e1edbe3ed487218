"""EventBridge PutEvents adapter (failures come back positionally, not by entry id)."""

from __future__ import annotations

from typing import Any, Dict, List

from ... import wire

from .base import EntryFailures, Sink


class EventsSink(Sink):
    service = "events"
    max_batch_bytes = 1_048_576  # PutEvents: 1 MB an entry and a request since 2026-01-29

    def entry(self, item: wire.EventItem, entry_id: str) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"Source": item.source, "DetailType": item.detail_type,
                                 "Detail": item.detail, "EventBusName": item.target}
        if item.resources:
            entry["Resources"] = item.resources
        if item.trace:
            entry["TraceHeader"] = item.trace
        return entry

    def entry_size(self, item: wire.EventItem) -> int:
        # The PutEvents size formula: Time (14) + Source + DetailType + Detail + Resources.
        return (14 + len(item.source.encode()) + len(item.detail_type.encode())
                + len(item.detail.encode()) + sum(len(r.encode()) for r in item.resources or ()))

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        response: Dict[str, Any] = self.client.put_events(Entries=entries)
        return response

    def failures(self, response: Dict[str, Any], entries: List[Dict[str, Any]]) -> EntryFailures:
        failed: EntryFailures = {}
        if not response.get("FailedEntryCount"):
            return failed
        for index, result in enumerate(response.get("Entries") or []):
            if result.get("ErrorCode"):
                failed[str(index)] = (result["ErrorCode"], result.get("ErrorMessage", ""), False)
        return failed
