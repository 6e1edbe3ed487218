"""Item ids: a random prefix and a counter, unique for each life of a process.

Cheap to make (no uuid4 per call) and valid as batch entry ids and FIFO deduplication ids.
A forked child and every environment restored from one SnapStart snapshot start from a
copy of the parent's memory, so the prefix is drawn again in each: at fork by
``os.register_at_fork``, after a restore by :func:`reseed` (called by the dispatcher).
"""

from __future__ import annotations

import itertools
import os

_prefix = os.urandom(8).hex()
_counter = itertools.count(1)


def new_id() -> str:
    return f"{_prefix}-{next(_counter):x}"


def reseed() -> None:
    """Start a new id space: this process is a new life of the one that drew the old prefix."""
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count(1)


os.register_at_fork(after_in_child=reseed)
