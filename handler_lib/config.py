"""Configuration read by both sides, from the function's environment.

Every variable name and default lives here; both the handler library and the extension
parse the environment through :func:`load`, once, so a value is never read ad hoc.
"""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional

from ._records import NamedTuple  # typing's, to the type checker; made without its checks (issue 22)

ENV_SOCKET = "DEFER_SOCKET"
ENV_MODE = "DEFER_MODE"
ENV_DLQ_URL = "DEFER_DLQ_URL"
ENV_MAX_ATTEMPTS = "DEFER_MAX_ATTEMPTS"
ENV_DEADLINE_MARGIN_MS = "DEFER_DEADLINE_MARGIN_MS"
ENV_JOURNAL_DIR = "DEFER_JOURNAL_DIR"
ENV_CONCURRENCY = "DEFER_CONCURRENCY"
ENV_LOG_PAYLOADS = "DEFER_LOG_PAYLOADS"
ENV_DEBUG = "DEFER_DEBUG"
ENV_ACK_TIMEOUT_MS = "DEFER_ACK_TIMEOUT_MS"
ENV_MAX_QUEUED_MB = "DEFER_MAX_QUEUED_MB"
#: Where the function's code is, for the extension's task imports. Lambda does not pass
#: LAMBDA_TASK_ROOT to extensions (the code is at /var/task there); a local emulator that
#: keeps the code elsewhere and hides LAMBDA_TASK_ROOT too needs this.
ENV_TASK_ROOT = "DEFER_TASK_ROOT"
#: Read by the exec wrapper (layer/defer-wrapper.sh), not here: the wrapper it hands on to.
ENV_NEXT_EXEC_WRAPPER = "DEFER_NEXT_EXEC_WRAPPER"
#: Inline mode (no extension): the most time delivery may add to an invoke, further bounded
#: by the invoke's remaining time less DEFER_DEADLINE_MARGIN_MS.
ENV_INLINE_BUDGET_MS = "DEFER_INLINE_BUDGET_MS"
#: The claim check: an S3 bucket for SQS/SNS payloads over the threshold (bytes, body and
#: attributes as the services count them; unset: each service's message limit).
ENV_LARGE_PAYLOAD_BUCKET = "DEFER_LARGE_PAYLOAD_BUCKET"
ENV_LARGE_PAYLOAD_THRESHOLD = "DEFER_LARGE_PAYLOAD_THRESHOLD"
#: How the engine calls AWS: ``auto`` (the lean transport for SQS, SNS and EventBridge where
#: it gives the same answers as botocore, botocore otherwise) or ``botocore`` (always).
ENV_TRANSPORT = "DEFER_TRANSPORT"
#: Set by the extension for its own process, so that tasks it imports never dial the socket.
ENV_IN_RUNNER = "DEFER_RUNNER_PROCESS"
#: The function's timeout in seconds where an emulator says it (RIE, ``sam local``); Lambda
#: does not, and there each invoke's deadline is what tells it (see ``delivery_margin_ms``).
ENV_FUNCTION_TIMEOUT = "AWS_LAMBDA_FUNCTION_TIMEOUT"

DEFAULT_SOCKET = "/tmp/defer-runner.sock"
DEFAULT_MODE = "auto"
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_DEADLINE_MARGIN_MS = 300
DEFAULT_JOURNAL_DIR = "/tmp/defer-runner"
DEFAULT_MEMORY_MB = 128
DEFAULT_CONCURRENCY = 8
#: How long the handler waits at the end of an invoke for the extension to confirm that it
#: holds the invoke's items; unconfirmed items are delivered by the handler itself.
DEFAULT_ACK_TIMEOUT_MS = 500
DEFAULT_INLINE_BUDGET_MS = 10_000
MODES = ("auto", "extension", "inline")
DEFAULT_TRANSPORT = "auto"
TRANSPORTS = ("auto", "botocore")
#: The largest DEFER_LARGE_PAYLOAD_THRESHOLD: SQS's message limit (a larger one would never apply).
MAX_LARGE_PAYLOAD_THRESHOLD = 1_048_576
# S3's bucket naming rules (general purpose buckets): 3-63 of a-z 0-9 . -, starting and
# ending with a letter or digit.
_BUCKET_NAME = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"  # compiled by re's cache when a bucket is set
#: What DEFER_DEADLINE_MARGIN_MS always leaves of an invoke for delivery: this much, or half
#: the invoke when it is shorter than twice this (``delivery_margin_ms``).
MIN_DELIVERY_MS = 1_000

