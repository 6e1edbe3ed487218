"""Entry point of the defer-runner extension process, run by extensions/defer-runner.

The layer's layout is defined here, once (scripts/build_layer.py builds from these names);
what lands in /opt::

    extensions/defer-runner     the launcher that execs this file with ``python -I -S -u``
    defer-runner/bootstrap.py   this file
    defer-runner/_defer_runner/ the extension package (the repo's extension/, under a name of
                                its own, so a function's package named ``extension`` stays
                                importable by its tasks in this process)
    defer-runner/handler_lib/   the library with its delivery engine, the extension's own copy
    defer-runner/deps/          its dependencies (botocore, msgpack, powertools, ...)
    python/                     handler_lib and msgpack, the function's side (/opt/python)

The extension imports only from its own folder: the interpreter runs isolated (-I), so
PYTHONPATH is ignored at start-up, and this module puts ``defer-runner/`` and its ``deps/``
first, then the interpreter's own entries, and only then the function's PYTHONPATH, so the
function's packages can never shadow the extension's, while deferred tasks can still import
what the function can (the task runner adds the function's code and the layers' ``python/``).
Once ``extension`` and ``handler_lib`` are loaded, ``defer-runner/`` itself leaves sys.path,
so this file is never what a task's ``import bootstrap`` finds; ``deps/`` stays (the names
of its packages, and ``extension`` and ``handler_lib``, are the extension's in its process).
The function's side never adds any of the extension's folders to its ``sys.path``.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys


#: The layer's folders, relative to its root (/opt on Lambda).
EXTENSION_DIR = "defer-runner"  # this file's folder: the extension's code and dependencies
#: The packages in it: (name in the layer, folder in the repo).
EXTENSION_PACKAGE = "_defer_runner"
EXTENSION_PACKAGES = ((EXTENSION_PACKAGE, "extension"), ("handler_lib", "handler_lib"))
DEPS_DIR = "deps"  # in EXTENSION_DIR
FUNCTION_DIR = "python"  # the function's side, on its sys.path as Lambda puts /opt/python
LAUNCHER = "extensions/defer-runner"  # its name is the extension's name
EXEC_WRAPPER = "exec-wrapper"  # in EXTENSION_DIR


def layer_paths(here: str) -> list[str]:
    """The sys.path entries the extension needs, in priority order: its own folder only."""
    return [here, os.path.join(here, DEPS_DIR)]


def build_sys_path(current: list[str], here: str, pythonpath: str | None) -> list[str]:
    """Return sys.path with the layer's entries first and PYTHONPATH entries last."""
    front = layer_paths(here)
    rest = [p for p in current if p and p not in front]
    inherited = [
        p for p in (pythonpath or "").split(os.pathsep) if p and p not in front and p not in rest
    ]
    return front + rest + inherited


def site_packages() -> list[str]:
    """The interpreter's site-packages when it started without ``site`` (the launcher's -S).

    -S spares the extension's start the processing of every ``.pth`` file of the interpreter
    (measured here: 21 ms of CPU, a third of its start, for one that imports certifi); the
    folders themselves stay importable for tasks (a runtime's bundled boto3 lives there, and a
    virtual environment's packages when the interpreter is one's), in the place ``site`` would
    have put them; their ``.pth`` files run later, before the first task import (the
    extension's ``SITE_PACKAGES``), as a task may import what only a ``.pth`` makes importable.
    """
    if not sys.flags.no_site:
        return []
    import site

    prefixes = [sys.prefix, sys.exec_prefix]
    venv, system_site = _virtual_environment()
    if venv is not None:  # what site.venv() would do, without running the .pth files
        prefixes = [venv, *prefixes] if system_site else [venv]
    return [p for p in site.getsitepackages(list(dict.fromkeys(prefixes))) if os.path.isdir(p)]


def _virtual_environment() -> tuple[str | None, bool]:
    """(the prefix of the virtual environment the interpreter belongs to, whether it includes
    the system's site-packages); (None, True) outside one. As ``site`` finds it: a
    ``pyvenv.cfg`` beside the executable or one folder up."""
    exe_dir = os.path.dirname(os.path.abspath(sys.executable))
    prefix = os.path.dirname(exe_dir)
    for conf in (os.path.join(exe_dir, "pyvenv.cfg"), os.path.join(prefix, "pyvenv.cfg")):
        if os.path.isfile(conf):
            system_site = True  # site's reading of a file without the line
            try:
                with open(conf, encoding="utf-8") as lines:
                    for line in lines:
                        key, sep, value = line.partition("=")
                        if sep and key.strip().lower() == "include-system-site-packages":
                            system_site = value.strip().lower() == "true"
            except OSError:
                pass
            return prefix, system_site
    return None, True


def main() -> None:
    """Fix sys.path, then run the extension package as ``python -m`` would, in this process."""
    here = os.path.dirname(os.path.abspath(__file__))
    sites = site_packages()
    sys.path[:] = build_sys_path(sys.path + sites, here, os.environ.get("PYTHONPATH"))
    # Its packages are loaded now (their modules load through the packages from here on), so
    # the folder leaves sys.path: a task module's ``import bootstrap`` (or anything else named
    # like a file of this folder) finds the function's module, not this file.
    for package, _ in EXTENSION_PACKAGES:
        importlib.import_module(package)
    # Their .pth files run before the first task import, off the extension's start.
    setattr(sys.modules[EXTENSION_PACKAGE], "SITE_PACKAGES", sites)
    sys.path[:] = [p for p in sys.path if p != here]
    runpy.run_module(EXTENSION_PACKAGE, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
