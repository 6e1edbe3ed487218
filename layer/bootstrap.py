"""Entry point of the defer-runner extension process, run by extensions/defer-runner.

Layer layout (what lands in /opt)::

    extensions/defer-runner     the launcher that execs this file with ``python -I -u``
    defer-runner/bootstrap.py   this file
    defer-runner/extension/     the extension package
    defer-runner/deps/          its dependencies (boto3, botocore, msgpack, powertools, ...)
    python/                     handler_lib and msgpack, the function's side (/opt/python)

The interpreter runs isolated (-I), so PYTHONPATH is ignored at start-up. This module
puts the extension's own code and dependencies first, then the layer's ``python/`` (the
shared wire format lives in handler_lib), then the interpreter's own entries, and only
then the function's PYTHONPATH, so the function's packages can never shadow the
extension's but deferred tasks can still import what the function can.
"""

from __future__ import annotations

import os
import runpy
import sys


def layer_paths(here: str) -> list[str]:
    """The sys.path entries the extension needs, in priority order."""
    root = os.path.dirname(here)
    return [here, os.path.join(here, "deps"), os.path.join(root, "python")]


def build_sys_path(current: list[str], here: str, pythonpath: str | None) -> list[str]:
    """Return sys.path with the layer's entries first and PYTHONPATH entries last."""
    front = layer_paths(here)
    rest = [p for p in current if p and p not in front]
    inherited = [
        p for p in (pythonpath or "").split(os.pathsep) if p and p not in front and p not in rest
    ]
    return front + rest + inherited


def main() -> None:
    """Fix sys.path, then run ``python -m extension`` in this process."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = build_sys_path(sys.path, here, os.environ.get("PYTHONPATH"))
    runpy.run_module("extension", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
