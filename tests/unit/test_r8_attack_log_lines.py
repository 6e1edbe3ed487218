"""The extension's JSON log lines (extension/logs.py, hand-written in Powertools Logger's
shape): every call writes one JSON object on one line, whatever its extras hold. Found: the
formatter's fallback caught only ValueError (a circular extra), so an extra with bytes or tuple
dict keys or an object whose ``str()`` raises lost its line (logging printed "--- Logging
error ---" to stderr), and one nested deeper than the recursion limit raised RecursionError out
of the log call itself (logging re-raises it), into whatever code was logging.

A real process: the extension's setup_logging on its stdout, read back line by line.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = r"""
import functools, logging, threading
from extension.logs import setup_logging
from handler_lib.config import Config

setup_logging(Config())
log = logging.getLogger("defer_runner.attack")


class Unprintable:
    def __str__(self):
        raise RuntimeError("no str")
    __repr__ = __str__


class BadError(Exception):
    def __str__(self):
        raise RuntimeError("no str")


log.info("bytes keys", extra={"d": {b"k": 1}})
log.info("tuple keys", extra={"d": {("a", 1): 2}})
log.info("unprintable", extra={"o": Unprintable()})
log.info("deep", extra={"d": functools.reduce(lambda inner, _: [inner], range(100000), [])})
try:
    raise BadError()
except BadError:
    log.exception("lone \ud800 surrogate", extra={"b": b"\xff\x00", "big": "x" * 300000, "nan": float("nan")})
log.info("stack", stack_info=True)
threads = [threading.Thread(target=lambda i=i: [log.info("thread %d", i, extra={"x": "y" * 5000}) for _ in range(25)])
           for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
log.info("last")
"""


def test_every_log_call_writes_one_json_object_on_one_line():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Logging error" not in proc.stderr, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    messages = [line["message"] for line in lines]
    assert messages[:6] == ["bytes keys", "tuple keys", "unprintable", "deep", "lone \ud800 surrogate", "stack"]
    assert messages[-1] == "last" and len(lines) == 6 + 100 + 1
    assert lines[4]["exception_name"] == "BadError" and len(lines[4]["big"]) == 300000
    assert "stack_info" in lines[5]
    assert all(line["level"] == "INFO" and line["service"] == "defer-runner" for line in lines if line is not lines[4])
