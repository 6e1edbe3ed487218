"""The function's and the extensions' environment variables: Lambda's documented set, the
sandbox's own variables passed through except host-only ones, `isolated_env`, reserved
names refused, and the runtime started through AWS_LAMBDA_EXEC_WRAPPER."""
from __future__ import annotations

import os
import sys

import pytest

from lambda_sandbox import Sandbox, SandboxConfigError
from lambda_sandbox.filesystem import namespaces_available

ENV_FUNCTION = """
import os

def handler(event, context):
    return dict(os.environ)
"""
HOST_ONLY = {"HOME": "/root/host-home", "PIP_INDEX_URL": "http://host-only", "VIRTUAL_ENV": "/host/venv",
             "XDG_CONFIG_HOME": "/host/xdg", "SSH_AUTH_SOCK": "/host/ssh", "PYTHONSTARTUP": "/host/startup.py"}


@pytest.fixture
def host_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's own environment: host-only variables, a pass-through one, an endpoint."""
    for key, value in {**HOST_ONLY, "DEFER_PASSED": "through", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "from-the-host")  # Lambda's value wins


def test_function_gets_lambdas_environment(lambda_dirs, sandbox_factory, host_env):
    lambda_dirs.function(ENV_FUNCTION)
    records = lambda_dirs.recording_extension("envcheck", env_keys=[
        "TZ", "PATH", "HOME", "DEFER_PASSED", "CONFIGURED", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_EXECUTION_ENV"])
    box = sandbox_factory(lambda_dirs, env={"CONFIGURED": "yes"}, echo=False)
    env = box.invoke({}).json()
    # Lambda's variables, with Lambda's values
    assert env["TZ"] == ":UTC" and env["LANG"] == "en_US.UTF-8"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "test_function"
    path = env["PATH"].split(":")
    assert path[0] == os.path.dirname(sys.executable) and path[-1].endswith("/opt/bin")
    assert env["LD_LIBRARY_PATH"].endswith("/opt/lib")
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime" and env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python")
    # host-only variables never arrive; the rest passes through; --env adds
    assert not set(HOST_ONLY) & set(env)
    assert env["DEFER_PASSED"] == "through" and env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert env["CONFIGURED"] == "yes"
    # the extension: the same rules, without the runtime-only variables
    seen = records.of("started")[0]["env"]
    assert seen["TZ"] == ":UTC" and seen["PATH"].endswith(":/opt/bin") and seen["HOME"] is None
    assert seen["DEFER_PASSED"] == "through" and seen["CONFIGURED"] == "yes"
    assert seen["_HANDLER"] is None and seen["LAMBDA_TASK_ROOT"] is None and seen["AWS_EXECUTION_ENV"] is None


def test_isolated_env_passes_only_configured_and_aws_variables(lambda_dirs, sandbox_factory, host_env):
    lambda_dirs.function(ENV_FUNCTION)
    box = sandbox_factory(lambda_dirs, env={"CONFIGURED": "yes"}, isolated_env=True, echo=False)
    env = box.invoke({}).json()
    assert "DEFER_PASSED" not in env and not set(HOST_ONLY) & set(env)
    assert env["CONFIGURED"] == "yes" and env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"


def test_reserved_variables_cannot_be_configured(lambda_dirs):
    with pytest.raises(SandboxConfigError, match="LAMBDA_TASK_ROOT"):
        Sandbox(lambda_dirs.opt, lambda_dirs.task, "app.handler", env={"LAMBDA_TASK_ROOT": "/elsewhere"})


def test_runtime_starts_through_the_exec_wrapper(lambda_dirs, sandbox_factory):
    # GIVEN a wrapper in the layer that records its arguments and execs them with one more variable
    (lambda_dirs.opt / "wrapper.sh").write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_FILE"\nexport WRAPPED=yes\nexec "$@"\n')
    (lambda_dirs.opt / "wrapper.sh").chmod(0o755)
    lambda_dirs.function(ENV_FUNCTION)
    args_file = lambda_dirs.root / "wrapper-args"
    wrapper = "/opt/wrapper.sh" if namespaces_available() else str(lambda_dirs.opt / "wrapper.sh")
    box = sandbox_factory(lambda_dirs, env={"AWS_LAMBDA_EXEC_WRAPPER": wrapper, "ARGS_FILE": str(args_file)},
                          echo=False)
    env = box.invoke({}).json()
    # THEN the runtime ran under it: wrapper <runtime command...>
    assert env["WRAPPED"] == "yes"
    assert args_file.read_text().splitlines() == [sys.executable, "-S", "-m", "awslambdaric", "app.handler"]


BOOTSTRAP = """
import http.client, json, os

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    conn = http.client.HTTPConnection(api)
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    reply = conn.getresponse()
    event, request_id = json.loads(reply.read()), reply.getheader("Lambda-Runtime-Aws-Request-Id")
    answer = {"handler": os.environ["_HANDLER"], "event": event, "cwd": os.getcwd(),
              "execution_env": os.environ.get("AWS_EXECUTION_ENV")}
    conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", json.dumps(answer))
    conn.getresponse().read()
"""


@pytest.mark.parametrize("where", ["task", "opt"])
def test_custom_runtime_bootstrap(where, lambda_dirs, sandbox_factory):
    folder = lambda_dirs.task if where == "task" else lambda_dirs.opt
    (folder / "bootstrap").write_text(f"#!{sys.executable}\n{BOOTSTRAP}")
    (folder / "bootstrap").chmod(0o755)
    box = sandbox_factory(lambda_dirs, handler="function.handler", runtime="provided", echo=False)
    reply = box.invoke({"n": 1}).json()
    assert reply["handler"] == "function.handler" and reply["event"] == {"n": 1}
    assert reply["execution_env"] is None
    assert reply["cwd"] == ("/var/task" if namespaces_available() else str(lambda_dirs.task.resolve()))


def test_custom_runtime_without_bootstrap_is_refused(lambda_dirs):
    with pytest.raises(SandboxConfigError, match="no bootstrap"):
        Sandbox(lambda_dirs.opt, lambda_dirs.task, "anything", runtime="provided")
