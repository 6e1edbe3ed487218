"""The function and the extensions run as Lambda runs them: an unprivileged user
(sbx_user1051, uid 993 / gid 990) with a read-only task root and /opt, and only /tmp
writable; so a permission bug (writing into the task root, reading a root-only file,
binding a privileged port, an extension only root may execute) fails here as on Lambda.
And an extension that crashes during init is an `Extension.Crash` in every mode."""
from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import tempfile
from pathlib import Path

import pytest

from lambda_sandbox import Sandbox, SandboxStartError
from lambda_sandbox.cli import parse_args
from lambda_sandbox.filesystem import namespaces_available

SANDBOX_UID, SANDBOX_GID = 993, 990
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox drops privileges only when it runs as root")
needs_namespace = pytest.mark.skipif(not namespaces_available(), reason="needs root and unshare -m")

PROBE_FUNCTION = """
import errno, getpass, json, os, socket

def _try(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return exc.strerror

def _write(path):
    with open(path, "w") as handle:
        handle.write("x")

def _read(path):
    with open(path) as handle:
        handle.read()

def _bind_80():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 80))

def _append_etc_hosts():
    os.close(os.open("/etc/hosts", os.O_WRONLY | os.O_APPEND))

def handler(event, context):
    task = os.environ["LAMBDA_TASK_ROOT"]
    with open("/proc/self/status") as handle:
        ids = {line.split(":")[0]: line.split()[1:] for line in handle if line.startswith(("Uid", "Gid", "Groups"))}
    try:
        user = getpass.getuser()
    except Exception as exc:
        user = type(exc).__name__
    return {"ids": ids, "user": user,
            "task_write": _try(lambda: _write(os.path.join(task, "new.txt"))),
            "opt_write": _try(lambda: _write(os.path.join(os.environ["OPT_DIR"], "new.txt"))),
            "secret": _try(lambda: _read(os.path.join(task, "secret.txt"))),
            "port_80": _try(_bind_80),
            "etc_hosts": _try(_append_etc_hosts),
            "tmp_write": _try(lambda: _write("/tmp/new.txt")),
            "extension": json.load(open("/tmp/extension-ids.json"))}
"""

ID_EXTENSION = f"""#!{sys.executable}
import http.client, json, os
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
def call(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(api)
    conn.request(method, path, json.dumps(body) if body is not None else None, headers or {{}})
    reply = conn.getresponse()
    reply.read()
    return reply
with open("/tmp/extension-ids.json", "w") as handle:
    json.dump({{"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups()}}, handle)
reply = call("POST", "/2020-01-01/extension/register", {{"events": ["INVOKE"]}}, {{"Lambda-Extension-Name": "ids"}})
ext_id = reply.getheader("Lambda-Extension-Identifier")
while True:
    call("GET", "/2020-01-01/extension/event/next", headers={{"Lambda-Extension-Identifier": ext_id}})
"""


def _probe_dirs(lambda_dirs):
    lambda_dirs.function(PROBE_FUNCTION)
    lambda_dirs.extension("ids", ID_EXTENSION)
    secret = lambda_dirs.task / "secret.txt"
    secret.write_text("root only")
    secret.chmod(0o600)  # as a zip built with restrictive modes lands in /var/task on Lambda


@as_root
@needs_namespace
def test_function_and_extensions_run_unprivileged_with_only_tmp_writable(lambda_dirs, sandbox_factory):
    _probe_dirs(lambda_dirs)
    box = sandbox_factory(lambda_dirs, env={"OPT_DIR": "/opt"}, echo=False)
    result = box.invoke({})
    assert result.status == 200 and not result.function_error, result.body
    reply = result.json()
    # THEN both run as uid 993 / gid 990 (real, effective, saved, filesystem), no supplementary groups
    assert reply["ids"] == {"Uid": [str(SANDBOX_UID)] * 4, "Gid": [str(SANDBOX_GID)] * 4, "Groups": []}
    assert reply["extension"] == {"uid": SANDBOX_UID, "euid": SANDBOX_UID, "gid": SANDBOX_GID, "groups": []}
    assert reply["user"] == "sbx_user1051"
    # AND what Lambda forbids fails as it does there
    assert reply["task_write"] == reply["opt_write"] == "Read-only file system"
    assert reply["secret"] == "Permission denied", "a root-only file in the task root is unreadable"
    assert reply["port_80"] == "Permission denied", "privileged ports need root"
    assert reply["etc_hosts"] == "Permission denied", "the rest of the filesystem is not writable"
    assert reply["tmp_write"] == "ok" and (box.tmp_dir / "new.txt").stat().st_uid == SANDBOX_UID


