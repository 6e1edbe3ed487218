"""What a test may ask of a process by pid, without racing its exit."""

from __future__ import annotations

from pathlib import Path


def process_state(pid: int) -> str | None:
    """The one-letter state from /proc (R, S, T, Z, ...), or None once the process is gone.

    A process can exit between any check and the read of its stat file; the read is the check.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    return process_state(pid) not in (None, "Z")
