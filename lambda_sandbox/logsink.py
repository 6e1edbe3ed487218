"""Where the sandbox's own lines (START/END/REPORT) and its children's output go.

Lines are written to a stream (stdout by default, looked up at each write so pytest's
capture keeps working) and kept in memory so tests can wait for them.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, TextIO

__all__ = ["LogLine", "LogSink"]


@dataclass(frozen=True)
class LogLine:
    """`source` is `sandbox`, `function`, or the extension's name."""

    source: str
    text: str
    time: float


class LogSink:
    def __init__(self, stream: Optional[TextIO] = None, *, echo: bool = True, keep: int = 20000) -> None:
        self._stream = stream
        self._echo = echo
        self._keep = keep
        self._cond = threading.Condition()
        self._dropped = 0
        self.lines: List[LogLine] = []

    def write(self, source: str, text: str) -> None:
        line = LogLine(source, text, time.time())
        with self._cond:
            self.lines.append(line)
            if len(self.lines) > self._keep:
                excess = len(self.lines) - self._keep
                del self.lines[:excess]
                self._dropped += excess
            self._cond.notify_all()
        if self._echo:
            rendered = text if source in ("sandbox", "function") else f"[{source}] {text}"
            stream = self._stream or sys.stdout
            try:
                stream.write(rendered + "\n")
                stream.flush()
            except (ValueError, OSError):  # stream closed under us (interpreter or pytest teardown)
                pass

    def wait_for(self, predicate: Callable[[LogLine], bool], timeout: float) -> Optional[LogLine]:
        """The first kept line matching `predicate`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = self._dropped  # absolute index of the first line not yet looked at
            while True:
                for line in self.lines[max(0, seen - self._dropped):]:
                    if predicate(line):
                        return line
                seen = self._dropped + len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
