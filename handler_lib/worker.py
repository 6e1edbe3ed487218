"""A Lambda handler that runs ``@defer.task(queue=...)`` calls from an SQS event source.

Set ``handler_lib.worker.handler`` as the handler of a function whose code holds the task
modules (the same code as the producer, or the part of it that defines the tasks), fed by
the task's queue with ``ReportBatchItemFailures`` on. Each record is one call; the answer
lists the records that failed, so SQS delivers only those again, after the queue's
visibility timeout. Retries are SQS's: a failed run is retried while its receive count is
under the task's ``max_attempts`` (default ``DEFER_MAX_ATTEMPTS``), never past it; then, and
at once for a task this function does not have, it is dead-lettered as the extension does it (a letter in
``DEFER_DLQ_URL``, which ``python -m handler_lib.redrive`` reads) and removed from the queue,
or, without ``DEFER_DLQ_URL``, left to the queue's own redrive policy. A message that is not
a queued task, or one that does not decode, is never run and never deleted: it is reported
failed, with an ERROR, for the queue's redrive policy to move.

A batch never runs the invoke out: a record is started only before the invoke's deadline less
``DEFER_DEADLINE_MARGIN_MS``, and one still running then is left to finish on its own (at
least once: SQS delivers it again) while the invoke answers. What was not done is reported
failed, so the records that were settled stay settled (an invoke that timed out would have
had the whole batch delivered again, every time).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Set

from . import _items
from . import config as _config
from . import wire
from ._task_queue import NotAQueuedTask, task_of
from .engine.dead_letters import dead_letter_body
from .engine.outcome import TASK_FAILED, Outcome
from .engine.tasks import TaskRunner

__all__ = ["handler"]

log = logging.getLogger("lambda_defer.worker")

#: The group of a FIFO record that names none: ordered against every other record.
ANY_GROUP = "\x00any"

_runner: Optional[TaskRunner] = None
_sqs: Any = None
_lock = threading.Lock()


def handler(event: Mapping[str, Any], context: Any) -> Dict[str, List[Dict[str, str]]]:
    """Run each record's task; return ``{"batchItemFailures": [...]}`` for those to run again."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ValueError("handler_lib.worker.handler takes an SQS event: {\"Records\": [...]} from an "
                         "SQS event source mapping")
    failures: List[Dict[str, str]] = []
    failed_groups: Set[str] = set()  # FIFO message groups with a failed record in this batch
    give_up_at = _give_up_at(getattr(context, "get_remaining_time_in_millis", None))
    out_of_time = False
    for position, record in enumerate(records):
        message_id = str(record.get("messageId", "")) if isinstance(record, Mapping) else ""
        if out_of_time or (give_up_at is not None and time.monotonic() >= give_up_at):
            if not out_of_time:
                log.warning("the invoke's time is nearly up: record %s and the %d after it are not run "
                            "now; SQS delivers them again", message_id,
                            len(records) - position - 1)
                out_of_time = True
            failures.append({"itemIdentifier": message_id})
            continue
        group = _fifo_group(record)
        if group is not None and failed_groups and (group in failed_groups or ANY_GROUP in failed_groups
                                                    or group == ANY_GROUP):
            # A FIFO group keeps its order only if nothing after its failed record runs first;
            # other groups run (each is received again only for a failure of its own).
            failures.append({"itemIdentifier": message_id})
            failed_groups.add(group)  # one that names no group holds back every later record
            continue
        try:
            done = _run(record, give_up_at)
        except _OutOfTime:
            log.warning("queued task of message %s still runs at the invoke's deadline less the margin: "
                        "left to finish on its own; SQS delivers it again (at least once)", message_id)
            done, out_of_time = False, True
        except Exception:  # noqa: BLE001 - one record's failure never costs the others
            log.exception("queued task of message %s could not be run", message_id)
            done = False
        if not done:
            failures.append({"itemIdentifier": message_id})
            if group is not None:
                failed_groups.add(group)
    return {"batchItemFailures": failures}


class _OutOfTime(Exception):
    """A task still running at the invoke's deadline less the margin."""


def _give_up_at(clock: Optional[Callable[[], int]]) -> Optional[float]:
    """The monotonic time by which the batch stops: the invoke's deadline less the margin."""
    if not callable(clock):
        return None
    try:
        remaining_ms = int(clock())
    except Exception:  # noqa: BLE001 - a context without a usable clock: no bound
        return None
    margin_ms = _config.capped_margin_ms(_config.load().deadline_margin_ms, None)
    return time.monotonic() + max(0, remaining_ms - margin_ms) / 1000


