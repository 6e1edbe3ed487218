"""The claim check: an SQS or SNS payload over the threshold goes to S3 before its message.

The item stays in the queue (and the journal) as it was deferred; only at its send does the
sink put the payload in S3 and send, in its place, a pointer in the format of AWS's extended
clients (``wire.POINTER_CLASS``, attribute ``wire.POINTER_SIZE_ATTRIBUTE``). The object's key
is ``KEY_PREFIX`` and the item's id, so every attempt writes the same object: a crash or a
failed send between the put and the message costs a second put of the same key, never a
second object, and an item that is dead-lettered instead leaves at most one object behind,
under a prefix a bucket's lifecycle rule can expire.

The puts of one drain share a pool of ``DEFER_CONCURRENCY`` threads: every batch in flight
waits for its own puts, so a drain of many large items puts that many at once.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ... import wire
from ...config import Config

from ..outcome import Outcome
from ..dead_letters import is_dead_letter
from .base import MakeClient, Sink, attributes_size, describe_exception, http_status

#: The prefix of every object the claim check writes: the scope of a lifecycle rule that
#: expires what no consumer deleted (the objects of dead-lettered items among them).
KEY_PREFIX = "defer-payloads/"


def object_key(item_id: str) -> str:
    """The item's S3 key: the same on every attempt, so a retried put overwrites."""
    return KEY_PREFIX + item_id


def pointer_body(bucket: str, key: str) -> str:
    """The message body the extended clients read as a pointer to ``s3://bucket/key``."""
    return json.dumps([wire.POINTER_CLASS, {"s3BucketName": bucket, "s3Key": key}])


class ClaimCheck:
    """Puts payloads in one bucket, at most ``concurrency`` at once; thread-safe."""

    def __init__(self, config: Config, client_factory: MakeClient) -> None:
        assert config.large_payload_bucket is not None
        self.bucket: str = config.large_payload_bucket
        self._config = config
        self._client_factory = client_factory
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()

    @classmethod
    def configured(cls, config: Config, client_factory: MakeClient) -> Optional["ClaimCheck"]:
        """The claim check ``DEFER_LARGE_PAYLOAD_BUCKET`` asks for, or None."""
        return None if config.large_payload_bucket is None else cls(config, client_factory)

    def applies(self, size: int, service_limit: int) -> bool:
        """Whether a message of ``size`` bytes (body and attributes) goes by S3: the rule the
        call site checked the message by (``Config.offload_above``)."""
        threshold = self._config.offload_above(service_limit)
        return threshold is not None and size > threshold

    def pointer_size(self, item_id: str, attributes_size: int) -> int:
        """Bytes of the pointer message that replaces a payload (its size attribute included)."""
        size_attribute = len(wire.POINTER_SIZE_ATTRIBUTE) + 6 + 10  # "Number", up to 10 digits
        return len(pointer_body(self.bucket, object_key(item_id)).encode()) + attributes_size + size_attribute

    def offload(self, items: Sequence[Any], field: str) -> Tuple[Dict[str, Any], Dict[str, Outcome]]:
        """Put each item's payload (its ``field``) in S3, at once; return (item id -> the item
        with the pointer in place of its payload, item id -> the failure of its put)."""
        def put(item: Any) -> Tuple[str, Any]:
            payload = getattr(item, field).encode("utf-8")
            key = object_key(item.id)
            try:
                self._client_factory("s3").put_object(Bucket=self.bucket, Key=key, Body=payload)
            except Exception as exc:  # noqa: BLE001 - the item's outcome, like a failed entry
                code, message, sender_fault = describe_exception(exc)
                return item.id, Outcome.failure(item.id, code, f"S3 PutObject s3://{self.bucket}/{key}: {message}",
                                                sender_fault=sender_fault, http_status=http_status(exc))
            attributes = dict(item.attributes or {})
            attributes[wire.POINTER_SIZE_ATTRIBUTE] = len(payload)
            return item.id, item._replace(**{field: pointer_body(self.bucket, key), "attributes": attributes})

        if len(items) == 1:
            results: List[Tuple[str, Any]] = [put(items[0])]
        else:
            results = list(self._executor().map(put, items))
        pointed = {item_id: r for item_id, r in results if not isinstance(r, Outcome)}
        failed = {item_id: r for item_id, r in results if isinstance(r, Outcome)}
        return pointed, failed

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._config.concurrency, thread_name_prefix="defer-s3")
        return self._pool


class PayloadSink(Sink):
    """SQS and SNS: a message over the claim check's threshold is sent as a pointer to its
    payload in S3, put just before. The queue holds the item as deferred; a dead letter is
    never offloaded (it fits SQS by construction, and redrive reads it as it is)."""

    #: The item field that holds the payload.
    payload_field: str

    def __init__(self, client_factory: MakeClient, claim_check: Optional[ClaimCheck] = None) -> None:
        super().__init__(client_factory)
        self.claim_check = claim_check

    @abstractmethod
    def message_size(self, item: Any) -> int:
        """Bytes of the message as deferred (payload and attributes), as the service counts them."""

    def _offloads(self, item: Any) -> bool:
        # one message may be as large as one batch, for SQS and SNS alike
        return (self.claim_check is not None and not is_dead_letter(item)
                and self.claim_check.applies(self.message_size(item), self.max_batch_bytes))

    def entry_size(self, item: Any) -> int:
        if self.claim_check is not None and self._offloads(item):
            return self.claim_check.pointer_size(item.id, attributes_size(item))
        return self.message_size(item)

    def send(self, target: str, items: Sequence[wire.WorkItem]) -> List[Outcome]:
        large = [item for item in items if self._offloads(item)]
        if self.claim_check is None or not large:
            return super().send(target, items)
        pointed, failed = self.claim_check.offload(large, self.payload_field)
        sendable = [pointed.get(item.id, item) for item in items if item.id not in failed]
        sent = iter(super().send(target, sendable) if sendable else [])
        return [failed[item.id] if item.id in failed else next(sent) for item in items]