_margin_warned = False


class ConfigError(ValueError):
    """An environment variable holds a value outside its allowed range."""


class Config(NamedTuple):
    socket_path: str = DEFAULT_SOCKET
    mode: str = DEFAULT_MODE
    dlq_url: Optional[str] = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    deadline_margin_ms: int = DEFAULT_DEADLINE_MARGIN_MS
    journal_dir: str = DEFAULT_JOURNAL_DIR
    concurrency: int = DEFAULT_CONCURRENCY
    log_payloads: bool = False
    debug: bool = False
    ack_timeout_ms: int = DEFAULT_ACK_TIMEOUT_MS
    max_queued_bytes: int = (DEFAULT_MEMORY_MB // 4) << 20
    inline_budget_ms: int = DEFAULT_INLINE_BUDGET_MS
    large_payload_bucket: Optional[str] = None
    large_payload_threshold: Optional[int] = None  # None: each service's message limit
    transport: str = DEFAULT_TRANSPORT

    def offload_above(self, service_limit: int) -> Optional[int]:
        """The claim check's threshold for a service (bytes, body and attributes): None without
        a bucket; at most the service's limit, over which a message could not be sent."""
        if self.large_payload_bucket is None:
            return None
        threshold = self.large_payload_threshold
        return service_limit if threshold is None else min(threshold, service_limit)


def load(environ: Optional[Mapping[str, str]] = None) -> Config:
    """Parse the environment (``os.environ`` unless given) into a Config; raise ConfigError."""
    env = os.environ if environ is None else environ
    mode = env.get(ENV_MODE, DEFAULT_MODE).strip().lower() or DEFAULT_MODE
    if mode not in MODES:
        raise ConfigError(f"{ENV_MODE}={mode!r}: expected one of {', '.join(MODES)}")
    transport = env.get(ENV_TRANSPORT, DEFAULT_TRANSPORT).strip().lower() or DEFAULT_TRANSPORT
    if transport not in TRANSPORTS:
        raise ConfigError(f"{ENV_TRANSPORT}={transport!r}: expected one of {', '.join(TRANSPORTS)}")
    margin_ms = _int(env, ENV_DEADLINE_MARGIN_MS, DEFAULT_DEADLINE_MARGIN_MS, 0, 60_000)
    timeout_ms = function_timeout_ms(env)
    if timeout_ms is not None and margin_ms >= timeout_ms:
        raise ConfigError(f"{ENV_DEADLINE_MARGIN_MS}={margin_ms}: not below the function's timeout "
                          f"({timeout_ms} ms, {ENV_FUNCTION_TIMEOUT}); no invoke would have time left to "
                          "deliver in")
    return Config(
        socket_path=env.get(ENV_SOCKET) or DEFAULT_SOCKET,
        mode=mode,
        dlq_url=env.get(ENV_DLQ_URL) or None,
        max_attempts=_int(env, ENV_MAX_ATTEMPTS, DEFAULT_MAX_ATTEMPTS, 1, 100),
        deadline_margin_ms=margin_ms,
        journal_dir=env.get(ENV_JOURNAL_DIR) or default_journal_dir(env.get("AWS_LAMBDA_FUNCTION_NAME")),
        concurrency=_int(env, ENV_CONCURRENCY, DEFAULT_CONCURRENCY, 1, 64),
        log_payloads=_truthy(env.get(ENV_LOG_PAYLOADS)),
        debug=_truthy(env.get(ENV_DEBUG)),
        ack_timeout_ms=_int(env, ENV_ACK_TIMEOUT_MS, DEFAULT_ACK_TIMEOUT_MS, 1, 60_000),
        max_queued_bytes=_int(env, ENV_MAX_QUEUED_MB, default_max_queued_mb(env), 1, 10_240) << 20,
        inline_budget_ms=_int(env, ENV_INLINE_BUDGET_MS, DEFAULT_INLINE_BUDGET_MS, 0, 900_000),
        large_payload_bucket=_bucket(env.get(ENV_LARGE_PAYLOAD_BUCKET)),
        large_payload_threshold=(None if not (env.get(ENV_LARGE_PAYLOAD_THRESHOLD) or "").strip() else
                                 _int(env, ENV_LARGE_PAYLOAD_THRESHOLD, 0, 0, MAX_LARGE_PAYLOAD_THRESHOLD)),
        transport=transport,
    )


def function_timeout_ms(env: Mapping[str, str]) -> Optional[int]:
    """The function's timeout where the environment says it (emulators), else None."""
    try:
        seconds = float(env.get(ENV_FUNCTION_TIMEOUT) or "")
    except ValueError:
        return None
    return int(seconds * 1000) if seconds > 0 else None


def capped_margin_ms(margin_ms: int, window_ms: Optional[float]) -> int:
    """``delivery_margin_ms`` without its log line: the function's waits on the extension use
    it (the warning is said where the margin cuts delivery)."""
    if window_ms is None or window_ms <= 0:
        return margin_ms
    return min(margin_ms, max(0, int(window_ms - min(window_ms / 2, MIN_DELIVERY_MS))))


def delivery_margin_ms(margin_ms: int, window_ms: Optional[float]) -> int:
    """The margin to keep in an invoke of ``window_ms`` (its time from start to deadline, the
    function's timeout): DEFER_DEADLINE_MARGIN_MS, but never so much that the invoke keeps less
    than ``MIN_DELIVERY_MS`` (or half of it, if shorter) for delivery. A margin at or near the
    timeout would otherwise leave no time in any invoke: the extension would carry every item
    over to SHUTDOWN, and inline delivery give each up after 0 attempts. Capping it is logged
    once per process, at WARNING."""
    global _margin_warned
    cap = capped_margin_ms(margin_ms, window_ms)
    if cap == margin_ms or window_ms is None:
        return margin_ms
    if not _margin_warned:
        _margin_warned = True
        import logging  # only when the margin is cut: the cold start never loads it for this

        logging.getLogger("defer_runner.config").warning(
            "%s=%d leaves less than %d ms of an invoke's %d ms to deliver in; using a margin of %d ms "
            "(each invoke keeps at least that much). Set it well below the function's timeout",
            ENV_DEADLINE_MARGIN_MS, margin_ms, min(window_ms / 2, MIN_DELIVERY_MS), window_ms, cap,
            extra={"deadline_margin_ms": margin_ms, "invoke_ms": int(window_ms), "margin_used_ms": cap})
    return cap


def default_journal_dir(function_name: Optional[str]) -> str:
    """One journal directory per function: two functions on one host never replay each other's items."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", function_name or "")[:128]
    return f"{DEFAULT_JOURNAL_DIR}/{safe or 'function'}"


def default_max_queued_mb(env: Mapping[str, str]) -> int:
    """A quarter of the function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), at most 64 MiB:
    past it the handler is told to stop deferring, before the extension can crowd the function."""
    try:
        memory_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or DEFAULT_MEMORY_MB)
    except ValueError:
        memory_mb = DEFAULT_MEMORY_MB
    return max(1, min(64, memory_mb // 4))


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a whole number (allowed {low}..{high})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value}: outside the allowed range {low}..{high}")
    return value


def _bucket(raw: Optional[str]) -> Optional[str]:
    name = (raw or "").strip()
    if not name:
        return None
    if not re.fullmatch(_BUCKET_NAME, name) or ".." in name:
        raise ConfigError(f"{ENV_LARGE_PAYLOAD_BUCKET}={name!r}: not an S3 bucket name (3 to 63 of a-z 0-9 . -, "
                          "starting and ending with a letter or digit)")
    return name


def _truthy(raw: Optional[str]) -> bool:
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")
