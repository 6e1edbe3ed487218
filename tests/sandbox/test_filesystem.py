"""The environment's filesystem as Lambda lays it out: a private /tmp per environment that
survives resets, the layer at /opt, a read-only task root, `sandbox.localdomain`
resolvable; and, without a mount namespace, the documented fallback."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from lambda_sandbox.filesystem import shared_dirs, namespaces_available

needs_namespace = pytest.mark.skipif(not namespaces_available(), reason="needs root and unshare -m")

TMP_FUNCTION = """
import os

def handler(event, context):
    if event.get("write"):
        with open("/tmp/" + event["write"], "w") as handle:
            handle.write(event["write"])
    if event.get("sleep"):
        import time
        time.sleep(event["sleep"])
    # Files only: folders shared from the host's /tmp (the interpreter's, when the checkout
    # lives there) appear as mount points.
    return sorted(f for f in os.listdir("/tmp") if os.path.isfile("/tmp/" + f))
"""

# An extension in the aws-samples style: a launcher that hard-codes /opt, a listener bound
# on sandbox.localdomain, and what it saw written to /tmp for the function to read.
HARDCODED_LAUNCHER = "#!/bin/sh\nexec python3 /opt/hardcoded/extension.py\n"
HARDCODED_EXTENSION = """
import http.client, json, os, socket

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
def call(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(api)
    conn.request(method, path, json.dumps(body) if body is not None else None, headers or {})
    reply = conn.getresponse()
    return reply.status, dict(reply.getheaders()), reply.read()

status, headers, _ = call("POST", "/2020-01-01/extension/register", {"events": ["INVOKE"]},
                          {"Lambda-Extension-Name": "hardcoded"})
ext_id = headers["Lambda-Extension-Identifier"]
address = socket.gethostbyname("sandbox.localdomain")
listener = socket.socket()
listener.bind(("sandbox.localdomain", 0))
with open("/tmp/hardcoded.json", "w") as handle:
    json.dump({"registered": status, "address": address, "cwd": os.getcwd(),
               "config": open("/opt/hardcoded/config.txt").read()}, handle)
while True:
    call("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ext_id})
"""
LAYOUT_FUNCTION = """
import json, os

def _write(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        return "written"
    except OSError as exc:
        return exc.strerror

def handler(event, context):
    return {"extension": json.load(open("/tmp/hardcoded.json")), "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "cwd": os.getcwd(), "here": os.path.dirname(__file__),
            "task": _write("/var/task/new.txt"), "opt": _write("/opt/new.txt"), "tmp": _write("/tmp/new.txt")}
"""


@needs_namespace
def test_each_environment_has_its_own_tmp_that_survives_resets(lambda_dirs, sandbox_factory):
    lambda_dirs.function(TMP_FUNCTION)
    first = sandbox_factory(lambda_dirs.opt, lambda_dirs.task, timeout_s=1, echo=False)
    second = sandbox_factory(lambda_dirs.opt, lambda_dirs.task, timeout_s=1, echo=False)
    # GIVEN a file each environment wrote to /tmp
    assert "a" in first.invoke({"write": "a"}).json()
    assert second.invoke({"write": "b"}).json() == ["b"], "the second environment sees none of the first's files"
    assert (first.tmp_dir / "a").read_text() == "a" and not (first.tmp_dir / "b").exists()
    # WHEN the first times out (a reset: every process killed, re-init on the next invoke)
    timed_out = first.invoke({"sleep": 3})
    assert first.wait_for_report(timed_out.request_id).status == "timeout"
    # THEN its /tmp is still there, and only its own
    assert first.invoke({}).json() == ["a"]
    # AND it is removed with the sandbox
    tmp = first.tmp_dir
    first.stop()
    assert not tmp.exists()


@needs_namespace
def test_layer_at_opt_task_root_read_only_and_sandbox_localdomain(lambda_dirs, sandbox_factory):
    lambda_dirs.function(LAYOUT_FUNCTION)
    lambda_dirs.extension("hardcoded", HARDCODED_LAUNCHER)
    (lambda_dirs.opt / "hardcoded").mkdir()
    (lambda_dirs.opt / "hardcoded" / "extension.py").write_text(HARDCODED_EXTENSION)
    (lambda_dirs.opt / "hardcoded" / "config.txt").write_text("from /opt")
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    assert result.status == 200 and not result.function_error, result.body
    reply = result.json()
    assert reply["extension"] == {"registered": 200, "address": "127.0.0.1", "cwd": "/opt", "config": "from /opt"}
    assert reply["task_root"] == reply["cwd"] == reply["here"] == "/var/task"
    assert reply["task"] == reply["opt"] == "Read-only file system"
    assert reply["tmp"] == "written" and (box.tmp_dir / "new.txt").exists()
    assert not (lambda_dirs.task / "new.txt").exists() and not (lambda_dirs.opt / "new.txt").exists()


@needs_namespace
def test_tmp_paths_handed_in_env_stay_visible(lambda_dirs, sandbox_factory, tmp_path):
    # GIVEN a host path under /tmp handed to the function (as tests hand it a log file)
    lambda_dirs.function("""
        import os

        def handler(event, context):
            with open(os.environ["OUT_FILE"], "w") as handle:
                handle.write("seen by the host")
            with open("/tmp/" + event["name"], "w") as handle:
                handle.write("kept in the environment")
            return {}
    """)
    out = tmp_path / "out" / "result.txt"
    out.parent.mkdir()
    box = sandbox_factory(lambda_dirs, env={"OUT_FILE": str(out)}, echo=False)
    name = f"private-{uuid.uuid4()}.txt"
    assert box.invoke({"name": name}).status == 200
    # THEN the host reads it where it said, while the rest of /tmp stays private
    assert out.read_text() == "seen by the host"
    assert (box.tmp_dir / name).exists() and not (Path("/tmp") / name).exists()


def test_without_a_namespace_tmpdir_points_at_the_private_dir(lambda_dirs, sandbox_factory):
    lambda_dirs.function("""
        import os, tempfile

        def handler(event, context):
            return {"tmpdir": tempfile.gettempdir(), "root": os.environ["LAMBDA_TASK_ROOT"]}
    """)
    box = sandbox_factory(lambda_dirs, namespace=False, echo=False)
    reply = box.invoke({}).json()
    assert reply == {"tmpdir": str(box.tmp_dir), "root": str(lambda_dirs.task.resolve())}
    warning = box.wait_for_log("WARNING: no private mount namespace", timeout=1)
    assert "/tmp is not private" in warning.text


def testshared_dirs_are_the_existing_tmp_dirs_named_in_values(tmp_path):
    (tmp_path / "db").mkdir()
    assert str(tmp_path).startswith("/tmp/")
    assert shared_dirs([f"sqlite:///{tmp_path}/db/orders.db"], []) == [tmp_path / "db"]
    assert shared_dirs([f"{tmp_path}/not/yet/there.sock"], []) == [tmp_path]
    assert shared_dirs([f"{tmp_path}/db/x", f"{tmp_path}/y"], []) == [tmp_path], "nested ones are covered"
    assert shared_dirs(["/tmp", "/tmp/", "http://host:80/tmp/x", "/var/tmp/x"], []) == []


def test_symlinks_in_the_layer_keep_their_targets_under_tmp_visible(tmp_path):
    """A layer assembled from links (as tests build one from dist/layer) still resolves inside
    the private /tmp when the linked folders live under the host's /tmp."""
    from lambda_sandbox.filesystem import Filesystem

    target = tmp_path / "real-python"
    (target / "pkg").mkdir(parents=True)
    layer = tmp_path / "layer"
    (layer / "extensions").mkdir(parents=True)
    (layer / "python").symlink_to(target)
    fs = Filesystem(layer, tmp_path, env_values=[])
    try:
        assert any(target == shared or shared in target.parents for shared in fs.shared), fs.shared
    finally:
        fs.remove()
