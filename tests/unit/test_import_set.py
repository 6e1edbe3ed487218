"""What a function's cold start loads of handler_lib (issue 22): each module counts, ~3.5 ms of
cold start per ms of import on a 512 MB function. Each case runs in a fresh interpreter and
compares ``sys.modules`` before and after; the times themselves live in bench/ (startup)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"

#: What ``from handler_lib import defer`` may add to a fresh interpreter: the package and the
#: ``defer`` object's module, nothing else (not typing, msgpack or socket: those come with the
#: wrapped handler). A new import here costs every cold start: load it on first use instead.
IMPORT_ADDS = {"handler_lib", "handler_lib._api"}

#: Never loaded by importing handler_lib, decorating a handler and deferring an item to the
#: extension: the parts a handler may never use, and what they would bring.
HEAVY = [
    "handler_lib._asgi", "handler_lib.changes", "handler_lib._changes_orm", "handler_lib._change_targets",
    "handler_lib.consumer", "handler_lib.worker", "handler_lib.redrive", "handler_lib.testing",
    "handler_lib._test_events", "handler_lib._inline", "handler_lib.engine", "handler_lib._tasks",
    "handler_lib._task_queue", "handler_lib._workflow_items", "handler_lib._otel", "handler_lib._after",
    "boto3", "botocore", "mangum", "sqlalchemy", "pydantic", "opentelemetry", "asyncio", "concurrent.futures",
    "inspect", "dataclasses", "decimal", "uuid", "http.client", "email", "sqlite3",
]


def _fresh(code: str, tmp_path, **env: str) -> dict:
    """Run ``code`` in a new interpreter (the repo's handler_lib first on the path); it prints
    one JSON object, returned."""
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DEFER_", "AWS_LAMBDA_"))}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=environ, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_defer_loads_the_package_and_the_defer_object_only(tmp_path):
    code = ("import json, sys\nbefore = set(sys.modules)\nfrom handler_lib import defer\n"
            "print(json.dumps({'added': sorted(set(sys.modules) - before)}))")
    added = set(_fresh(code, tmp_path)["added"])
    assert added <= IMPORT_ADDS, f"from handler_lib import defer now also loads {sorted(added - IMPORT_ADDS)}"


def test_a_wrapped_handler_that_defers_loads_none_of_the_heavy_parts(tmp_path):
    # GIVEN a handler wrapped by @defer, and no extension (DEFER_MODE=extension: the call
    # raises instead of going inline, which would load the delivery engine and boto3)
    code = f"""
import json, sys
from handler_lib import defer, ExtensionUnavailableError

@defer
def handler(event, context):
    try:
        defer.sqs({QUEUE!r}, {{"order_id": "o-1"}})
    except ExtensionUnavailableError:
        pass
    return sorted(m for m in {HEAVY!r} if m in sys.modules or any(k.startswith(m + ".") for k in sys.modules))

class Context:
    aws_request_id = "r-1"

print(json.dumps({{"loaded": handler({{}}, Context())}}))
"""
    # WHEN it runs one invoke THEN none of them was loaded
    loaded = _fresh(code, tmp_path, DEFER_MODE="extension", DEFER_SOCKET=str(tmp_path / "none.sock"))["loaded"]
    assert loaded == []


@pytest.mark.parametrize("declare", ["@defer.task", "@defer.task(max_attempts=3, timeout=10.0)"])
def test_declaring_a_task_loads_neither_the_engine_nor_the_sdk(tmp_path, declare):
    code = f"""
import json, sys
from handler_lib import defer

{declare}
def send_receipt(order_id):
    pass

print(json.dumps({{"loaded": sorted(m for m in ("boto3", "botocore", "inspect", "asyncio", "handler_lib.engine.tasks",
                                             "handler_lib._inline", "handler_lib.testing") if m in sys.modules)}}))
"""
    assert _fresh(code, tmp_path)["loaded"] == []


def test_a_fork_loads_nothing_in_a_process_that_never_used_defer(tmp_path):
    # (the at-fork hook finishes a first use's imports begun in another thread, and only those)
    code = """
import json, os, sys
from handler_lib import defer
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({"loaded": sorted(m for m in sys.modules if m.startswith("handler_lib."))}))
"""
    assert _fresh(code, tmp_path)["loaded"] == ["handler_lib._api"]
