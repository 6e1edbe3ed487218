"""The shared path for services without a batch call: one API call per item.

Lambda Invoke, StartExecution and the durable callbacks each take one request; the engine
still batches by target, so these sinks take batches of one (``max_entries = 1``) and the
retries, backoff, journal and dead letters stay the engine's. An adapter says only which
operation an item becomes, and which error codes mean its work is already done.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Dict, FrozenSet, List, Tuple

from .base import Sink, describe_exception


class SingleCallSink(Sink):
    max_entries = 1
    #: Error codes that mean the call was already made for this item (a second delivery).
    already_done: FrozenSet[str] = frozenset()

    @abstractmethod
    def request(self, item: Any) -> Tuple[str, Dict[str, Any]]:
        """(botocore client method, its keyword arguments) for one item."""

    def entry(self, item: Any, entry_id: str) -> Dict[str, Any]:
        operation, arguments = self.request(item)
        return {"operation": operation, "arguments": arguments}

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        (entry,) = entries
        try:
            response: Dict[str, Any] = getattr(self.client, entry["operation"])(**entry["arguments"])
        except Exception as exc:  # noqa: BLE001 - base.send maps whatever is not "already done"
            if describe_exception(exc)[0] not in self.already_done:
                raise
            return {}
        return response
