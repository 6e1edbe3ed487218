"""Test helpers: throwaway functions and layers, a recording extension, and pytest fixtures.

Use from a conftest.py::

    from lambda_sandbox.testing import lambda_dirs, sandbox_factory  # noqa: F401

    def test_early_response(lambda_dirs, sandbox_factory):
        lambda_dirs.function("def handler(event, context):\\n    return {'ok': True}\\n")
        records = lambda_dirs.recording_extension("rec", invoke_sleep_s=1)
        box = sandbox_factory(lambda_dirs)
        result = box.invoke({})
        assert result.elapsed_s < 0.5
        assert box.wait_for_report(result.request_id).post_runtime_extensions_ms > 900
"""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from .sandbox import Sandbox

__all__ = ["LambdaDirs", "Records", "lambda_dirs", "sandbox_factory"]

_RECORDER = Path(__file__).with_name("recording_extension.py")


class Records:
    """The JSON lines a recording extension wrote, re-read on every access."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> List[Dict[str, Any]]:
        if not self.path.exists():
            return []
        text = self.path.read_text()
        # The extension appends while a test reads: a last line without its newline is still
        # being written, and is read complete next time.
        lines = text.split("\n")[:-1]
        return [json.loads(line) for line in lines if line.strip()]

    def of(self, kind: str) -> List[Dict[str, Any]]:
        return [r for r in self.all() if r["kind"] == kind]

    def events(self, event_type: str) -> List[Dict[str, Any]]:
        return [r["event"] for r in self.of("event") if r["status"] == 200 and r["event"]["eventType"] == event_type]

    def telemetry(self, event_type: str) -> List[Dict[str, Any]]:
        return [r["event"] for r in self.of("telemetry") if r["event"]["type"] == event_type]


@dataclass
class LambdaDirs:
    """A function (`task`) and a layer (`opt`) under a temporary directory."""

    root: Path

    @property
    def task(self) -> Path:
        return self.root / "task"

    @property
    def opt(self) -> Path:
        return self.root / "opt"

    def function(self, source: str, module: str = "app") -> str:
        """Write `<module>.py` into the task dir; returns the handler name `<module>.handler`."""
        self.task.mkdir(parents=True, exist_ok=True)
        (self.task / f"{module}.py").write_text(textwrap.dedent(source), newline="\n")
        return f"{module}.handler"

    def extension(self, name: str, source: str) -> Path:
        """Write an executable `extensions/<name>` (give it a shebang)."""
        folder = self.opt / "extensions"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(textwrap.dedent(source).lstrip(), newline="\n")
        path.chmod(0o755)
        return path

    def recording_extension(self, name: str = "recorder", **config: Any) -> Records:
        """Install `recording_extension.py` as `extensions/<name>`; see that module for options
        (events, telemetry, schema_version, init_sleep_s, invoke_sleep_s, wait_runtime_done, crash_marker,
        shutdown_sleep_s, probe_errors, probe_bad_name, probe_buffering, env_keys)."""
        record_path = self.root / f"{name}.records.jsonl"
        (self.opt / "recorder").mkdir(parents=True, exist_ok=True)
        (self.opt / "recorder" / f"{name}.json").write_text(json.dumps({"record": str(record_path), **config}))
        source = _RECORDER.read_text()
        self.extension(name, f"#!{sys.executable}\n{source}")
        return Records(record_path)


@pytest.fixture
def lambda_dirs(tmp_path: Path) -> LambdaDirs:
    """Empty task and layer dirs for one test."""
    dirs = LambdaDirs(tmp_path / "lambda")
    dirs.task.mkdir(parents=True)
    (dirs.opt / "extensions").mkdir(parents=True)
    return dirs


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """factory(dirs_or_opt, task=None, handler="app.handler", **Sandbox kwargs) -> started Sandbox;
    given LambdaDirs, its root stays visible inside the environment (`share`); every sandbox
    is stopped at teardown (nothing left running)."""
    started: List[Sandbox] = []

    def factory(dirs: Any, task: Any = None, handler: str = "app.handler", **kwargs: Any) -> Sandbox:
        if isinstance(dirs, LambdaDirs):  # the recording extensions write their records there
            opt, task_dir = dirs.opt, dirs.task
            kwargs.setdefault("share", [dirs.root])
        else:
            opt, task_dir = dirs, task
        box = Sandbox(opt, task_dir, handler, **kwargs)
        started.append(box)
        return box.start()

    yield factory
    for box in started:
        box.stop()


def copy_layer(source: Path, dest: Path) -> Path:
    """Copy a built layer (e.g. dist/layer) so a test can add files to it."""
    shutil.copytree(source, dest, symlinks=True)
    return dest
