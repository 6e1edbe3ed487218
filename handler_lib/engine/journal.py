"""Append-only record of received and finished items under /tmp, so a crash loses nothing.

The journal has framing of its own, independent of the wire's frame cap. A file begins with
a header, ``DJr2 | salt | CRC32``: the salt is 16 random bytes drawn when the journal is
made, kept by its compactions and rewrites. Each record is ``marker | length | head check |
body tag | body``: the marker (4 bytes) and both checks come from the salt, the head check
is a keyed BLAKE2b of the length (4 bytes), the body tag a keyed BLAKE2b of the length and
the body (16 bytes). The body is a msgpack map ``{"op": "add", "key": k, "item": <the item's
packed wire map>}`` or ``{"op": "done", "key": k}`` (``k`` is the queue's key for the item).

Bytes nobody but this journal wrote can never pass as a record: an item's payload is
user data (a task argument with uploaded bytes, an SQS message), and without the salt no
one can make the marker and checks of a record, however well they know the format. A
record that fails its checks (torn, overwritten, a bad length) costs only itself: when its
head holds, its span is known and skipped whole, so nothing inside it is ever read as a
record; when its head is damaged, the reader scans forward to the next marker whose checks
hold, and replays every good record. A file in which the load found damage is never
rewritten: it is moved aside (the newest few are kept) and the live items go to a fresh
file (with the same salt, so their records are copied as they are).

Writes are ``pwrite`` calls without fsync: a killed process leaves its writes in the page
cache, and /tmp survives an environment reset. A failed write (ENOSPC, EIO) never reaches
the caller: the file is cut back to its last good record, the item stays in memory (the
queue holds it, the journal keeps its record) and ``maintain`` writes it once it can; until
then ``journaled`` says so, and the hand-off does not confirm the item to the function.
``maintain`` also compacts, when dead bytes exceed max(1 MiB, live bytes), so the bytes
written stay within a constant factor of the bytes added; it runs on the drain's side,
never on intake, and appends go on while it copies.

A journal belongs to one live extension: it holds an exclusive ``flock`` on the journal's
lock file. A second extension that finds the lock taken keeps a journal of its own, which
the owner of the main journal takes over at its start once that extension is gone. A
function's inline engine keeps the letters it holds for a later invoke's end in a journal of
its own (``journal-fn<pid>.bin``, ``adopt=False``), taken over the same way, and at SHUTDOWN
too, where the function's process has ended (``adopt_function_files``).
"""

from __future__ import annotations

import errno
import fcntl
import glob
import logging
import os
import struct
import threading
import time
import zlib
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import msgpack

from .. import wire

try:  # hashlib's blake2b, without loading OpenSSL's _hashlib at the extension's start
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter without the builtin module
    from hashlib import blake2b

log = logging.getLogger("defer_runner.journal")

LETTER_SUFFIX = "~dlq"  # dead_letters.DLQ_SUFFIX: a dead letter's id ends so (not imported: the drain's module)

FILE_MAGIC = b"DJr2"
SALT_BYTES = 16
FILE_HEAD = struct.Struct(">4s16sI")  # magic, salt, CRC32 of the magic and the salt
RECORD_HEAD = struct.Struct(">4sI4s16s")  # marker, body length, head check, body tag
#: Far above the largest legal record (a dead letter: a 1.1 MiB item plus its envelope).
MAX_RECORD_BYTES = 64 << 20
COMPACT_MIN_BYTES = 1 << 20
KEEP_CORRUPT_FILES = 3
COPY_CHUNK = 1 << 20