def _run_until(item: Any, attempt: int, give_up_at: Optional[float]) -> Outcome:
    """Run one attempt, on a thread of its own when the invoke has a deadline, so that a task
    still running at ``give_up_at`` does not hold the invoke past it (raises _OutOfTime)."""
    if give_up_at is None:
        return _task_runner().run(item, attempt)
    result: List[Outcome] = []
    thread = threading.Thread(target=lambda: result.append(_task_runner().run(item, attempt)),
                              name=f"defer-worker-{item.id}", daemon=True)
    thread.start()
    thread.join(max(0.0, give_up_at - time.monotonic()))
    if not result:
        raise _OutOfTime(item.id)
    return result[0]


def _run(record: Any, give_up_at: Optional[float] = None) -> bool:
    """True when the record is done with: run, or dead-lettered."""
    if not isinstance(record, Mapping):
        raise ValueError(f"an SQS record is an object, not {type(record).__name__}")
    attributes = record.get("attributes") or {}
    attempt = max(1, int(attributes.get("ApproximateReceiveCount", 1) or 1))
    try:
        item = task_of(record.get("body"))
    except NotAQueuedTask as exc:
        log.error("message %s is not a queued task; left to the queue's redrive policy: %s",
                  record.get("messageId"), exc)
        return False
    except ValueError as exc:
        log.error("message %s is a queued task that does not decode; left to the queue's redrive policy: %s",
                  record.get("messageId"), exc)
        return False
    settings = _config.load()
    limit = item.max_attempts or settings.max_attempts
    if attempt > limit:  # its attempts were used; its letter could not be sent, or there is no DLQ
        return _dead_letter(item, TASK_FAILED, f"not run again: its {limit} attempts were used "
                            f"(received {attempt} times)", attempt, "", settings.dlq_url)
    tenant, before = _tenant_of(record), _items.invoke_tenant
    if tenant is not None:  # what the task defers keeps the tenant of the invoke that queued it
        _items.invoke_tenant = tenant
    try:
        outcome = _run_until(item, attempt, give_up_at)
    finally:
        _items.invoke_tenant = before
    if outcome.ok:
        return True
    if outcome.retryable and attempt < limit:
        return False  # SQS delivers it again after the visibility timeout
    return _dead_letter(item, outcome.code, outcome.message, attempt, outcome.traceback, settings.dlq_url)


def _dead_letter(item: Any, code: str, message: str, attempts: int, traceback: str,
                 dlq_url: Optional[str]) -> bool:
    if not dlq_url:
        log.error("task %s (item %s) gave up after %d attempts: %s: %s; no DEFER_DLQ_URL, so the message "
                  "stays on its queue for the queue's redrive policy", item.function, item.id, attempts,
                  code, message, extra={"item_id": item.id})
        return False
    arguments: Dict[str, Any] = {"QueueUrl": dlq_url,
                                 "MessageBody": dead_letter_body(item, code, message, attempts, traceback)}
    if dlq_url.endswith(".fifo"):
        arguments.update(MessageGroupId=item.id, MessageDeduplicationId=item.id)
    try:
        _sqs_client(_config.load()).send_message(**arguments)
    except Exception:  # noqa: BLE001 - not dead-lettered: the queue delivers it again
        log.exception("task %s (item %s) could not be dead-lettered to %s; it stays on its queue",
                      item.function, item.id, dlq_url)
        return False
    log.error("task %s (item %s) dead-lettered after %d attempts: %s: %s", item.function, item.id,
              attempts, code, message, extra={"item_id": item.id})
    return True


def _tenant_of(record: Mapping[str, Any]) -> Optional[str]:
    """The tenant a queued task's message carries (``defer_tenant_id``), if one Lambda's TenantId
    could hold."""
    attributes = record.get("messageAttributes")
    value = attributes.get(wire.TENANT_ATTRIBUTE) if isinstance(attributes, Mapping) else None
    tenant = value.get("stringValue") if isinstance(value, Mapping) else None
    return tenant if isinstance(tenant, str) and re.fullmatch(_items.TENANT_ID, tenant) else None


def _fifo_group(record: Any) -> Optional[str]:
    """The record's FIFO message group; None on a standard queue, ANY_GROUP when a FIFO
    record does not say (it then orders after every failure, and every record after it)."""
    if not isinstance(record, Mapping) or not str(record.get("eventSourceARN", "")).endswith(".fifo"):
        return None
    attributes = record.get("attributes")
    group = attributes.get("MessageGroupId") if isinstance(attributes, Mapping) else None
    return group if isinstance(group, str) and group else ANY_GROUP


def _task_runner() -> TaskRunner:
    global _runner
    with _lock:
        if _runner is None:
            _runner = TaskRunner()
        return _runner


def _sqs_client(settings: _config.Config) -> Any:
    """The engine's SQS client, made only for a letter (a worker that never gives up never makes
    it): the lean transport's where it can, else botocore's (engine.clients)."""
    global _sqs
    with _lock:
        if _sqs is None:
            from .engine.clients import ClientFactory

            _sqs = ClientFactory(settings)("sqs")
        return _sqs
