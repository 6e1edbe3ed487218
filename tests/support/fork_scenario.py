"""Forks and snapshot-style restores of a process that uses handler_lib, run in a process of its own.

``python -m tests.support.fork_scenario fork|restore SOCKET N`` prints one JSON line:

- fork: a thread defers without pause (so the channel lock is often held) while the main
  thread forks N children; each child defers one item and exits. Children that do not
  exit within 10 s are counted as hung.
- restore: "init" defers one item (as a SnapStart init may), then N children are made with
  libc's fork(), which runs none of Python's at-fork hooks: each child is a copy of the
  initialised memory, like an environment restored from a snapshot. Each runs one invoke
  of a ``@defer`` handler and reports its item ids and its connection's local identity.
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
from types import SimpleNamespace

from handler_lib import defer
from handler_lib._dispatch import DISPATCHER


def _fork_while_busy(n: int) -> dict:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            defer.sqs("https://sqs.us-east-1.amazonaws.com/1/q", {"from": "parent"})

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    children = []
    for _ in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            item_id = defer.sqs("https://sqs.us-east-1.amazonaws.com/1/q", {"from": "child"})
            os.write(w, item_id.encode())
            os._exit(0)
        os.close(w)
        children.append((pid, r))
        time.sleep(0.005)
    stop.set()
    deadline, hung, ids = time.monotonic() + 10, 0, []
    for pid, r in children:
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if not done:
            hung += 1
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        ids.append(os.read(r, 200).decode())
        os.close(r)
    parent_id = defer.sqs("https://sqs.us-east-1.amazonaws.com/1/q", {"from": "parent"})
    return {"hung": hung, "ids": ids, "parent_id": parent_id}


def _restore(n: int) -> dict:
    @defer
    def handler(event, context):
        return [defer.sqs("https://sqs.us-east-1.amazonaws.com/1/q", {"n": i}) for i in range(3)]

    init_id = defer.sqs("https://sqs.us-east-1.amazonaws.com/1/q", {"at": "init"})
    libc_fork = ctypes.CDLL(None, use_errno=True).fork
    results = []
    for k in range(n):
        r, w = os.pipe()
        pid = libc_fork()
        if pid == 0:
            os.close(r)
            ids = handler({}, SimpleNamespace(aws_request_id=f"req-{k}"))
            sock = DISPATCHER._channel._sock
            out = {"ids": ids, "pid": os.getpid(), "fd": sock.fileno() if sock else None,
                   "peer_ok": sock is not None}
            os.write(w, json.dumps(out).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        results.append(json.loads(os.read(r, 65536)))
        os.close(r)
    return {"init_id": init_id, "restored": results}


def main() -> None:
    mode, socket_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.environ["DEFER_SOCKET"] = socket_path
    os.environ["DEFER_MODE"] = "extension"
    if mode == "restore":
        os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
    result = _fork_while_busy(n) if mode == "fork" else _restore(n)
    print(json.dumps(result), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