class Salt:
    """One journal's salt, and what comes of it: the file header, the records' marker and their checks."""

    __slots__ = ("salt", "marker", "_head", "_body")

    def __init__(self, salt: bytes) -> None:
        self.salt = salt
        self.marker = blake2b(b"marker", key=salt, person=b"djr2-marker", digest_size=4).digest()
        self._head = blake2b(key=salt, person=b"djr2-head", digest_size=4)
        self._body = blake2b(key=salt, person=b"djr2-body", digest_size=16)

    @classmethod
    def new(cls) -> "Salt":
        return cls(os.urandom(SALT_BYTES))

    @classmethod
    def of(cls, data: bytes) -> Optional["Salt"]:
        """The salt in a file's header; None when ``data`` does not begin with a whole header."""
        if len(data) < FILE_HEAD.size:
            return None
        magic, salt, crc = FILE_HEAD.unpack_from(data, 0)
        if magic != FILE_MAGIC or zlib.crc32(data[:FILE_HEAD.size - 4]) != crc:
            return None
        return cls(salt)

    def header(self) -> bytes:
        return FILE_HEAD.pack(FILE_MAGIC, self.salt, zlib.crc32(FILE_MAGIC + self.salt))

    def head_check(self, length: int) -> bytes:
        h = self._head.copy()
        h.update(length.to_bytes(4, "big"))
        return h.digest()

    def body_tag(self, length: int, body: bytes) -> bytes:
        h = self._body.copy()
        h.update(length.to_bytes(4, "big"))
        h.update(body)
        return h.digest()

    def frame(self, payload: Dict[str, Any]) -> bytes:
        body = msgpack.packb(payload, use_bin_type=True)
        length = len(body)
        return RECORD_HEAD.pack(self.marker, length, self.head_check(length), self.body_tag(length, body)) + body

    def add_record(self, key: str, item_body: bytes) -> bytes:
        return self.frame({"op": "add", "key": key, "item": item_body})


#: The name a function's own journal begins with (``journal-fn<pid>.bin``).
FUNCTION_FILE_PREFIX = "journal-fn"


