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
        self._journal: Optional[Journal] = None
        self._keys: Dict[str, int] = {}  # key -> size of the letters the file holds live
        self.failed = ""  # why the file could not be made, once said

    def keep(self, entries: Iterable[Entry], until: Optional[float] = None) -> List[wire.WorkItem]:
        """Make the file hold exactly ``entries`` (the letters waiting now), writing new ones
        only until ``until`` (monotonic: the invoke's deadline is near; what is not written waits
        in memory only, and says so). Returns the letters an earlier process with this pid left
        in a file no extension took over: the caller queues them."""
        live = {e.item.id: e for e in entries}
        journal, found = self._journal, []
        if journal is None:
            if not live:
                return []
            journal = self._open()
            if journal is None:
                return []
            found = list(journal.replayed)
            self._keys = {item.id: 0 for item in found}
        for key in [k for k in self._keys if k not in live and not any(item.id == k for item in found)]:
            journal.done(key)
            del self._keys[key]
        for key, entry in live.items():
            if until is not None and time.monotonic() >= until:
                break
            if key not in self._keys and self._room_for(entry.size):
                body = wire.pack_map(entry.item.to_map())
                if journal.add(key, body):
                    self._keys[key] = len(body)
                else:
                    journal.done(key)  # not to be written later behind our back, on a disk we leave to the extension
        if not self._keys:
            self.drop()
        else:
            journal.maintain()
        return found

    def holds(self, key: str) -> bool:
        return key in self._keys

    def drop(self) -> None:
        """Remove the file (nothing in it is live), then give up its lock."""
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
        journal, self._journal, self._keys = self._journal, None, {}
        if journal is not None:
            journal.close()

    def close_in_child(self) -> None:
        """In a forked child: close the copies of the parent's descriptors (its lock stays the
        parent's: a flock belongs to the open file, not to a descriptor)."""
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
