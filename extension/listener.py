"""Bind the channel's unix socket: the one thing done before registering (stdlib only).

The runtime starts as soon as every extension has registered and the handler may dial at
once, so the socket must be listening first; everything else waits until after register.
"""

from __future__ import annotations

import os
import socket
import stat


def listen(path: str, backlog: int = 64) -> socket.socket:
    """A non-blocking listening socket at ``path``, mode 0600; raises OSError."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)  # left by a previous instance of this environment
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    listener.listen(backlog)
    listener.setblocking(False)
    return listener
