"""The extension's channel reader in a process of its own, for attacks on it from outside.

``python -m tests.support.channel_host SOCKET [--nofile N] [--max-connections N]`` binds
the socket as the extension does, reads with the real ChannelServer, holds every item it
receives (acking end markers with what it holds, as the runner does) and prints "ready".
Its CPU time, memory and log (stderr) are what the tests measure; tests start it with
:func:`spawn`.
"""
from __future__ import annotations

import argparse
import logging
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List

from extension.channel import ChannelHandlers, ChannelServer
from extension.listener import listen
from handler_lib import wire


def spawn(sock: str, *args: str, stderr: Any = subprocess.DEVNULL) -> "subprocess.Popen[bytes]":
    """The reader on ``sock`` in a process of its own, once it listens (it said "ready")."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.channel_host", sock, *args],
                            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=stderr)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("--nofile", type=int)
    parser.add_argument("--max-connections", type=int)
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    held: Dict[str, List[str]] = {}

    def on_item(item: wire.WorkItem, body: bytes) -> None:
        held.setdefault(item.request_id, []).append(item.id)

    def on_end(end: wire.EndOfInvoke) -> wire.Ack:
        ids = held.pop(end.request_id, [])
        return wire.Ack(end.request_id, len(ids), ids if len(ids) < end.count else None)

    server = ChannelServer(args.socket, listen(args.socket), max_connections=args.max_connections)
    server.start(ChannelHandlers(on_item=on_item, on_end=on_end, on_hello=lambda c, h: None,
                                 on_close=lambda c: None))
    if args.nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
