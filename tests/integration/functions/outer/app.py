"""Outer decorators that answer without calling the @defer handler inside them.

- ``handler``: a cache that returns (``cached``) or an auth check that raises (``refuse``)
  before the @defer handler runs; otherwise the @defer handler defers one item, and with
  ``after_s`` post-response work that waits that long, then defers another.
- ``TEST_RUNTIME_OF_ANOTHER_SHAPE``: the runtime's posts cannot be reported (a runtime
  other than awslambdaric, or one of another shape).
- ``idempotent_handler``: Powertools' real ``@idempotent`` (an in-memory persistence layer:
  this process is the environment), outer to @defer: a repeated request gets the stored
  response and the @defer handler is not called.
"""

import functools
import os
import time

from aws_lambda_powertools.utilities.idempotency import (BasePersistenceLayer, IdempotencyConfig,
                                                         idempotent)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError, IdempotencyItemNotFoundError)

import handler_lib._runtime_hook
from handler_lib import defer

if os.environ.get("TEST_RUNTIME_OF_ANOTHER_SHAPE"):  # as if not run by awslambdaric, or by one changed
    handler_lib._runtime_hook.install = lambda posted: False

QUEUE_URL = os.environ["TEST_QUEUE_URL"]


def short_circuit(fn):
    @functools.wraps(fn)
    def outer(event, context):
        if event.get("refuse"):
            raise PermissionError("refused before the handler")  # the @defer handler never runs
        if event.get("cached"):
            return {"cached": True}  # nor here
        return fn(event, context)
    return outer


@short_circuit
@defer
def handler(event, context):
    defer.sqs(QUEUE_URL, {"tag": event["tag"]})
    if event.get("after_s"):
        def later():
            time.sleep(event["after_s"])
            defer.sqs(QUEUE_URL, {"tag": event["tag"] + "-after"})
        defer.after(later)
    return {"tag": event["tag"]}


class InMemoryPersistence(BasePersistenceLayer):
    def __init__(self):
        super().__init__()
        self.records = {}

    def _get_record(self, idempotency_key):
        try:
            return self.records[idempotency_key]
        except KeyError:
            raise IdempotencyItemNotFoundError(idempotency_key) from None

    def _put_record(self, data_record):
        old = self.records.get(data_record.idempotency_key)
        if old is not None and not old.is_expired:
            raise IdempotencyItemAlreadyExistsError(old_data_record=old)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record):
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record):
        self.records.pop(data_record.idempotency_key, None)


PERSISTENCE = InMemoryPersistence()
CALLS = []


@idempotent(persistence_store=PERSISTENCE, config=IdempotencyConfig(event_key_jmespath="order"))
@defer
def idempotent_handler(event, context):
    CALLS.append(event["order"])
    defer.sqs(QUEUE_URL, {"order": event["order"], "call": len(CALLS)})
    return {"order": event["order"], "call": len(CALLS)}
