"""Database change events, shaped like DynamoDB Streams records ("DynamoDB Streams for any database").

Attach to a SQLAlchemy ``Session`` or ``sessionmaker``; every INSERT, MODIFY and REMOVE made
through the ORM is recorded at flush, kept with the (savepoint) transaction it belongs to,
and handed to ``defer.sqs`` / ``defer.sns`` / ``defer.event`` only after the outermost
COMMIT: a rollback drops the changes, a rolled-back savepoint drops only its own.

Example
-------
>>> from handler_lib.changes import ChangeTarget, capture_changes
>>> Session = sessionmaker(engine)
>>> capture_changes(Session, ChangeTarget.sqs(CHANGES_QUEUE_URL), tables={"orders"})
>>> with Session.begin() as session:
...     session.add(Order(id="o-1", status="new"))   # one INSERT record, sent after COMMIT

Without SQLAlchemy, report a change yourself with :func:`defer_change`.

Record shape: ``eventID``, ``eventName`` (INSERT/MODIFY/REMOVE), ``eventSource``
(``lambda-defer:db``), ``eventSourceARN`` (ends in ``table/<name>``) and ``dynamodb`` with
``Keys``, ``NewImage``, ``OldImage``, ``SequenceNumber`` (increasing per process, in commit
order), ``ApproximateCreationDateTime`` and ``StreamViewType``, values typed as DynamoDB
attribute values. SQS and SNS messages carry ``{"Records": [record]}`` (one record, so an
existing stream handler can be called with the parsed body); EventBridge events carry the
record as ``detail``. On FIFO queues/topics the group id is ``<table>#<key>``: changes to
one row arrive in order.

Limitations
-----------
- Only changes made through the ORM unit of work are seen. Core statements
  (``session.execute(insert(table))``, ``text()``), ORM bulk ``update()``/``delete()``
  statements, and triggers/cascades done by the database itself are not; report those
  with :func:`defer_change`.
- MODIFY images hold the key columns and the columns whose value changed. An old value is
  known only if it was loaded before being changed (after ``expire_on_commit`` it is not,
  unless the column is mapped with ``active_history=True``).
- Delivery is at least once, like every deferred item; ``eventID`` is unique per record.

SQLAlchemy loads only when ``capture_changes`` or ``ChangeCapture`` is first used, so
``ChangeTarget`` and ``defer_change`` (and ``defer.change``) work where it is not installed.
"""

from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, List

from ._change_targets import ChangeTarget, defer_change
from ._changes_records import EVENT_NAMES, Change, attribute_value

if TYPE_CHECKING:  # re-exported by name (``X as X``): mypy --strict reads no computed __all__
    from ._changes_orm import ChangeCapture as ChangeCapture, capture_changes as capture_changes

_ORM = ("ChangeCapture", "capture_changes")

# The SQLAlchemy names are listed only where it is installed (found, not imported): a star
# import or an inspection of this module must not fail for want of it.
__all__ = ["ChangeTarget", "Change", "attribute_value", "defer_change", "EVENT_NAMES"]
if TYPE_CHECKING or find_spec("sqlalchemy") is not None:
    __all__ += _ORM


def __getattr__(name: str) -> Any:
    if name not in _ORM:
        raise AttributeError(f"module 'handler_lib.changes' has no attribute {name!r}")
    from . import _changes_orm  # imports SQLAlchemy

    value = getattr(_changes_orm, name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(__all__)