class Journal:
    def __init__(self, directory: str, name: str = "journal.bin", *, adopt: bool = True) -> None:
        """``adopt``: take over the journals of the extensions and functions that are gone, once
        this one holds ``name`` (the extension's main journal does; a function's own does not)."""
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._directory = directory
        self.path, self._lock_fd = _claim(directory, name)
        owner = adopt and os.path.basename(self.path) == name
        self._lock = threading.Lock()
        self._index: Dict[str, Tuple[int, int]] = {}  # live key -> (offset in the file or -1, size)
        self._unwritten: Dict[str, bytes] = {}  # live records the file does not hold yet
        self._live_file_bytes = 0
        self._offset = 0  # end of the last good record (0: not even the header is written yet)
        self._salt = Salt.new()  # this journal's; a file read back keeps its own
        self._broken = False  # a failed write could not be cut back: append no more to this file
        self._needs_rewrite = False  # the file misses records (a failed add or done)
        self._failures = 0
        self._failing_since: Optional[float] = None
        self._compacting = False
        self.replayed: List[wire.WorkItem] = []
        self.corrupt_records = 0
        self.unjournaled_total = 0  # items that could not be written when they arrived
        self.write_errors = 0
        self.bytes_written = 0
        self.compactions = 0
        self._read_fd = -1
        self._fd = -1
        replayed = self._load()
        if owner:
            self._adopt_orphans(directory, name, replayed)

    @property
    def unjournaled(self) -> int:
        """Live items held in memory only, waiting for the journal to take them."""
        return len(self._unwritten)

    def journaled(self, key: str) -> bool:
        """Whether the file holds ``key``'s live record now (a crash would not lose it)."""
        return not self.unjournaled_of((key,))

    def unjournaled_of(self, keys: Iterable[str]) -> List[str]:
        """The keys of ``keys`` whose live record the file does not hold now (an end marker's
        check: one lock for all of an invoke's items)."""
        index = self._index
        with self._lock:
            return [key for key in keys if index.get(key, (-1, 0))[0] < 0]

    # -- start ----------------------------------------------------------------------------
    def _load(self) -> Dict[str, wire.WorkItem]:
        """Read the journal back; a damaged one is moved aside and its live records rewritten."""
        data, records, items, salt = self._read(self.path)
        if salt is not None:
            self._salt = salt  # its records are copied as they are: the same salt checks them
        self.replayed.extend(items.values())
        for key, (offset, size, _) in records.items():
            self._index[key] = (offset, size)
            self._live_file_bytes += size
        if not self.corrupt_records:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            self._offset = len(data)
            return items
        kept = _move_aside(self.path)
        log.error("journal damaged: %d corrupt records skipped; %d items recovered, the file is kept as %s",
                  self.corrupt_records, len(records), kept,
                  extra={"corrupt_records": self.corrupt_records, "recovered": len(records)})
        for key, (offset, size, _) in records.items():  # to a fresh file, by maintain()
            self._index[key] = (-1, size)
            self._unwritten[key] = data[offset:offset + size]
        self._live_file_bytes = 0
        self._needs_rewrite = True
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.maintain()
        return items

    def _read(self, path: str) -> Tuple[bytes, Dict[str, Tuple[int, int, bytes]], Dict[str, wire.WorkItem],
                                        Optional[Salt]]:
        """The file's bytes, its live records (key -> offset, size, item body), their items
        and its salt (None: the file has no whole header, so no record in it can be trusted)."""
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            data = b""
        records: Dict[str, Tuple[int, int, bytes]] = {}
        salt = Salt.of(data)
        if salt is None:
            if data:  # torn at its creation, overwritten, or not a journal of this format
                self.corrupt_records += 1
            return data, records, {}, None
        for offset, body in self._scan(data, salt):
            try:
                record = msgpack.unpackb(body, raw=False, strict_map_key=False)
                key = record["key"]
                if record["op"] == "add":
                    records.pop(key, None)  # a re-added key replays in its new place
                    records[key] = (offset, RECORD_HEAD.size + len(body), record["item"])
                elif record["op"] == "done":
                    records.pop(key, None)
            except Exception:  # noqa: BLE001 - a bad record must not stop replay of the rest
                self.corrupt_records += 1
        items: Dict[str, wire.WorkItem] = {}
        for key, (_, _, item_body) in list(records.items()):
            try:
                frame = wire.decode_stored(item_body)  # the frame's codec (task argument types too)
                if not isinstance(frame, wire.ITEM_TYPES):
                    raise wire.FrameDecodeError(f"a {frame.kind} frame is not an item")
            except Exception:  # noqa: BLE001
                self.corrupt_records += 1
                del records[key]
                continue
            items[key] = frame
        return data, records, items, salt

    def _adopt_orphans(self, directory: str, name: str, known: Dict[str, wire.WorkItem]) -> None:
        """Take over the journals of extensions (and functions) that ran beside the owner and
        are gone (their lock is free): their items are written here, then their files are removed."""
        stem, ext = os.path.splitext(name)
        for path in sorted(glob.glob(os.path.join(glob.escape(directory), f"{glob.escape(stem)}-*{ext}"))):
            lock_fd = _try_lock(path)
            if lock_fd < 0:
                continue  # still alive
            self.replayed.extend(self._adopt(path, known))
            _close(lock_fd)

    def adopt_function_files(self, known: Dict[str, wire.WorkItem]) -> List[wire.WorkItem]:
        """At SHUTDOWN: take over the functions' journals, locked or not (the runtime is stopped
        before the extensions get SHUTDOWN, and a process that still runs can no longer deliver
        what it holds). ``known``: the items queued here, by key. Returns the items taken over."""
        pattern = os.path.join(glob.escape(self._directory), f"{FUNCTION_FILE_PREFIX}*.bin")
        taken: List[wire.WorkItem] = []
        for path in sorted(glob.glob(pattern)):
            if path != self.path:
                taken.extend(self._adopt(path, known))
        return taken

    def _adopt(self, path: str, known: Dict[str, wire.WorkItem]) -> List[wire.WorkItem]:
        corrupt_before, written = self.corrupt_records, True
        _, records, items, _ = self._read(path)
        taken: List[wire.WorkItem] = []
        for key, (_, _, item_body) in records.items():
            item, n = items[key], 1
            while key in known:  # a key known here: the same item (adopted before), or an id collision
                if known[key] == item._replace(id=key):
                    break
                n += 1
                key = renamed_key(item.id, n)
            else:
                if key != item.id:
                    item = item._replace(id=key)
                    item_body = wire.pack_map(item.to_map())
                written &= self.add(key, item_body)
                taken.append(item)
                known[key] = item
        if records or self.corrupt_records > corrupt_before:
            log.warning("replayed %d items from %s, the journal of %s that is gone", len(records), path,
                        "a function" if os.path.basename(path).startswith(FUNCTION_FILE_PREFIX) else "an extension",
                        extra={"corrupt_records": self.corrupt_records - corrupt_before})
        try:
            if self.corrupt_records > corrupt_before:  # a torn last record, as a killed writer leaves
                function_file = os.path.basename(path).startswith(FUNCTION_FILE_PREFIX)
                _move_aside(path, os.path.join(glob.escape(os.path.dirname(path)), f"{FUNCTION_FILE_PREFIX}*.bin")
                            if function_file else None)
                os.unlink(path + ".lock")
            elif written:  # else it stays until its items are on disk here (the next start sees them as known)
                os.unlink(path)
                os.unlink(path + ".lock")
        except OSError:
            pass  # removed meanwhile (by its own process, with nothing left in it)
        return taken

    def _scan(self, data: bytes, salt: Salt) -> Iterator[Tuple[int, bytes]]:
        """Yield (offset, body) of every good record; count each damaged stretch once.

        A record whose head holds (its marker and keyed head check) but whose body does not
        (torn, overwritten) is skipped whole: its span is known, and nothing inside it is
        ever read as a record. Only past a damaged head does the reader look for the next
        marker, and there too only a record with both keyed checks counts."""
        pos, end, in_damage = FILE_HEAD.size, len(data), False
        marker, head = salt.marker, RECORD_HEAD.size
        while pos < end:
            if end - pos >= head and data.startswith(marker, pos):
                _, length, check, tag = RECORD_HEAD.unpack_from(data, pos)
                stop = pos + head + length
                if stop <= end and length <= MAX_RECORD_BYTES:
                    body = data[pos + head:stop]
                    if tag == salt.body_tag(length, body):  # it covers the length too
                        yield pos, body  # (a local file read once: no timing oracle in ==)
                        pos, in_damage = stop, False
                        continue
                if check == salt.head_check(length):  # the head is whole: the span is the record's
                    if not in_damage:
                        self.corrupt_records += 1
                        in_damage = True
                    pos = min(stop, end)
                    continue
            if not in_damage:
                self.corrupt_records += 1
                in_damage = True
            found = data.find(marker, pos + 1)
            pos = end if found < 0 else found

    # -- intake ---------------------------------------------------------------------------
    def add(self, key: str, item_body: bytes) -> bool:
        """Record an item (its packed wire map) under ``key``; False when it is held in memory only.

        Never raises: the channel's reader must go on reading whatever the disk does.
        """
        record = self._salt.add_record(key, item_body)
        with self._lock:
            if len(record) - RECORD_HEAD.size > MAX_RECORD_BYTES:
                self.unjournaled_total += 1
                log.error("item %s is too large for the journal (%d bytes); it is kept in memory only",
                          key, len(record))
                return False
            if self._place(key, record):
                return True
            self.unjournaled_total += 1
            return False

    def _place(self, key: str, record: bytes) -> bool:
        if self._append(record):
            self._index[key] = (self._offset - len(record), len(record))
            self._live_file_bytes += len(record)
            return True
        self._index[key] = (-1, len(record))
        self._unwritten[key] = record
        self._needs_rewrite = True
        return False

    def done(self, key: str) -> None:
        with self._lock:
            entry = self._index.pop(key, None)
            if entry is None:
                return
            offset, size = entry
            if offset < 0:
                self._unwritten.pop(key, None)
                if not self._compacting:
                    return  # never written: nothing to cancel (a compaction may be writing it)
            else:
                self._live_file_bytes -= size
            if not self._append(self._salt.frame({"op": "done", "key": key})):
                self._needs_rewrite = True  # the file would replay it: rewrite without it

    def _append(self, record: bytes) -> bool:
        """Write one record at the end (after the header, in an empty file); on failure cut the
        file back to its last good record."""
        if self._broken:
            return False
        data = record if self._offset else self._salt.header() + record
        try:
            _write_all(self._fd, data, self._offset)
        except OSError as exc:
            self._write_failed(exc, "append")
            try:
                os.ftruncate(self._fd, self._offset)
            except OSError:
                self._broken = True  # a torn record would stay mid-file: a fresh file takes over
            return False
        self._offset += len(data)
        self.bytes_written += len(data)
        return True

    def _write_failed(self, exc: OSError, what: str) -> None:
        self._failures += 1
        self.write_errors += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.error("journal %s failed (%s): items stay in memory until it can be written",
                      what, os.strerror(exc.errno) if exc.errno else exc,
                      extra={"path": self.path, "errno": errno.errorcode.get(exc.errno or 0, ""),
                             "live": len(self._index), "unjournaled": len(self._unwritten) + 1})

    # -- upkeep (the runner, after a drain) ------------------------------------------------
    def maintain(self) -> None:
        """Write what the file could not take, and compact once dead bytes dominate.

        The copy runs without the lock (appends go on meanwhile); only the records appended
        during the copy are added under the lock before the new file replaces the old.
        """
        with self._lock:
            dead = self._offset - self._live_file_bytes
            due = self._needs_rewrite or self._broken or dead > max(COMPACT_MIN_BYTES, self._live_file_bytes)
            if self._compacting or not due:
                return
            self._compacting = True
            plan = list(self._index.items())
            unwritten = dict(self._unwritten)
            cut, failures = self._offset, self._failures
        tmp = f"{self.path}.tmp"
        out = -1
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            written: Dict[str, int] = {}
            _write_all(out, self._salt.header(), 0)  # the same salt: records are copied as they are
            pos = FILE_HEAD.size
            for key, (offset, size) in plan:
                record = unwritten[key] if offset < 0 else os.pread(self._fd_for_read(), size, offset)
                if len(record) != size:
                    raise OSError(errno.EIO, "journal shorter than its index")
                _write_all(out, record, pos)
                written[key] = pos
                pos += size
            with self._lock:
                try:
                    if self._failures == failures:  # else a record may be missing: next time
                        self._finish_compaction(out, pos, written, unwritten, cut)
                        return
                finally:
                    self._compacting = False
        except OSError as exc:
            failed: Optional[OSError] = exc
        else:
            failed = None
        _close(out)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if failed is not None:
            with self._lock:
                self._compacting = False
                if failed.errno in (errno.ENOSPC, errno.EDQUOT) and not self._broken:
                    self._rewrite_in_place()
                else:
                    self._write_failed(failed, "rewrite")

    def _rewrite_in_place(self) -> None:
        """A full disk with no room for a second file: cut this one and write the live records
        again from the start. Every item is in memory meanwhile; only a crash in this short
        window could lose them from the disk, against every later item if the disk stays full."""
        try:
            # What the file held goes back first: it fits in the room it took before, so an
            # item confirmed as journaled stays journaled; what it could not take comes after.
            records = [(key, os.pread(self._fd_for_read(), size, offset))
                       for key, (offset, size) in self._index.items() if offset >= 0]
            records += [(key, self._unwritten[key]) for key, (offset, _) in self._index.items() if offset < 0]
            os.ftruncate(self._fd, 0)
        except OSError as exc:
            self._write_failed(exc, "rewrite")
            return
        self._index, self._unwritten = {}, {}
        self._offset = self._live_file_bytes = 0
        self._needs_rewrite = False
        for key, record in records:
            self._place(key, record)
        self.compactions += 1
        if not self._needs_rewrite:
            self._recovered()

    def _finish_compaction(self, out: int, pos: int, written: Dict[str, int], unwritten: Dict[str, bytes],
                           cut: int) -> None:
        base = pos
        if cut == 0 and self._offset:
            cut = FILE_HEAD.size  # the old file was empty at the start of the copy: skip the header it got since
        for start in range(cut, self._offset, COPY_CHUNK):  # what was appended meanwhile
            chunk = os.pread(self._fd_for_read(), min(COPY_CHUNK, self._offset - start), start)
            _write_all(out, chunk, pos)
            pos += len(chunk)
        index: Dict[str, Tuple[int, int]] = {}
        for key, (offset, size) in self._index.items():
            if offset >= cut:
                index[key] = (base + offset - cut, size)
            elif offset >= 0 or self._unwritten[key] is unwritten.get(key):
                index[key] = (written[key], size)
            else:  # held in memory, arrived during the copy
                _write_all(out, self._unwritten[key], pos)
                index[key] = (pos, size)
                pos += size
        os.replace(f"{self.path}.tmp", self.path)
        _close(self._fd)
        _close(self._read_fd)
        self._read_fd = -1
        self._fd, self._offset, self._index = out, pos, index
        self._live_file_bytes = sum(size for _, size in index.values())
        self._unwritten.clear()
        self._broken = self._needs_rewrite = False
        self.bytes_written += pos
        self.compactions += 1
        self._recovered()

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.warning("journal writable again after %.1fs; %d items were held in memory only meanwhile",
                        time.monotonic() - self._failing_since, self.unjournaled_total,
                        extra={"path": self.path, "write_errors": self.write_errors})
            self._failing_since = None

    def _fd_for_read(self) -> int:
        if self._read_fd < 0:
            self._read_fd = os.open(self.path, os.O_RDONLY)
        return self._read_fd

    def size_bytes(self) -> int:
        return self._offset

    def close(self) -> None:
        with self._lock:
            self._close_fds()

    def close_in_child(self) -> None:
        """In a forked child: close its copies of the descriptors (the parent keeps its lock on
        the file), without the journal's lock, which a parent's thread may have held at the fork."""
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._fd, self._read_fd, self._lock_fd):
            _close(fd)
        self._fd = self._read_fd = self._lock_fd = -1


