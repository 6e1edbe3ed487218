"""Configuration read by both sides, from the function's environment.

Every variable name and default lives here; both the handler library and the extension
parse the environment through :func:`load`, once, so a value is never read ad hoc.
"""

from __future__ import annotations

import os
from typing import Mapping, NamedTuple, Optional

ENV_SOCKET = "DEFER_SOCKET"
ENV_MODE = "DEFER_MODE"
ENV_DLQ_URL = "DEFER_DLQ_URL"
ENV_MAX_ATTEMPTS = "DEFER_MAX_ATTEMPTS"
ENV_DEADLINE_MARGIN_MS = "DEFER_DEADLINE_MARGIN_MS"
ENV_JOURNAL_DIR = "DEFER_JOURNAL_DIR"
ENV_CONCURRENCY = "DEFER_CONCURRENCY"
ENV_LOG_PAYLOADS = "DEFER_LOG_PAYLOADS"
ENV_DEBUG = "DEFER_DEBUG"
#: Inline mode (no extension): the most time delivery may add to an invoke, further bounded
#: by the invoke's remaining time less DEFER_DEADLINE_MARGIN_MS.
ENV_INLINE_BUDGET_MS = "DEFER_INLINE_BUDGET_MS"
#: Set by the extension for its own process, so that tasks it imports never dial the socket.
ENV_IN_RUNNER = "DEFER_RUNNER_PROCESS"

DEFAULT_SOCKET = "/tmp/defer-runner.sock"
DEFAULT_MODE = "auto"
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_DEADLINE_MARGIN_MS = 300
DEFAULT_JOURNAL_DIR = "/tmp/defer-runner"
DEFAULT_CONCURRENCY = 8
DEFAULT_INLINE_BUDGET_MS = 10_000
MODES = ("auto", "extension", "inline")


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
    inline_budget_ms: int = DEFAULT_INLINE_BUDGET_MS


def load(environ: Optional[Mapping[str, str]] = None) -> Config:
    """Parse the environment (``os.environ`` unless given) into a Config; raise ConfigError."""
    env = os.environ if environ is None else environ
    mode = env.get(ENV_MODE, DEFAULT_MODE).strip().lower() or DEFAULT_MODE
    if mode not in MODES:
        raise ConfigError(f"{ENV_MODE}={mode!r}: expected one of {', '.join(MODES)}")
    return Config(
        socket_path=env.get(ENV_SOCKET) or DEFAULT_SOCKET,
        mode=mode,
        dlq_url=env.get(ENV_DLQ_URL) or None,
        max_attempts=_int(env, ENV_MAX_ATTEMPTS, DEFAULT_MAX_ATTEMPTS, 1, 100),
        deadline_margin_ms=_int(env, ENV_DEADLINE_MARGIN_MS, DEFAULT_DEADLINE_MARGIN_MS, 0, 60_000),
        journal_dir=env.get(ENV_JOURNAL_DIR) or DEFAULT_JOURNAL_DIR,
        concurrency=_int(env, ENV_CONCURRENCY, DEFAULT_CONCURRENCY, 1, 64),
        log_payloads=_truthy(env.get(ENV_LOG_PAYLOADS)),
        debug=_truthy(env.get(ENV_DEBUG)),
        inline_budget_ms=_int(env, ENV_INLINE_BUDGET_MS, DEFAULT_INLINE_BUDGET_MS, 0, 900_000),
    )


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


def _truthy(raw: Optional[str]) -> bool:
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")
