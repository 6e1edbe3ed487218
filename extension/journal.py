"""Append-only record of received and finished items under /tmp, so a crash loses nothing.

Records are length-prefixed msgpack frames (the wire format's framing):
``{"op": "add", "item": <wire map>}`` when an item is received and ``{"op": "done", "id": ..}``
when it is delivered or dead-lettered. Written with ``write`` (no fsync): a killed process
leaves its writes in the page cache, and /tmp survives an environment reset. On start, the
items added and not done are replayed. The file is rewritten with only the live items when
finished records dominate, so it stays small under a steady load.
"""

from __future__ import annotations

import os
from typing import Dict, List

import msgpack

from handler_lib import wire

COMPACT_MIN_BYTES = 1 << 20


class Journal:
    def __init__(self, directory: str, name: str = "journal.bin") -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.path = os.path.join(directory, name)
        self._live: Dict[str, dict] = {}
        self.replayed: List[wire.WorkItem] = []
        self.corrupt_records = 0
        self._load()
        self._file = open(self.path, "ab", buffering=0)
        self._bytes = self._file.tell()

    def _load(self) -> None:
        if not os.path.exists(self.path):
            return
        reader = wire.FrameReader()
        with open(self.path, "rb") as fh:
            data = fh.read()
        try:
            bodies = reader.feed(data)
        except wire.FrameDecodeError:
            bodies, self.corrupt_records = [], self.corrupt_records + 1
        for body in bodies:  # a torn last record stays in the reader's buffer and is ignored
            try:
                record = msgpack.unpackb(body, raw=False)
                if record["op"] == "add":
                    self._live[record["item"]["id"]] = record["item"]
                elif record["op"] == "done":
                    self._live.pop(record["id"], None)
            except Exception:  # noqa: BLE001 - a bad record must not stop replay of the rest
                self.corrupt_records += 1
        for item_map in self._live.values():
            try:
                frame = wire.from_map(item_map)
            except wire.FrameDecodeError:
                self.corrupt_records += 1
                continue
            if not isinstance(frame, (wire.Hello, wire.EndOfInvoke)):
                self.replayed.append(frame)
        self._rewrite()

    def add(self, item: wire.WorkItem) -> None:
        item_map = item.to_map()
        self._live[item.id] = item_map
        self._append({"op": "add", "item": item_map})

    def done(self, item_id: str) -> None:
        if self._live.pop(item_id, None) is None:
            return
        self._append({"op": "done", "id": item_id})
        if self._bytes > COMPACT_MIN_BYTES and self._bytes > 4 * self._live_estimate():
            self._rewrite()

    def size_bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        try:
            self._file.close()
        except (OSError, AttributeError):
            pass

    def _append(self, record: dict) -> None:
        body = msgpack.packb(record, use_bin_type=True)
        self._file.write(wire.HEADER.pack(len(body)) + body)
        self._bytes += wire.HEADER.size + len(body)

    def _live_estimate(self) -> int:
        return 256 * len(self._live) + 1

    def _rewrite(self) -> None:
        """Replace the file with one holding only the live items (atomic rename)."""
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as fh:
            for item_map in self._live.values():
                body = msgpack.packb({"op": "add", "item": item_map}, use_bin_type=True)
                fh.write(wire.HEADER.pack(len(body)) + body)
            size = fh.tell()
        os.replace(tmp, self.path)
        old = getattr(self, "_file", None)
        if old is not None:
            old.close()
            self._file = open(self.path, "ab", buffering=0)
        self._bytes = size
