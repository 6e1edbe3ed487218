"""Change capture for SQLAlchemy sessions (``handler_lib.changes.capture_changes``).

Importing this module imports SQLAlchemy; ``handler_lib`` and ``handler_lib.changes`` load it
only when the capture is first used.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Collection, Dict, List, Mapping, Optional, Union, cast

from sqlalchemy import TableClause, event, inspect
from sqlalchemy.orm import NO_VALUE, Mapper, Session, SessionTransaction, sessionmaker

from ._changes_records import EVENT_NAMES, Change, attribute_value
from ._change_targets import ChangeTarget, defer_change

__all__ = ["ChangeCapture", "capture_changes"]

logger = logging.getLogger("handler_lib")

class ChangeCapture:
    """Records ORM changes of one ``Session``/``sessionmaker`` and sends them after commit.

    Made by :func:`capture_changes`; ``detach()`` stops it. ``sent`` counts records handed over.
    """

    def __init__(self, bind: Union[Session, sessionmaker[Any]], target: ChangeTarget,
                 tables: Optional[Collection[str]] = None) -> None:
        if not isinstance(bind, (Session, sessionmaker)):
            raise TypeError(f"capture_changes attaches to a Session or sessionmaker, not {type(bind).__name__}")
        if not isinstance(target, ChangeTarget):
            raise TypeError(f"target must be a ChangeTarget (ChangeTarget.sqs/.sns/.eventbridge), not {target!r}")
        if isinstance(tables, str):
            raise TypeError("tables must be a collection of table names, e.g. {'orders'}, not a str")
        self.bind = bind
        self.target = target
        self.tables = frozenset(tables) if tables is not None else None
        self.sent = 0
        # Pending changes per session, per open (savepoint or outermost) transaction (looked
        # up with None where the session has none).
        self._pending: "weakref.WeakKeyDictionary[Session, Dict[Optional[SessionTransaction], List[Change]]]" = (
            weakref.WeakKeyDictionary())
        self._hooks: Dict[str, Callable[..., Any]] = {
            "before_flush": self._before_flush, "after_flush": self._after_flush,
            "after_commit": self._after_commit, "after_rollback": self._drop_current,
            "after_soft_rollback": self._after_soft_rollback,
            "after_transaction_end": self._after_transaction_end}
        for name, hook in self._hooks.items():
            event.listen(bind, name, hook)

    def detach(self) -> None:
        """Stop recording; changes not committed yet are forgotten."""
        for name, hook in self._hooks.items():
            if event.contains(self.bind, name, hook):
                event.remove(self.bind, name, hook)
        self._pending = weakref.WeakKeyDictionary()

    def __enter__(self) -> "ChangeCapture":
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # -- recording --------------------------------------------------------------------
    def _wanted(self, obj: Any) -> Optional[Mapper[Any]]:
        mapper = inspect(obj).mapper
        return mapper if self.tables is None or mapper.local_table.name in self.tables else None

    def _before_flush(self, session: Session, flush_context: Any, instances: Any) -> None:
        # A REMOVE's OldImage needs every column; load expired ones while the row still exists.
        for obj in list(session.deleted):
            mapper = self._wanted(obj)
            if mapper is not None:
                unloaded = inspect(obj).unloaded
                for prop in mapper.column_attrs:
                    if prop.key in unloaded:
                        getattr(obj, prop.key)

    def _after_flush(self, session: Session, flush_context: Any) -> None:
        # After the flush but before the lists are reset: keys are assigned, history intact.
        changes: List[Change] = []
        for name, objects in (("INSERT", session.new), ("MODIFY", session.dirty), ("REMOVE", session.deleted)):
            for obj in objects:
                mapper = self._wanted(obj)
                if mapper is not None:
                    change = _change(name, obj, mapper)
                    if change is not None:
                        self._check(change)
                        changes.append(change)
        if changes:
            frames = self._pending.setdefault(session, {})
            frames.setdefault(_current(session), []).extend(changes)

    # -- transaction boundaries -------------------------------------------------------
    def _after_commit(self, session: Session) -> None:
        frames = self._pending.get(session)
        if not frames:
            return
        trans = _current(session)
        changes = frames.pop(trans, [])
        if trans is not None and trans.nested:  # RELEASE SAVEPOINT: now part of the enclosing one
            if changes:
                frames.setdefault(_enclosing(trans), []).extend(changes)
            return
        for change in changes:  # the outermost COMMIT: in flush order
            self._send(change)

    def _drop_current(self, session: Session) -> None:
        frames = self._pending.get(session)
        if frames:
            frames.pop(_current(session), None)

    def _after_soft_rollback(self, session: Session, previous: SessionTransaction) -> None:
        frames = self._pending.get(session)
        if frames:
            frames.pop(previous, None)

    def _after_transaction_end(self, session: Session, trans: SessionTransaction) -> None:
        # Whatever is still attached to an ended transaction was never committed.
        frames = self._pending.get(session)
        if frames and frames.pop(trans, None):
            logger.debug("lambda-defer: dropped uncommitted changes of an ended transaction")

    def _check(self, change: Change) -> None:
        """Fail the flush (and so the transaction: it must be rolled back) for a change whose
        record cannot be sent, such as one over the target's size limit. After the COMMIT the
        row would be stored with no record of it, and no letter either."""
        try:
            self.target.check(change)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"lambda-defer: the {change.event_name} record of {change.key_text} cannot be sent to "
                            f"{self.target.address or 'the default bus'}: {exc}; the transaction is rolled back, "
                            "so that no row is stored without its change record") from exc

    def _send(self, change: Change) -> None:
        try:
            self.target.send(change)
            self.sent += 1
        except (TypeError, ValueError) as exc:  # the COMMIT happened: report, do not raise into it
            logger.error("lambda-defer: change %s %s not sent: %s", change.event_name, change.key_text, exc)


def capture_changes(bind: Union[Session, sessionmaker[Any]], target: ChangeTarget, *,
                    tables: Optional[Collection[str]] = None) -> ChangeCapture:
    """Send every committed ORM change of ``bind``'s sessions to ``target`` as a stream record.

    ``tables`` limits capture to those table names (None: every mapped table).
    """
    return ChangeCapture(bind, target, tables)


# -- helpers ----------------------------------------------------------------------------
def _current(session: Session) -> Optional[SessionTransaction]:
    return session.get_nested_transaction() or session.get_transaction()


def _enclosing(trans: SessionTransaction) -> SessionTransaction:
    """The savepoint or outermost transaction that a released savepoint's changes join."""
    parent = trans.parent
    while parent is not None and not parent.nested and parent.parent is not None:
        parent = parent.parent
    return parent if parent is not None else trans