@as_root
@needs_namespace
def test_host_dirs_handed_to_the_function_are_writable_for_it(lambda_dirs, sandbox_factory, tmp_path):
    # GIVEN paths in a directory only root may enter (pytest's tmp_path), as tests hand
    # DEFER_SOCKET / DEFER_JOURNAL_DIR / TASK_LOG to the function and the extension
    tmp_path.chmod(0o700)
    secret = tmp_path / "secret.txt"
    secret.write_text("root only")
    secret.chmod(0o600)
    listener = socket.socket(socket.AF_UNIX)  # a socket only root may connect to, as a test's fake extension
    listener.bind(str(tmp_path / "channel.sock"))
    listener.listen()
    assert not stat.S_IMODE((tmp_path / "channel.sock").stat().st_mode) & 0o002
    lambda_dirs.function("""
        import os, socket

        def _try(action):
            try:
                return action()
            except OSError as exc:
                return exc.strerror

        def _write(path, text):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a") as handle:
                handle.write(text)
            return "ok"

        def _connect(path):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
            return "ok"

        def handler(event, context):
            return {"uid": os.getuid(), "socket": _try(lambda: _connect(os.environ["SOCKET"])),
                    "journal": _try(lambda: _write(os.path.join(os.environ["JOURNAL_DIR"], "entry"), "journal")),
                    "log": _try(lambda: _write(os.environ["TASK_LOG"], "logged")),
                    "later": _try(lambda: _write(os.path.join(os.environ["BASE"], "later", "x"), "later")),
                    "secret": _try(lambda: open(os.path.join(os.environ["BASE"], "secret.txt")).read())}
    """)
    env = {"TASK_LOG": str(tmp_path / "tasks.log"), "JOURNAL_DIR": str(tmp_path / "journal"), "BASE": str(tmp_path),
           "SOCKET": str(tmp_path / "channel.sock")}
    box = sandbox_factory(lambda_dirs, env=env, echo=False)
    # AND a directory the test makes there after the sandbox started
    (tmp_path / "later").mkdir()
    result = box.invoke({})
    assert result.status == 200 and not result.function_error, result.body
    # THEN it wrote where it was told, as uid 993, and the host reads it there; what it was
    # not handed stays root's
    assert result.json() == {"uid": SANDBOX_UID, "socket": "ok", "journal": "ok", "log": "ok", "later": "ok",
                             "secret": "Permission denied"}
    listener.close()
    assert (tmp_path / "tasks.log").read_text() == "logged"
    assert (tmp_path / "journal" / "entry").read_text() == "journal"
    assert (tmp_path / "journal").stat().st_uid == SANDBOX_UID
    assert (tmp_path / "later" / "x").read_text() == "later"


@as_root
@needs_namespace
def test_an_extension_only_root_may_execute_fails_to_launch(lambda_dirs, sandbox_factory):
    lambda_dirs.function("def handler(event, context):\n    return 'ok'\n")
    path = lambda_dirs.extension("rootonly", "#!/bin/sh\nexec sleep 60\n")
    path.chmod(0o744)  # executable by its owner (root) only
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    assert result.json() == {"errorType": "Extension.LaunchError",
                             "errorMessage": "rootonly: fork/exec /opt/extensions/rootonly: permission denied"}


@as_root
@needs_namespace
def test_opt_out_runs_them_as_root(lambda_dirs, sandbox_factory):
    _probe_dirs(lambda_dirs)
    box = sandbox_factory(lambda_dirs, env={"OPT_DIR": "/opt"}, unprivileged=False, echo=False)
    reply = box.invoke({}).json()
    assert reply["ids"]["Uid"] == ["0"] * 4 and reply["extension"]["uid"] == 0
    assert reply["secret"] == "ok" and reply["port_80"] == "ok"
    assert reply["task_write"] == "Read-only file system", "the mounts stay read-only"


@as_root
def test_without_a_namespace_unreachable_paths_are_a_start_error_when_required(lambda_dirs):
    # GIVEN a task root under pytest's tmp_path, which only root may enter (no mount namespace
    # here to give the processes another way in)
    lambda_dirs.function("def handler(event, context):\n    return 'ok'\n")
    Path(lambda_dirs.root).parent.chmod(0o700)
    box = Sandbox(lambda_dirs.opt, lambda_dirs.task, "app.handler", namespace=False, unprivileged=True, echo=False)
    with pytest.raises(SandboxStartError) as caught:
        box.start()
    message = str(caught.value)
    assert "uid 993" in message and str(Path(lambda_dirs.root).parent) in message, message
    box.stop()


