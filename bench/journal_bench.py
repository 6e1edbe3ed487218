"""The journal: the hand-rolled record file vs SQLite (stdlib sqlite3, WAL), measured alike.

``python -m bench.journal_bench [--items N] [--dir DIR] [--repeat R]`` prints one JSON object.

What each journal does per item is what the extension does: an append when an item arrives
(it must be on disk, page cache included, when the call returns: a process crash then loses
nothing), a finish when it is delivered, and the end-of-invoke check of which of an invoke's
items are journaled (what the ack may confirm). Replay is opening a journal that holds
``N`` live items after ``N`` finished ones, decoded back to work items. RSS is the growth
of a fresh interpreter holding ``N`` live items (the items themselves not counted), and
what importing the journal's module (or ``sqlite3``) adds, beside the engine's package.

SQLite runs as a journal would have to: WAL, ``synchronous=OFF`` (no fsync, as the record
file's pwrite: a killed process loses nothing committed), ``locking_mode=EXCLUSIVE`` (one
owner; no shared-memory index), one table keyed by item key in arrival order. Two variants:
``sqlite`` commits every append (the item is durable when ``add`` returns), and
``sqlite_group`` inserts into an open transaction and commits at the end marker (the ack
then waits for the commit; an item is durable only from there).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

from .common import ROOT, percentile

import msgpack  # noqa: E402

from handler_lib import wire  # noqa: E402

INVOKE_ITEMS = 100  # items per invoke: the unit of an ack


class SqliteJournal:
    """The least a SQLite journal needs: add, done, replay (the measured alternative)."""

    def __init__(self, directory: str, group: bool = False) -> None:
        os.makedirs(directory, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(directory, "journal.sqlite"), isolation_level=None,
                                  check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=OFF", "locking_mode=EXCLUSIVE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE IF NOT EXISTS items (seq INTEGER PRIMARY KEY, key TEXT UNIQUE, item BLOB)")
        self.group = group
        self._open = False
        self._durable: set = set()
        self._pending: List[str] = []
        self.replayed = []
        for key, body in self.db.execute("SELECT key, item FROM items ORDER BY seq"):
            self.replayed.append(wire.from_map(msgpack.unpackb(body, raw=False, strict_map_key=False)))
            self._durable.add(key)

    def add(self, key: str, item_body: bytes) -> bool:
        if self.group and not self._open:
            self.db.execute("BEGIN")
            self._open = True
        self.db.execute("INSERT OR REPLACE INTO items (key, item) VALUES (?, ?)", (key, item_body))
        if self.group:
            self._pending.append(key)
            return False
        self._durable.add(key)
        return True

    def commit(self) -> None:
        if self._open:
            self.db.execute("COMMIT")
            self._open = False
            self._durable.update(self._pending)
            self._pending.clear()

    def unjournaled_of(self, keys: List[str]) -> List[str]:
        return [key for key in keys if key not in self._durable]

    def done(self, key: str) -> None:
        self.db.execute("DELETE FROM items WHERE key = ?", (key,))
        self._durable.discard(key)

    def maintain(self) -> None:
        pass  # SQLite reuses freed pages; the WAL checkpoints itself

    def close(self) -> None:
        self.db.close()


def handrolled(directory: str) -> Any:
    from handler_lib.engine.journal import Journal

    return Journal(directory)


MAKERS: Dict[str, Callable[[str], Any]] = {
    "handrolled": handrolled,
    "sqlite": lambda d: SqliteJournal(d),
    "sqlite_group": lambda d: SqliteJournal(d, group=True),
}


def bodies(n: int) -> List[tuple]:
    """``n`` typical items: an SQS message of some 200 bytes with its attributes."""
    out = []
    for k in range(n):
        item = wire.SqsItem(f"item-{k:08d}", "req-0123456789abcdef", 1_700_000_000_000_000 + k,
                            "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
                            json.dumps({"order_id": k, "customer": "c-42", "total": "19.99", "lines": [1, 2, 3]}),
                            attributes={"tenant": "t-7"})
        out.append((item.id, wire.pack_map(item.to_map())))
    return out


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - started) / 1000


def run_one(kind: str, directory: str, n: int) -> Dict[str, float]:
    items = bodies(n)
    journal = MAKERS[kind](directory)
    append_us: List[float] = []
    ack_us: List[float] = []
    done_us: List[float] = []
    for start in range(0, n, INVOKE_ITEMS):  # invoke by invoke: appends, the ack's check, finishes
        chunk = items[start:start + INVOKE_ITEMS]
        for key, body in chunk:
            append_us.append(timed(lambda: journal.add(key, body)))

        def ack() -> None:
            if isinstance(journal, SqliteJournal):
                journal.commit()
            assert not journal.unjournaled_of([key for key, _ in chunk])

        ack_us.append(timed(ack))
        for key, _ in chunk:
            done_us.append(timed(lambda: journal.done(key)))
        journal.maintain()
    for key, body in items:  # the journal a restart finds: N finished, N live
        journal.add(key + "-live", body)
    if isinstance(journal, SqliteJournal):
        journal.commit()
    journal.close()
    replays = []
    for _ in range(3):  # the best of three: the machine's other load is not the journal's cost
        started = time.perf_counter()
        reopened = MAKERS[kind](directory)
        replays.append((time.perf_counter() - started) * 1000)
        assert len(reopened.replayed) == n, (kind, len(reopened.replayed))
        reopened.close()
    replay_ms = min(replays)
    disk = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
    return {"append_p50_us": percentile(append_us, 50), "append_p99_us": percentile(append_us, 99),
            "ack_per_invoke_p50_us": percentile(ack_us, 50), "ack_per_invoke_p99_us": percentile(ack_us, 99),
            "done_p50_us": percentile(done_us, 50), "done_p99_us": percentile(done_us, 99),
            "replay_ms": replay_ms, "disk_bytes_after": disk}


def rss(kind: str, directory: str, n: int) -> Dict[str, float]:
    """Import time and RSS growth of a fresh interpreter holding ``n`` live items."""
    script = f"""
