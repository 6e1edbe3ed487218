"""Managed Instances workers with a slow periodic hook: each line says which process did what
and when (wall clock: the same in every worker), for the test to look for overlaps."""

import os
import sys
import time

from handler_lib import defer


def _say(line: str) -> None:
    """One write per line: print() writes the newline apart, and two workers' lines would merge."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@defer.every(float(os.environ.get("HOOK_INTERVAL_S", "1")))
def refresh() -> None:
    started = time.time()
    time.sleep(0.5)
    _say(f"hook {os.getpid()} {started:.6f} {time.time():.6f}")


@defer
def handler(event, context):
    started = time.time()
    time.sleep(event.get("work_s", 0.05))
    _say(f"request {os.getpid()} {started:.6f} {time.time():.6f}")
    return {"pid": os.getpid()}
