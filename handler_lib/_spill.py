"""The function's own journal: what its inline engine holds outlives a reset of the environment.

The inline engine keeps what it could not deliver yet (the letters an invoke's budget ran
out on, a flood a stopped extension could not take) for a later invoke's end. A reset (an
invoke that timed out, an extension that crashed) ends the process first, and with it that
memory. So where an extension runs beside the function, the engine journals what it holds,
in the extension's journal folder under a name of its own (``journal-fn<pid>.bin``, locked
while the process lives): the next extension to start takes it over as it takes over the
journal of an extension that is gone, and delivers what is live in it (a duplicate of what
the function sent just before it died, as at least once allows). Outside Lambda, or with no
extension's socket in the environment, nothing is written: nobody would take it over.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from . import config as cfg
from .engine.journal import Journal

log = logging.getLogger("defer_runner.inline")

FILE_PREFIX = "journal-fn"


def open_journal(config: cfg.Config) -> Optional[Journal]:
    """This process's journal for the inline engine, or None where nothing would read it."""
    if not os.environ.get("AWS_LAMBDA_RUNTIME_API") or not os.path.exists(config.socket_path):
        return None
    try:
        return Journal(config.journal_dir, f"{FILE_PREFIX}{os.getpid()}.bin", adopt=False)
    except OSError as exc:  # a read-only or full folder: the engine keeps its work in memory, as before
        log.warning("the inline engine keeps no journal in %s (%s: %s); what it holds for a later invoke "
                    "is lost if the environment is reset first", config.journal_dir, type(exc).__name__, exc)
        return None