import json, sys, time
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
sys.path.insert(0, {str(ROOT)!r})
import msgpack
from handler_lib import wire
import handler_lib.engine, logging, threading  # the extension loads these anyway; the journal comes on top
base = status("VmRSS:")
started = time.perf_counter()
if {kind!r}.startswith("sqlite"):
    import sqlite3
else:
    import handler_lib.engine.journal
import_ms = (time.perf_counter() - started) * 1000
import_rss = status("VmRSS:") - base
from bench.journal_bench import MAKERS, bodies, SqliteJournal
items = bodies({n})
after_items = status("VmRSS:")
journal = MAKERS[{kind!r}]({directory!r})
for key, body in items:
    journal.add(key, body)
if isinstance(journal, SqliteJournal):
    journal.commit()
print(json.dumps({{"import_ms": import_ms, "import_rss_kb": import_rss,
                  "rss_growth_kb": status("VmRSS:") - after_items}}))
"""
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the journals go (default: a temporary directory)")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="journal-bench-", dir=args.dir)
    results: Dict[str, Any] = {"items": args.items, "invoke_items": INVOKE_ITEMS, "repeat": args.repeat,
                               "sqlite_version": sqlite3.sqlite_version, "dir": root}
    try:
        for kind in MAKERS:
            runs = []
            for r in range(args.repeat):
                directory = os.path.join(root, f"{kind}-{r}")
                runs.append(run_one(kind, directory, args.items))
                shutil.rmtree(directory)
            merged = {key: round(sorted(run[key] for run in runs)[len(runs) // 2], 2) for key in runs[0]}
            memory = [rss(kind, os.path.join(root, f"{kind}-rss-{r}"), args.items) for r in range(args.repeat)]
            merged["import_ms"] = round(sorted(m["import_ms"] for m in memory)[len(memory) // 2], 2)
            for key in ("import_rss_kb", "rss_growth_kb"):
                merged[key] = sorted(m[key] for m in memory)[len(memory) // 2]
            results[kind] = merged
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
