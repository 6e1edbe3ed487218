"""Task resolution and the task threads: pure logic on real modules in tmp dirs and real threads."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest

from handler_lib import wire
from handler_lib.config import Config
from handler_lib.engine.drain import Drainer
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.tasks import TaskNotFound, TaskRunner
from tests.support.waiting import wait_until

TASK_MODULE = """
import threading
from handler_lib import defer

RELEASE = threading.Event()
STARTED = []

@defer.task(timeout=0.3, max_attempts=1)
def hangs(n):
    STARTED.append(n)
    RELEASE.wait(10)

@defer.task
def quick(n):
    STARTED.append(n)
"""


@pytest.fixture
def code(tmp_path: Path, request) -> Path:
    """A function's code dir with a task module (unique name per test) and a package."""
    root = tmp_path / "task"
    (root / "pkg").mkdir(parents=True)
    name = f"jobs_{request.node.name[-20:].replace('[', '_').replace(']', '_')}_{time.monotonic_ns()}"
    (root / f"{name}.py").write_text(TASK_MODULE)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "inner.py").write_text("from handler_lib import defer\n\n@defer.task\ndef job():\n    pass\n")
    yield root, name
    for mod in [m for m in sys.modules if m == name or m == "pkg" or m.startswith("pkg.")]:
        del sys.modules[mod]


def runner(root: Path) -> TaskRunner:
    return TaskRunner(str(root), layer_roots=[])


def test_only_modules_under_the_function_code_are_imported(code, tmp_path):
    root, name = code
    tasks = runner(root)
    assert tasks.resolve("pkg.inner:job").__defer_task__.name == "pkg.inner:job"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sneaky.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('x')\n")
    sys.path.append(str(outside))  # even when the module is importable from sys.path
    try:
        for forged in ("sneaky:x", "antigravity:x", "os:system", "json:dumps", ".x:y", "pkg..inner:job",
                       "x:", ":y", "nope"):
            with pytest.raises(TaskNotFound):
                tasks.resolve(forged)
    finally:
        sys.path.remove(str(outside))
    assert not (tmp_path / "ran").exists()
    assert "antigravity" not in sys.modules and "sneaky" not in sys.modules


def test_a_module_that_exits_at_import_settles_its_item_as_not_found(code):
    root, _ = code
    (root / "exits.py").write_text("raise SystemExit(3)\n")
    outcome = runner(root).run(wire.TaskItem("t1", "r", 0, "exits:run"))
    assert not outcome.ok and not outcome.retryable and outcome.code == "Defer.TaskNotFound"
    assert "SystemExit" in outcome.message and "exits.py" in outcome.traceback
    assert "exits" not in sys.modules


def test_a_raising_task_is_logged_per_attempt_with_its_own_frames(code, caplog):
    root, _ = code
    (root / "failing.py").write_text(
        "from handler_lib import defer\n\ndef inner():\n    raise KeyError('gone')\n\n"
        "@defer.task\ndef job():\n    inner()\n")
    tasks = runner(root)
    with caplog.at_level(logging.WARNING, logger="defer_runner.tasks"):
        outcome = tasks.run(wire.TaskItem("t2", "r", 0, "failing:job"), attempt=3)
    assert outcome.code == "Defer.TaskFailed" and outcome.retryable
    (record,) = caplog.records
    text = record.getMessage()
    assert "failed on attempt 3 for item t2" in text and "in inner" in text and "in job" in text
    assert "handler_lib/engine/tasks.py" not in outcome.traceback and outcome.traceback.startswith("Traceback")


