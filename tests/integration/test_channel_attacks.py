"""The channel reader under attack, in a process of its own: hostile frames, a flood of
connections, descriptors running out, half-sent frames. After each attack a well-behaved
handler still hands over its items and gets them confirmed.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest

from handler_lib import wire
from handler_lib._channel import SocketChannel
from tests.support import channel_host
from tests.support.rie import REPO_ROOT
from tests.support.waiting import wait_until


@pytest.fixture
def host(tmp_path):
    started = []

    def start(*args: str):
        sock = str(tmp_path / f"ch{len(started)}.sock")
        log = open(tmp_path / f"host{len(started)}.log", "wb")
        proc = channel_host.spawn(sock, *args, stderr=log)
        proc.sock, proc.log_path = sock, log.name
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        proc.kill()
        proc.wait()
        log.close()


def items(rid: str, n: int, start: int = 0):
    return [wire.SqsItem(f"{rid}-{i}", rid, 1, "https://sqs/q", f'{{"n":{i}}}') for i in range(start, start + n)]


def hand_over(path: str, rid: str, frames) -> wire.Ack:
    """A well-behaved handler: send the frames, end the invoke, return the extension's ack."""
    channel = SocketChannel(path, wrapped=True)
    count = 0
    for frame in frames:
        channel.send(frame if isinstance(frame, bytes) else wire.encode(frame))
        count += 1
    ack = channel.end_invoke(wire.EndOfInvoke(rid, count), timeout_s=5)
    channel.close()
    assert ack is not None, "no ack"
    return ack


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def raw_frame(payload) -> bytes:
    body = msgpack.packb(payload, use_bin_type=True)
    return wire.HEADER.pack(len(body)) + body


def test_a_bad_frame_costs_only_itself(host):
    proc = host()
    bad = [wire.HEADER.pack(5) + b"\xc1\xc1\xc1\xc1\xc1",                       # not msgpack
           raw_frame({"v": wire.PROTOCOL_VERSION, "k": "sqs", "id": "x"}),      # missing fields
           raw_frame({"v": 99, "k": "sqs"}),                                    # unknown version
           raw_frame({"v": wire.PROTOCOL_VERSION, "k": ["list"]}),              # unhashable kind
           raw_frame([1, 2, 3])]                                                # not a map
    task = wire.TaskItem("r1-task", "r1", 1, "app:t", [{1: "x", None: b"y"}], {})  # int keys: valid now
    frames = items("r1", 100) + bad + [task] + items("r1", 100, start=100)
    ack = hand_over(proc.sock, "r1", frames)
    assert ack.count == 201  # 200 messages and the task; the 5 bad frames are the only loss
    assert set(ack.ids) == {i.id for i in frames if not isinstance(i, bytes)}
    log = Path(proc.log_path).read_text()
    assert log.count("skipped a frame that cannot be decoded") == 5


def test_connection_flood_is_capped_and_the_handler_still_gets_through(host):
    proc = host("--max-connections", "20")
    flood = []
    for _ in range(60):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(proc.sock)
        flood.append(s)
    # Those past the cap are accepted and closed at once: their peers see EOF, not a hang.
    def closed(s):
        s.setblocking(False)
        try:
            return s.recv(1) == b""
        except BlockingIOError:
            return False
    wait_until(lambda: sum(closed(s) for s in flood) >= 40, 5, message="connections past the cap stay open")
    for s in flood[:20]:
        s.close()
    wait_until(lambda: hand_over(proc.sock, "r2", items("r2", 10)).count == 10, 5)
    assert Path(proc.log_path).read_text().count("refusing connections past the cap") == 1


def test_running_out_of_descriptors_backs_off_instead_of_spinning(host):
    proc = host("--nofile", "48")
    flood = []
    for _ in range(200):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(proc.sock)
        except (BlockingIOError, OSError):
            pass
        flood.append(s)
    before = cpu_seconds(proc.pid)
    time.sleep(2.0)  # the window in which a spinning accept loop would burn a core
    burnt = cpu_seconds(proc.pid) - before
    log = Path(proc.log_path).read_text()
    assert burnt < 0.5, f"{burnt:.2f}s of CPU in 2s while out of descriptors"
    assert log.count("cannot accept connections") < 60 and "Traceback" not in log
    for s in flood:
        s.close()
    wait_until(lambda: _acked(proc.sock, "r3"), 10, message="the reader never recovered")


def _acked(path, rid):
    try:
        return hand_over(path, rid, items(rid, 3)).count == 3
    except (ConnectionError, AssertionError):
        return False


def test_half_sent_frames_are_bounded_in_memory(host):
    proc = host()
    base = rss_mb(proc.pid)
    chunk = b"x" * 600_000
    senders = []
    for _ in range(200):  # each claims a 1 MB frame and sends 600 KB of it: 120 MB if all were kept
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(proc.sock)
        s.setblocking(False)
        try:
            s.send(wire.HEADER.pack(1_000_000) + chunk)
        except (BlockingIOError, ConnectionError):
            pass
        senders.append(s)
    wait_until(lambda: "half-sent frames exceed" in Path(proc.log_path).read_text(), 10,
               message="the half-frame budget was never applied")
    assert hand_over(proc.sock, "r4", items("r4", 5)).count == 5
    assert rss_mb(proc.pid) - base < 90, "half-sent frames are not bounded"
    for s in senders:
        s.close()


def test_fork_while_another_thread_is_inside_defer_never_hangs_the_child(host):
    proc = host()
    out = subprocess.run([sys.executable, "-m", "tests.support.fork_scenario", "fork", proc.sock, "40"],
                         cwd=REPO_ROOT, capture_output=True, timeout=60)
    result = json.loads(out.stdout)
    assert result["hung"] == 0, out.stderr.decode()[-2000:]
    ids = result["ids"] + [result["parent_id"]]
    assert all(ids) and len(set(ids)) == len(ids) == 41  # and no child repeats another's ids


def test_two_restores_of_one_snapshot_get_distinct_ids_and_fresh_connections(host):
    proc = host()
    out = subprocess.run([sys.executable, "-m", "tests.support.fork_scenario", "restore", proc.sock, "2"],
                         cwd=REPO_ROOT, capture_output=True, timeout=60)
    result = json.loads(out.stdout)
    first, second = result["restored"]
    assert first["peer_ok"] and second["peer_ok"]
    ids = first["ids"] + second["ids"] + [result["init_id"]]
    assert len(set(ids)) == 7, ids  # the same snapshot, yet no id repeats
    assert {i.rsplit("-", 1)[0] for i in first["ids"]} != {i.rsplit("-", 1)[0] for i in second["ids"]}