@as_root
def test_without_a_namespace_unreachable_paths_keep_root_with_a_warning(lambda_dirs, sandbox_factory):
    lambda_dirs.function("import os\ndef handler(event, context):\n    return os.getuid()\n")
    Path(lambda_dirs.root).parent.chmod(0o700)
    box = sandbox_factory(lambda_dirs, namespace=False, echo=False)
    assert box.invoke({}).json() == 0
    warning = box.wait_for_log("WARNING: the function and extensions run as root", timeout=1)
    assert str(Path(lambda_dirs.root).parent) in warning.text


SHELL_BOOTSTRAP = """#!/bin/sh
api="$AWS_LAMBDA_RUNTIME_API"
while true; do
  headers="$(mktemp)"
  curl -s -D "$headers" -o /dev/null "http://$api/2018-06-01/runtime/invocation/next"
  rid="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | tr -d '\\r' | cut -d' ' -f2)"
  if touch "$LAMBDA_TASK_ROOT/new.txt" 2>/dev/null; then task=written; else task=refused; fi
  curl -s -o /dev/null -X POST -d "{\\"uid\\": $(id -u), \\"gid\\": $(id -g), \\"task\\": \\"$task\\"}" \\
    "http://$api/2018-06-01/runtime/invocation/$rid/response"
done
"""


@as_root
def test_without_a_namespace_they_start_as_the_user_where_every_path_is_reachable(monkeypatch):
    # GIVEN a task root anyone may enter, a runtime that needs no interpreter (a shell
    # bootstrap: the interpreter may lie where only root may go, as a pyenv under /root does)
    from lambda_sandbox.filesystem import Filesystem

    monkeypatch.setattr(Filesystem, "_needed", lambda self: [])
    root = Path(tempfile.mkdtemp(prefix="r3-reachable-", dir="/tmp"))
    try:
        root.chmod(0o755)
        (root / "task").mkdir()
        (root / "opt" / "extensions").mkdir(parents=True)
        (root / "task" / "bootstrap").write_text(SHELL_BOOTSTRAP)
        (root / "task" / "bootstrap").chmod(0o755)
        box = Sandbox(root / "opt", root / "task", "anything", runtime="provided", namespace=False,
                      unprivileged=True, echo=False).start()
        try:
            reply = box.invoke({}).json()
        finally:
            box.stop()
        # THEN it ran as uid 993, and the task root (at its host path here) refused its write
        assert reply == {"uid": SANDBOX_UID, "gid": SANDBOX_GID, "task": "refused"}
        assert not (root / "task" / "new.txt").exists()
    finally:
        shutil.rmtree(root)


@pytest.mark.parametrize("mode", ["on-demand", "managed-instances"])
@pytest.mark.parametrize("namespace", [None, False], ids=["namespace", "no-namespace"])
@pytest.mark.parametrize("unprivileged", [None, False], ids=["default-user", "as-root"])
@pytest.mark.parametrize("when", ["before-register", "after-register"])
def test_an_extension_exiting_during_init_is_an_extension_crash(lambda_dirs, sandbox_factory, mode, namespace,
                                                                 unprivileged, when):
    lambda_dirs.function("def handler(event, context):\n    return 'ok'\n")
    if when == "after-register":
        script = f"#!{sys.executable}\n" + (
            "import http.client, json, os, sys\n"
            "conn = http.client.HTTPConnection(os.environ['AWS_LAMBDA_RUNTIME_API'])\n"
            "conn.request('POST', '/2020-01-01/extension/register', json.dumps({'events': ['SHUTDOWN']}),\n"
            "             {'Lambda-Extension-Name': 'crasher'})\n"
            "assert conn.getresponse().status == 200\n"
            "sys.exit(1)\n")
    else:
        script = "#!/bin/sh\nexit 1\n"
    lambda_dirs.extension("crasher", script)
    box = sandbox_factory(lambda_dirs, mode=mode, namespace=namespace, unprivileged=unprivileged, echo=False)
    result = box.invoke({})
    assert result.status == 200 and result.function_error == "Unhandled"
    assert result.json()["errorType"] == "Extension.Crash", result.body
    line = box.wait_for_log("INIT_REPORT", timeout=5)
    assert "Status: error" in line.text and "Error Type: Extension.Crash" in line.text


def test_cli_opt_out():
    base = ["--opt", "o", "--task", "t", "--handler", "app.handler"]
    assert parse_args(base).as_root is False
    assert parse_args([*base, "--as-root"]).as_root is True