def test_timeouts_count_from_the_start_and_a_saturated_pool_carries_tasks_over(code, caplog):
    root, name = code
    queue = PendingQueue()
    drainer = Drainer(queue, {}, runner(root), Config(concurrency=4))  # 2 workers, 2 more for hung ones
    for n in range(6):
        queue.add(wire.TaskItem(f"h{n}", "r", 0, f"{name}:hangs", [n], {}, 1, 0.3))
    with caplog.at_level(logging.ERROR, logger="defer_runner.drain"):
        report = drainer.drain(time.monotonic() + 2.0)
    module = sys.modules[name]
    try:
        # h0,h1 hang and time out 0.3 s after their start; h2,h3 get fresh threads and hang too;
        # then all 4 workers are taken by hung threads: h4,h5 never start and are carried over.
        assert sorted(module.STARTED) == [0, 1, 2, 3]
        assert report.given_up == 4 and set(report.given_up_ids) == {"h0", "h1", "h2", "h3"}
        assert report.carried_over == 2 and {e.item.id for e in queue.snapshot()} == {"h4", "h5"}
        assert report.tasks_hung == 4
        assert any("task pool saturated" in r.getMessage() for r in caplog.records)
    finally:
        module.RELEASE.set()
    wait_until(lambda: drainer.task_threads.hung() == 0, 5, message="the hung threads never ended")
    report = drainer.drain(time.monotonic() + 3.0)  # the hung threads ended: the pool works again
    assert report.given_up == 0 and report.delivered == 2 and sorted(module.STARTED) == [0, 1, 2, 3, 4, 5]
    assert report.tasks_hung == 0


def test_a_task_in_the_handler_module_is_run_but_its_double_import_is_said(tmp_path, monkeypatch, caplog):
    """Tasks in the handler's module work, and the extension says its top-level code ran twice."""
    from handler_lib._dispatch import DISPATCHER

    root = tmp_path / "task"
    root.mkdir()
    name = f"handler_mod_{abs(hash(str(tmp_path))) % 10**8}"
    (root / f"{name}.py").write_text(
        "import os\nfrom handler_lib import defer\nSEEN_ROOT = os.environ.get('LAMBDA_TASK_ROOT')\n"
        "@defer.task\ndef noted(n):\n    return n\n"
        "@defer\ndef handler(event, context):\n    return noted.defer(1)\n")
    monkeypatch.setenv("DEFER_RUNNER_PROCESS", "1")  # as in the extension: never dial the socket
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    monkeypatch.setattr(DISPATCHER, "_wrapped", False)
    try:
        runner = TaskRunner(task_root=str(root), layer_roots=[], handler_defined=lambda: DISPATCHER.handler_defined)
        with caplog.at_level(logging.WARNING, logger="defer_runner.tasks"):
            assert runner.resolve(f"{name}:noted").fn(7) == 7
            runner.resolve(f"{name}:noted")
        assert sys.modules[name].SEEN_ROOT == str(root.resolve())  # as the function sees it
        said = [r.getMessage() for r in caplog.records if "also defines the @defer Lambda handler" in r.getMessage()]
        assert len(said) == 1 and name in said[0]
    finally:
        sys.modules.pop(name, None)


def test_a_task_in_a_package_named_like_a_loaded_module_is_refused_saying_why(tmp_path):
    # In the extension's process its own `extension` package (or a package of its deps) is
    # loaded first; a function package of that name is the function's code all the same.
    root = tmp_path / "task"
    (root / "json").mkdir(parents=True)
    (root / "json" / "__init__.py").write_text("")
    (root / "json" / "jobs.py").write_text("from handler_lib import defer\n\n@defer.task\ndef job():\n    pass\n")
    with pytest.raises(TaskNotFound) as raised:
        runner(root).resolve("json.jobs:job")
    assert "not part of the function's code" not in str(raised.value)
    assert "the function's module json has the name of a module the defer-runner extension uses" in str(raised.value)
    outcome = runner(root).run(wire.TaskItem(id="t-1", request_id="r", enqueued_us=0, function="json.jobs:job"))
    assert "the function's module json has the name" in outcome.message


def test_a_task_that_imports_a_module_named_like_a_loaded_one_is_refused_saying_why(tmp_path):
    root = tmp_path / "task"
    root.mkdir()
    (root / "json.py").write_text("MARK = 'user'\n")
    name = f"jobs_json_{time.monotonic_ns()}"
    (root / f"{name}.py").write_text("from json import MARK\nfrom handler_lib import defer\n\n"
                                     "@defer.task\ndef job():\n    pass\n")
    outcome = runner(root).run(wire.TaskItem(id="t-2", request_id="r", enqueued_us=0, function=f"{name}:job"))
    assert "cannot import name 'MARK'" in outcome.message
    assert "the function's module json has the name of a module the defer-runner extension uses" in outcome.message
