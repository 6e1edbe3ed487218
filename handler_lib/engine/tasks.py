"""Find and run ``@defer.task`` functions in the extension process.

A task is named ``module:qualname``. Only code that ships with the function is ever imported:
the module and each of its parent packages must be found under the function's code
(``LAMBDA_TASK_ROOT``, default ``/var/task``; ``DEFER_TASK_ROOT`` where an emulator puts it
elsewhere) or the layers' ``python`` folders, checked before anything is imported, so a forged
frame can never run the top-level code of another module (the standard library included).
Paths sent by the handler are never used. Only objects carrying the ``@defer.task`` marker
run. Any exception while resolving or running a task (``SystemExit`` included) becomes the
item's outcome: an item is never left in flight by its task. In a child process the task
forked, a ``SystemExit`` ends the child: the outcome is the parent's.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import traceback
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType, TracebackType
from typing import Any, Callable, Dict, List, Optional, cast

from .. import wire
from ..config import ENV_TASK_ROOT
from .task_marker import task_options

from .outcome import TASK_FAILED, TASK_NOT_FOUND, Outcome

log = logging.getLogger("defer_runner.tasks")

#: Where Lambda merges the layers; a driver that knows its own layer root passes it too.
LAMBDA_LAYERS_ROOT = "/opt"


class TaskNotFound(LookupError):
    """The name does not resolve to a ``@defer.task`` function under the allowed roots."""


def allowed_roots(task_root: Optional[str] = None, layer_roots: Optional[List[str]] = None) -> List[str]:
    """Where task modules may come from: the function's code, then the layers' python dirs."""
    # Each is named by the process's own environment (never by a frame): Lambda keeps the code
    # at /var/task and does not tell extensions; the function's process knows LAMBDA_TASK_ROOT.
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    roots = [r for r in (task_root, os.environ.get(ENV_TASK_ROOT), os.environ.get("LAMBDA_TASK_ROOT"),
                         "/var/task") if r]
    for layer in layer_roots if layer_roots is not None else [LAMBDA_LAYERS_ROOT]:
        python = os.path.join(layer, "python")
        roots += [python, os.path.join(python, "lib", version, "site-packages")]
    return [os.path.realpath(r) for r in dict.fromkeys(roots)]


def task_traceback(exc: BaseException, skip: int = 1) -> str:
    """The exception's traceback without the first ``skip`` frames (the runner's own)."""
    tb: Optional[TracebackType] = exc.__traceback__
    for _ in range(skip):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class TaskRunner:
    def __init__(self, task_root: Optional[str] = None, layer_roots: Optional[List[str]] = None,
                 *, trust_loaded: bool = False, handler_defined: Optional[Callable[[], bool]] = None,
                 before_import: Optional[Callable[[], None]] = None) -> None:
        self.roots = allowed_roots(task_root, layer_roots)
        # Run once, before the first task module is imported (the extension: the .pth files
        # its -S start skipped).
        self._before_import = before_import
        # In the extension's process: whether importing a task module also defined the @defer
        # handler there (its module-level code then ran a second time), to warn about it once.
        self._handler_defined = handler_defined or (lambda: False)
        # In the function's own process (inline delivery) every task item was made by a
        # ``.defer()`` of a module this process already imported: those modules are its code,
        # wherever they live (a developer's checkout too). Nothing new is imported from outside.
        self.trust_loaded = trust_loaded
        for path in self.roots:  # a task module's own absolute imports of its siblings
            if path not in sys.path:
                sys.path.append(path)
        # Lambda does not tell extensions where the code is; a task module that reads it at
        # import sees what it sees in the function.
        os.environ.setdefault("LAMBDA_TASK_ROOT", self.roots[0])
        self._import_lock = threading.Lock()
        self._warned_handler_module = False

    def _under_roots(self, path: Optional[str]) -> bool:
        """An absolute file path inside an allowed root (frozen and built-in modules have none)."""
        if not path or not os.path.isabs(path):
            return False
        real = os.path.realpath(path)
        return any(real == root or real.startswith(root + os.sep) for root in self.roots)

    def _spec_allowed(self, spec: Optional[ModuleSpec]) -> bool:
        if spec is None or spec.loader is None:
            return False
        if spec.has_location:
            return self._under_roots(spec.origin)
        locations = list(spec.submodule_search_locations or [])  # a namespace package
        return bool(locations) and all(self._under_roots(p) for p in locations)

    def _import(self, module_name: str) -> ModuleType:
        """Import ``module_name`` only from the allowed roots, each parent package checked first."""
        if not module_name or any(not part.isidentifier() for part in module_name.split(".")):
            raise TaskNotFound(f"{module_name!r} is not a module name")
        module: Optional[ModuleType] = None
        parts = module_name.split(".")
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            loaded = sys.modules.get(name)
            if loaded is not None:
                if not self.trust_loaded and not self._spec_allowed(getattr(loaded, "__spec__", None)):
                    raise TaskNotFound(self.name_taken(name)
                                       or f"module {name} is not part of the function's code or layers")
                module = loaded
                continue
            search = self.roots if module is None else list(getattr(module, "__path__", None) or [])
            spec = PathFinder.find_spec(name, search)
            if spec is None or spec.loader is None or not self._spec_allowed(spec):
                raise TaskNotFound(f"module {name} is not found under the function's code or layers")
            new = importlib.util.module_from_spec(spec)
            sys.modules[name] = new
            try:
                spec.loader.exec_module(new)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            if module is not None:
                setattr(module, parts[depth - 1], new)
            module = new
        assert module is not None
        return module

    def name_taken(self, name: str) -> str:
        """Why the function's own module ``name`` (its top-level package) cannot be imported in
        this process: the process already has a module of that name from elsewhere (the
        extension's own ``extension`` package, a package of its ``deps/``). Empty if not so."""
        top = name.partition(".")[0]
        loaded = sys.modules.get(top)
        if loaded is None or self._spec_allowed(getattr(loaded, "__spec__", None)):
            return ""
        if not self._spec_allowed(PathFinder.find_spec(top, self.roots)):
            return ""
        where = getattr(loaded, "__file__", None) or "built in"
        return (f"the function's module {top} has the name of a module the defer-runner extension uses "
                f"({where}), which its process loaded first; rename the function's {top}, or keep "
                f"what the task needs out of it")

    def resolve(self, name: str) -> Callable[..., Any]:
        module_name, sep, qualname = name.partition(":")
        if not sep or not module_name or not qualname:
            raise TaskNotFound(f"{name!r} is not of the form module:qualname")
        with self._import_lock:
            if self._before_import is not None:
                prepare, self._before_import = self._before_import, None
                try:
                    prepare()
                except Exception:  # noqa: BLE001 - the task's own import says what is missing
                    log.exception("could not prepare the imports of tasks")
            handler_before = self._handler_defined()
            target: Any = self._import(module_name)
            if self._handler_defined() and not handler_before and not self._warned_handler_module:
                self._warned_handler_module = True
                log.warning("task module %s also defines the @defer Lambda handler: its top-level code ran "
                            "a second time, in the extension's process (a module-level defer.* call is "
                            "sent twice). Keep @defer.task functions in a module of their own", module_name)
        for part in qualname.split("."):
            target = getattr(target, part, None)
            if target is None:
                raise TaskNotFound(f"{name} does not exist")
        options = task_options(target)
        if options is None or options.name != name:
            raise TaskNotFound(f"{name} is not a @defer.task function; refusing to run it")
        return cast(Callable[..., Any], target)

    def run(self, item: wire.TaskItem, attempt: int = 1) -> Outcome:
        """Run one attempt; every failure is logged with the task's own traceback."""
        try:
            task = self.resolve(item.function)
        except TaskNotFound as exc:
            log.error("task %s not found for item %s: %s", item.function, item.id, exc,
                      extra={"item_id": item.id, "attempt": attempt})
            return Outcome.failure(item.id, TASK_NOT_FOUND, str(exc), sender_fault=True)
        except BaseException as exc:  # noqa: BLE001 - a module that fails to import is permanent
            trace = task_traceback(exc)
            taken = self.name_taken(exc.name) if isinstance(exc, ImportError) and exc.name else ""
            why = f"{type(exc).__name__}: {exc}" + (f" ({taken})" if taken else "")
            log.error("task %s could not be imported for item %s (attempt %d): %s\n%s", item.function,
                      item.id, attempt, why, trace, extra={"item_id": item.id, "attempt": attempt})
            return Outcome.failure(item.id, TASK_NOT_FOUND, f"importing {item.function} raised {why}",
                                   sender_fault=True, traceback=trace)
        kwargs = dict(item.kwargs)
        if task.__defer_task__.pass_item_id:  # type: ignore[attr-defined]
            kwargs["defer_id"] = item.id
        pid = os.getpid()
        try:
            task.fn(*item.args, **kwargs)  # type: ignore[attr-defined]
        except BaseException as exc:  # noqa: BLE001 - a failing task is an outcome, never a crash
            if os.getpid() != pid and not isinstance(exc, Exception):
                raise  # a child the task forked exits: the outcome is its parent's to report
            trace = task_traceback(exc)
            log.warning("task %s failed on attempt %d for item %s: %s: %s\n%s", item.function, attempt,
                        item.id, type(exc).__name__, exc, trace,
                        extra={"item_id": item.id, "attempt": attempt})
            return Outcome.failure(item.id, TASK_FAILED, f"{type(exc).__name__}: {exc}", traceback=trace)
        return Outcome.success(item.id)


class TaskThreads:
    """The threads tasks run on: ``size`` at a time, each task on a thread of its own.

    A thread cannot be killed, so a task that outlives its timeout is abandoned: its item is
    settled and its slot given back, for at most ``max_hung`` abandoned threads at a time (past
    that they keep their slots and the pool saturates, which the drain reports at ERROR).
    """

    def __init__(self, size: int, max_hung: int) -> None:
        self.size = size
        self.max_hung = max_hung
        self._lock = threading.Lock()
        self._live: Dict[int, bool] = {}  # thread ident -> abandoned

    def free(self) -> int:
        with self._lock:
            abandoned = sum(self._live.values())
            busy = len(self._live) - abandoned + max(0, abandoned - self.max_hung)
            return max(0, self.size - busy)

    def hung(self) -> int:
        with self._lock:
            return sum(self._live.values())

    def start(self, run: Callable[[], None]) -> int:
        started = threading.Event()
        ident: List[int] = []

        def body() -> None:
            ident.append(threading.get_ident())
            with self._lock:
                self._live[ident[0]] = False
            started.set()
            try:
                run()
            finally:
                self.finish(ident[0])

        threading.Thread(target=body, name="defer-task", daemon=True).start()
        started.wait()
        return ident[0]

    def finish(self, ident: int) -> None:
        """The thread's task is over: its slot is free (called again on the way out: harmless)."""
        with self._lock:
            self._live.pop(ident, None)

    def abandon(self, ident: int) -> None:
        with self._lock:
            if ident in self._live:
                self._live[ident] = True