def _change(event_name: str, obj: Any, mapper: Mapper[Any]) -> Optional[Change]:
    state = inspect(obj)
    keys = {col.name: val for col, val in zip(mapper.primary_key, mapper.primary_key_from_instance(obj))}
    columns = [(prop.key, prop.columns[0].name) for prop in mapper.column_attrs]
    table = cast(TableClause, mapper.local_table).name  # a captured class is mapped to one table
    if event_name == "INSERT":
        new = {name: state.dict[key] for key, name in columns if key in state.dict}
        return Change(table, "INSERT", keys, new_image=new)
    if event_name == "REMOVE":
        old = {name: state.dict[key] for key, name in columns if key in state.dict}
        return Change(table, "REMOVE", keys, old_image=old)
    new, old = dict(keys), dict(keys)
    for key, name in columns:
        history = state.attrs[key].history
        if not history.added:
            continue
        after = history.added[0]
        before = history.deleted[0] if history.deleted else NO_VALUE
        if before is not NO_VALUE and _same(before, after):
            continue
        new[name] = after
        if before is not NO_VALUE:
            old[name] = before
    if len(new) == len(keys):
        return None  # marked dirty, nothing changed
    return Change(table, "MODIFY", keys, new_image=new, old_image=old)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - exotic column types: treat as changed
        return False
