"""`make package`: Serverless Framework v3 output (layer zip, function zip, CloudFormation)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import ARCHES, PYTHONS, REPO, run

pytestmark = pytest.mark.timeout(900)

TEMPLATE = "cloudformation-template-update-stack.json"
# The only AWS resources the function may touch, per action.
EXPECTED_GRANTS = {
    "sqs:SendMessage": {"OrdersQueue", "FulfilmentQueue", "DeferDeadLetterQueue", "InvoicesQueue"},
    "sns:Publish": {"OrdersTopic"},
    "events:PutEvents": {"OrdersEventBus"},
    "s3:PutObject": {"InvoicesBucket/invoices/*"},
    # the invoices function's event source mapping (added by the framework for its sqs event)
    "sqs:ReceiveMessage": {"InvoicesQueue"},
    "sqs:DeleteMessage": {"InvoicesQueue"},
    "sqs:GetQueueAttributes": {"InvoicesQueue"},
}


def template(folder: Path) -> dict[str, Any]:
    return json.loads((folder / TEMPLATE).read_text())


def function_zip(folder: Path) -> Path:
    """The function artifact serverless will upload (package.artifact in serverless.yml)."""
    state = json.loads((folder / "serverless-state.json").read_text())
    artifact = state["service"]["functions"]["api"]["package"]["artifact"]
    path = Path(artifact) if os.path.isabs(artifact) else REPO / artifact
    assert path.is_file(), path
    return path


def test_layer_zip(sls_package: Path) -> None:
    with zipfile.ZipFile(sls_package / "deferRunner.zip") as zf:
        names = set(zf.namelist())
        launcher = zf.getinfo("extensions/defer-runner")
        assert (launcher.external_attr >> 16) & 0o777 == 0o755, "launcher lost its exec bit"
        assert b"\r" not in zf.read("extensions/defer-runner")
        assert zf.read("extensions/defer-runner").startswith(b"#!/bin/bash\n")
        # The shipped bytecode travels (unchecked hash: flags 1), next to its source; nothing else.
        pycs = [n for n in names if n.endswith(".pyc")]
        assert f"python/handler_lib/__pycache__/__init__.{sys.implementation.cache_tag}.pyc" in pycs
        for n in pycs:
            folder, _, file = n.rpartition("/__pycache__/")
            assert f"{folder}/{file.split('.')[0]}.py" in names, n
            assert int.from_bytes(zf.read(n)[4:8], "little") == 1, n
    assert "python/handler_lib/__init__.py" in names
    assert "defer-runner/bootstrap.py" in names
    assert "defer-runner/_defer_runner/__main__.py" in names
    assert "defer-runner/deps/boto3/__init__.py" in names
    for base in ("python/msgpack", "defer-runner/deps/msgpack"):
        for py in PYTHONS:
            for arch in ARCHES:
                so = f"{base}/_cmsgpack.cpython-{py.replace('.', '')}-{arch}-linux-gnu.so"
                assert so in names, so


def test_function_zip(sls_package: Path) -> None:
    with zipfile.ZipFile(function_zip(sls_package)) as zf:
        names = set(zf.namelist())
    assert {"app.py", "orders.py", "tasks.py"} <= names, "example files at the zip root"
    assert "aws_lambda_powertools/__init__.py" in names
    assert "sqlalchemy/__init__.py" in names
    for bad in ("node_modules/", ".venv/", "tests/", "handler_lib/", "extension/", ".serverless/"):
        assert not [n for n in names if n.startswith(bad)], bad
    assert not [n for n in names if "__pycache__" in n]
    # handler_lib comes from the layer; a bundled copy would shadow it (/var/task is first).
    natives = [n for n in names if n.endswith(".so")]
    for n in natives:
        assert re.search(r"\.cpython-312-(x86_64|aarch64)-linux-gnu\.so$", n), n
    tags = {re.sub(r".*-(x86_64|aarch64)-linux-gnu\.so$", r"\1", n) for n in natives}
    assert not natives or tags == {"x86_64", "aarch64"}


def test_template_passes_cfn_lint(sls_package: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    if not cfn_lint.exists():
        pytest.fail("cfn-lint missing from the venv (pip install cfn-lint)")
    # W3005: Serverless' generated HttpApi routes carry a redundant DependsOn.
    proc = subprocess.run([str(cfn_lint), "--ignore-checks", "W3005", "--",
                           str(sls_package / TEMPLATE)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _statements(t: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for res in t["Resources"].values():
        if res["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            props = res["Properties"]
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
            if "PolicyDocument" in props:
                docs.append(props["PolicyDocument"])
            for doc in docs:
                out += doc["Statement"]
    return out


def _listify(x: Any) -> list[Any]:
    return x if isinstance(x, list) else [x]


def _logical_id(ref: Any) -> str | None:
    if isinstance(ref, dict) and set(ref) == {"Ref"}:
        return ref["Ref"]
    if isinstance(ref, dict) and set(ref) == {"Fn::GetAtt"} and ref["Fn::GetAtt"][1] == "Arn":
        return ref["Fn::GetAtt"][0]
    if isinstance(ref, dict) and set(ref) == {"Fn::Join"} and ref["Fn::Join"][0] == "":
        # objects under a prefix of a bucket defined here: "<logical id><prefix>"
        head, *rest = ref["Fn::Join"][1]
        logical = _logical_id(head)
        if logical is not None and all(isinstance(part, str) for part in rest):
            return logical + "".join(rest)
    return None


def test_iam_grants_only_the_defined_resources(sls_package: Path) -> None:
    t = template(sls_package)
    statements = _statements(t)
    assert statements
    grants: dict[str, set[str]] = {}
    for st in statements:
        assert st["Effect"] == "Allow"
        actions = _listify(st["Action"])
        resources = _listify(st["Resource"])
        assert "*" not in actions and "*" not in resources, st
        if all(a.startswith("logs:") for a in actions):
            # The framework's own log statements, scoped to this service's log groups.
            for r in resources:
                assert "log-group:/aws/lambda/lambda-defer-local" in r["Fn::Sub"], r
            continue
        for a in actions:
            for r in resources:
                logical = _logical_id(r)
                assert logical is not None and logical.split("/")[0] in t["Resources"], \
                    f"{a} on something not defined here: {r}"
                grants.setdefault(a, set()).add(logical)
    assert grants == EXPECTED_GRANTS


def test_function_and_layer_resources(sls_package: Path) -> None:
    res = template(sls_package)["Resources"]
    fn = res["ApiLambdaFunction"]["Properties"]
    assert fn["Handler"] == "app.handler"
    assert fn["Runtime"] == "python3.12"
    assert fn["Timeout"] == 10
    assert fn["Architectures"] == ["x86_64"]
    assert fn["Layers"] == [{"Ref": "DeferRunnerLambdaLayer"}]
    env = fn["Environment"]["Variables"]
    assert env["DEFER_DLQ_URL"] == {"Ref": "DeferDeadLetterQueue"}
    assert env["DEFER_MAX_ATTEMPTS"] == "5"
    assert env["DEFER_DEADLINE_MARGIN_MS"] == "300"
    assert env["ORDERS_TOPIC_ARN"] == {"Ref": "OrdersTopic"}
    assert env["FULFILMENT_QUEUE_URL"] == {"Ref": "FulfilmentQueue"}
    assert env["EVENT_BUS_NAME"] == {"Ref": "OrdersEventBus"}

    layer = res["DeferRunnerLambdaLayer"]["Properties"]
    assert layer["CompatibleRuntimes"] == [f"python{p}" for p in PYTHONS]
    assert layer["CompatibleArchitectures"] == ["x86_64", "arm64"]

    fifo = res["FulfilmentQueue"]["Properties"]
    assert fifo["FifoQueue"] is True
    assert fifo["ContentBasedDeduplication"] is False
    assert fifo["QueueName"].endswith(".fifo")
    assert res["OrdersTopic"]["Type"] == "AWS::SNS::Topic"
    assert res["OrdersEventBus"]["Type"] == "AWS::Events::EventBus"
    assert res["DeferDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"

    routes = {r["Properties"]["RouteKey"] for r in res.values()
              if r["Type"] == "AWS::ApiGatewayV2::Route"}
    assert routes == {"POST /orders", "GET /orders/{id}"}


def test_fastapi_example_function(sls_package: Path) -> None:
    """The second example: its own zip (FastAPI bundled for both architectures) and a function URL."""
    res = template(sls_package)["Resources"]
    fn = res["FastapiLambdaFunction"]["Properties"]
    assert (fn["Handler"], fn["Runtime"]) == ("app.handler", "python3.12")
    assert fn["Layers"] == [{"Ref": "DeferRunnerLambdaLayer"}]
    assert fn["Environment"]["Variables"]["SHIPPING_QUEUE_URL"] == {"Ref": "OrdersQueue"}
    assert res["FastapiLambdaFunctionUrl"]["Properties"]["AuthType"] == "NONE"
    state = json.loads((sls_package / "serverless-state.json").read_text())
    artifact = state["service"]["functions"]["fastapi"]["package"]["artifact"]
    with zipfile.ZipFile(Path(artifact) if os.path.isabs(artifact) else REPO / artifact) as zf:
        names = set(zf.namelist())
    assert {"app.py", "fastapi/__init__.py", "mangum/__init__.py"} <= names
    cores = {n.rsplit("/", 1)[-1] for n in names if n.startswith("pydantic_core/_pydantic_core")}
    assert any("x86_64" in c for c in cores) and any("aarch64" in c for c in cores), cores


def test_the_invoices_worker_runs_the_apis_queued_task(sls_package: Path) -> None:
    """The example's task on a queue: lambda-defer's worker as the handler, the same zip, fed by
    InvoicesQueue with partial batch failures, the queue redriving to its own DLQ."""
    res = template(sls_package)["Resources"]
    fn = res["InvoicesLambdaFunction"]["Properties"]
    assert (fn["Handler"], fn["Runtime"], fn["Timeout"]) == ("handler_lib.worker.handler", "python3.12", 30)
    assert fn["Layers"] == [{"Ref": "DeferRunnerLambdaLayer"}]
    assert fn["Environment"]["Variables"]["INVOICES_BUCKET"] == {"Ref": "InvoicesBucket"}
    api = res["ApiLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert api["INVOICES_QUEUE_URL"] == {"Ref": "InvoicesQueue"}
    (mapping,) = [r["Properties"] for r in res.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["InvoicesQueue", "Arn"]}
    assert mapping["FunctionName"] == {"Fn::GetAtt": ["InvoicesLambdaFunction", "Arn"]}
    assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (10, ["ReportBatchItemFailures"])
    queue = res["InvoicesQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * fn["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["InvoicesDeadLetterQueue", "Arn"]}


def test_prod_stage_params(sls_package: Path, tmp_path: Path) -> None:
    """Per-stage params: prod is arm64 with more memory and attempts; still no AWS."""
    out = tmp_path / "sls-prod"
    env = {**os.environ, "SLS_PACKAGE_DIR": str(out), "PY": sys.executable}
    run(["scripts/package.sh", "prod"], env=env)
    res = template(out)["Resources"]
    fn = res["ApiLambdaFunction"]["Properties"]
    assert fn["Architectures"] == ["arm64"]
    assert fn["MemorySize"] == 512
    assert fn["Environment"]["Variables"]["DEFER_MAX_ATTEMPTS"] == "8"
    assert res["ApiLogGroup"]["Properties"]["RetentionInDays"] == 90
    assert res["DeferRunnerLambdaLayer"]["Properties"]["LayerName"] == "lambda-defer-prod-defer-runner"


def test_packaged_by_the_maintained_v3_line(sls_package: Path) -> None:
    """osls, the community-maintained Serverless Framework v3 line, does `make package`
    (serverless@3 is unmaintained, v4 needs an account); serverless.yml stays a v3 file."""
    pins = json.loads((REPO / "package.json").read_text())["devDependencies"]
    assert "serverless" not in pins and pins["osls"].startswith("3.")
    assert run(["node_modules/.bin/serverless", "--version"]).stdout.startswith("osls version: 3.")
    assert "frameworkVersion: '3'" in (REPO / "serverless.yml").read_text()
