"""The dead letters the inline engine holds for a later invoke's end, on disk for the extension.

A letter the invoke had no time to send waits in the function's memory for a later invoke's
end. An environment that ends first (a reset: an invoke that timed out, a crashed extension;
a spin-down) ended the process and the letter with it. So where an extension runs beside the
function, the waiting letters are also written to a journal of the function's own in the
extension's journal folder (``journal-fn<pid>.bin``, locked while the process lives): the
extension takes it over at SHUTDOWN (the runtime has ended by then), and the next extension
at its start after a reset. A letter the function sends later is marked done in the file;
the file goes once nothing in it is live.

Only letters are written, and only once an invoke's budget has run out on them: the inline
path's own items never touch the disk (their cost stays what it was), and the folder's space
stays the extension's first: a letter is written only while the folder keeps at least as
much free space again (``ROOM_FACTOR``), else it waits in memory only, as before, and says so.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Dict, Iterable, List, Optional

from . import wire
from .engine.journal import FUNCTION_FILE_PREFIX, Journal
from .engine.pending import Entry

log = logging.getLogger("defer_runner.inline")

#: A letter is written only when the folder has this many times its size free.
ROOM_FACTOR = 2


class WaitingLetters:
    """This process's file of waiting letters; made on the first letter that waits."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        # Two threads may end an inline delivery at once (an invoke's end, and a thread's
        # defer outside an invoke): one at a time here.
        self._lock = threading.Lock()
        self._journal: Optional[Journal] = None
        self._keys: Dict[str, int] = {}  # key -> size of the letters the file holds live
        self._found: Dict[str, wire.WorkItem] = {}  # what an earlier process's file held, by key
        self.failed = ""  # why the file could not be made, once said

    def keep(self, entries: Iterable[Entry], until: Optional[float] = None) -> List[wire.WorkItem]:
        """Make the file hold exactly ``entries`` (the letters waiting now), writing new ones
        only until ``until`` (monotonic: the invoke's deadline is near; what is not written waits
        in memory only, and says so). When the file turns out to hold letters an earlier
        process with this pid left (no extension took them over), returns them and does nothing
        else: the caller queues them and keeps again, with them among ``entries``."""
        with self._lock:
            return self._keep({e.item.id: e for e in entries}, until)

    def _keep(self, live: Dict[str, Entry], until: Optional[float]) -> List[wire.WorkItem]:
        journal = self._journal
        if journal is None:
            if not live:
                return []
            journal = self._open()
            if journal is None:
                return []
            if journal.replayed:  # the caller queues them, then keeps again with them in
                self._found = {item.id: item for item in journal.replayed}
                self._keys = {key: 0 for key in self._found}
                return list(journal.replayed)
        for key in [k for k in self._keys if k not in live]:
            journal.done(key)
            del self._keys[key]
        for key, entry in live.items():
            if until is not None and time.monotonic() >= until:
                break
            # a letter found in the file under a key this process's queue gives another letter
            stale = key in self._found and self._found.pop(key) != entry.item
            if (key not in self._keys or stale) and self._room_for(entry.size):
                body = wire.pack_map(entry.item.to_map())
                if journal.add(key, body):  # a key added again replays as its last record
                    self._keys[key] = len(body)
                else:
                    self._keys.pop(key, None)
                    journal.done(key)  # not to be written later behind our back, on a disk we leave to the extension
        self._found.clear()
        if not self._keys:
            self._drop()
        elif until is None or time.monotonic() < until:
            journal.maintain()  # else with the next keep (a compaction may copy the whole file)
        return []

    def holds(self, key: str) -> bool:
        return key in self._keys

    def drop(self) -> None:
        """Remove the file (nothing in it is live), then give up its lock."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        journal, self._journal, self._keys = self._journal, None, {}
        if journal is None:
            return
        for path in (journal.path, journal.path + ".lock"):
            try:
                os.unlink(path)
            except OSError:
                pass
        journal.close()

    def close(self) -> None:
        """Close the file; what it holds stays in it, for an extension to take over."""
        with self._lock:
            journal, self._journal, self._keys = self._journal, None, {}
            if journal is not None:
                journal.close()

    def close_in_child(self) -> None:
        """In a forked child: close the copies of the parent's descriptors (its lock stays the
        parent's: a flock belongs to the open file, not to a descriptor). Without the lock, which
        a parent's thread may have held at the fork."""
        self._lock = threading.Lock()
        journal, self._journal, self._keys = self._journal, None, {}
        if journal is not None:
            journal.close_in_child()

    def _open(self) -> Optional[Journal]:
        try:
            self._journal = Journal(self.directory, f"{FUNCTION_FILE_PREFIX}{os.getpid()}.bin", adopt=False)
        except OSError as exc:  # a read-only folder, say: the letters wait in memory only, as before
            if not self.failed:
                self.failed = f"{type(exc).__name__}: {exc}"
                log.warning("the inline engine cannot keep its waiting letters in %s (%s): they wait in this "
                            "process's memory only", self.directory, self.failed)
            return None
        return self._journal

    def _room_for(self, size: int) -> bool:
        try:
            stat = os.statvfs(self.directory)
        except OSError:
            return False
        return stat.f_bavail * stat.f_frsize >= ROOM_FACTOR * size
