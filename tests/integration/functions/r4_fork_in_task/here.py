"""A task the extension runs, which forks a child that ends with sys.exit(0)."""

import os
import sys

from handler_lib import defer

from jobs import note


@defer.task(max_attempts=3)
def forks_here(n: int) -> None:
    note(f"here-{n}")
    pid = os.fork()
    if pid == 0:
        sys.exit(0)
    os.waitpid(pid, 0)