def renamed_key(item_id: str, n: int) -> str:
    """The key of the ``n``-th item with ``item_id``; a dead letter's key stays one (``<id>#<n>~dlq``)."""
    stem, letter, rest = item_id.rpartition(LETTER_SUFFIX)
    return f"{stem}#{n}{LETTER_SUFFIX}" if letter and not rest else f"{item_id}#{n}"


def _claim(directory: str, name: str) -> Tuple[str, int]:
    """Lock ``name`` in ``directory``, or, when another live extension holds it, a journal of our own."""
    stem, ext = os.path.splitext(name)
    for n in range(100):
        candidate = name if n == 0 else f"{stem}-{os.getpid()}{'' if n == 1 else f'-{n}'}{ext}"
        path = os.path.join(directory, candidate)
        fd = _try_lock(path)
        if fd < 0:
            continue
        if candidate != name:
            log.warning("journal %s is held by another live extension; this one keeps its own journal %s",
                        os.path.join(directory, name), path)
        return path, fd
    raise OSError(errno.EWOULDBLOCK, f"every journal name for {name} is locked in {directory}")


def _move_aside(path: str, family: Optional[str] = None) -> str:
    """Keep a damaged journal as it is, under a new name; only the newest few are kept, of
    its own and of the files ``family`` (a glob) names: a function's file has its pid in it."""
    kept = f"{path}.corrupt-{time.time_ns()}"
    os.replace(path, kept)
    copies = glob.glob((family or glob.escape(path)) + ".corrupt-*")
    for old in sorted(copies, key=lambda name: name.rpartition(".corrupt-")[2])[:-KEEP_CORRUPT_FILES]:
        try:
            os.unlink(old)
        except OSError:
            pass
    return kept


def _try_lock(path: str) -> int:
    """An exclusive lock on ``path``.lock (held until the fd closes or the process ends), or -1."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return -1
    return fd


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, offset = view[n:], offset + n


def _close(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
