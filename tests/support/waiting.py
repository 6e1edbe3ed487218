"""Bounded waiting and port helpers shared by every test.

Tests must never sleep for a fixed time hoping something happened, nor wait forever:
`wait_until` polls a predicate and fails loudly with a message when the bound passes.
"""
from __future__ import annotations

import socket
import time
from typing import Callable, TypeVar

T = TypeVar("T")

__all__ = ["wait_until", "free_port", "port_open", "die_with_parent"]


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.02,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Poll `predicate` until it returns a truthy value (which is returned) or `timeout` passes.

    Raises AssertionError with `message` (a str, or a callable producing one, useful to
    include the last observed state) when the bound passes. Exceptions raised by the
    predicate propagate: a broken predicate should fail the test, not be retried.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:.2f}s: {text}")
        time.sleep(min(interval, remaining))


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on `host` (the OS picks it).

    There is an unavoidable race between closing and reuse; callers that bind it
    themselves should retry on EADDRINUSE.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if a TCP connection to host:port succeeds (used for readiness checks)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def die_with_parent() -> None:
    """preexec_fn for subprocess.Popen: SIGKILL the child if the test process dies.

    Why: if pytest is killed hard (pytest-timeout's thread method, Ctrl-C twice, CI
    cancel), fixture teardown never runs; without this, moto or RIE would outlive it.
    Linux only; a no-op elsewhere. (Tied to the creating *thread*: start helpers from
    the main thread, as fixtures do.)
    """
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
