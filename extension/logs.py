"""Structured JSON log lines for the extension's own loggers (``defer_runner.*``).

The lines have the keys and order of Powertools Logger's (``level``, ``location``,
``message``, ``timestamp``, ``service``, ``name``, then the record's extra fields, then
``exception`` and ``exception_name``), so a log query written for a Powertools function reads
them too. They are written here rather than through Powertools: importing and setting up its
Logger cost 20 ms of CPU before the extension could say it is ready (bench ``--only
startup``), six times what this formatter costs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Dict

from handler_lib.config import Config

SERVICE = "defer-runner"
LOGGER = "defer_runner"
#: The attributes every LogRecord has; anything else on a record came through ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, service: str = SERVICE) -> None:
        super().__init__()
        self._service = service

    def formatTime(self, record: logging.LogRecord, datefmt: Any = None) -> str:  # noqa: N802 - logging's name
        seconds = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))
        return f"{seconds},{int(record.msecs):03d}+0000"

    def format(self, record: logging.LogRecord) -> str:
        line: Dict[str, Any] = {"level": record.levelname, "location": f"{record.funcName}:{record.lineno}",
                                "message": record.getMessage(), "timestamp": self.formatTime(record),
                                "service": self._service, "name": record.name}
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = self.formatException(record.exc_info).rstrip("\n")
            line["exception_name"] = record.exc_info[0].__name__
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(line, default=str, separators=(",", ":"))
        except Exception:  # noqa: BLE001 - circular, too deep, keys JSON has no form for, a str()
            # that raises: the line still goes out, with what can be said (RecursionError
            # would otherwise leave the log call itself: logging re-raises it)
            return json.dumps({k: _plain(v) for k, v in line.items()}, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - its repr raises too
        return f"<unprintable {type(value).__name__}>"


def setup_logging(config: Config) -> None:
    """JSON lines on stdout (as Powertools writes them) for ``defer_runner`` and its children; nothing propagates to root
    (a task's own logging set-up must not see the extension's lines twice)."""
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if config.debug else logging.INFO)
    logger.propagate = False
