"""template.yaml, the AWS SAM way to deploy the layer and the example: valid for cfn-lint and
for the SAM translator (what `sam deploy` runs), with the same grants as serverless.yml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from .conftest import REPO
from .test_serverless import EXPECTED_GRANTS

TEMPLATE = REPO / "template.yaml"


class NoManagedPolicies:
    """The translator's IAM lookup of managed policy names: the template names none."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    template = yaml_parse(TEMPLATE.read_text())
    # What `sam package` does: upload the local artifacts (built by make layer / make package)
    # and point the template at them.
    layer = template["Resources"]["DeferRunnerLayer"]["Properties"]
    layer["ContentUri"] = "s3://artifacts/defer-runner-layer.zip"
    for name in ("ApiFunction", "InvoicesFunction"):
        function = template["Resources"][name]["Properties"]
        assert (layer["ContentUri"], function["CodeUri"]) == ("s3://artifacts/defer-runner-layer.zip",
                                                             "dist/example-api.zip")
        function["CodeUri"] = "s3://artifacts/example-api.zip"
    fastapi = template["Resources"]["FastapiFunction"]["Properties"]
    assert fastapi["CodeUri"] == "examples/fastapi"  # sam build installs its requirements.txt
    fastapi["CodeUri"] = "s3://artifacts/example-fastapi.zip"
    region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region or "eu-west-1"
    try:
        return transform(template, {}, NoManagedPolicies())  # type: ignore[arg-type]
    finally:
        if region is None:
            del os.environ["AWS_DEFAULT_REGION"]


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    out = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_function_runs_with_the_layer_on_every_supported_runtime(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    (layer_id,) = [k for k, v in resources.items() if v["Type"] == "AWS::Lambda::LayerVersion"]
    layer = resources[layer_id]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.10", "python3.11", "python3.12", "python3.13"]
    assert layer["CompatibleArchitectures"] == ["x86_64", "arm64"]
    function = resources["ApiFunction"]["Properties"]
    assert function["Layers"] == [{"Ref": layer_id}]
    assert function["Handler"] == "app.handler" and function["Runtime"] == {"Ref": "PythonRuntime"}
    assert translated["Parameters"]["PythonRuntime"]["Default"] == "python3.12"
    fastapi = resources["FastapiFunction"]["Properties"]
    assert fastapi["Layers"] == [{"Ref": layer_id}] and fastapi["Runtime"] == {"Ref": "PythonRuntime"}
    assert {"DEFER_DLQ_URL", "DEFER_MAX_ATTEMPTS", "DEFER_DEADLINE_MARGIN_MS"} <= set(
        function["Environment"]["Variables"])
    assert translated["Outputs"]["DeferRunnerLayerArn"]["Value"] == {"Ref": layer_id}


def test_the_functions_may_touch_only_their_targets(translated: dict[str, Any]) -> None:
    """The API's, the FastAPI example's and the invoices worker's roles together grant what
    serverless.yml's one role does (the FastAPI example only sends to the orders queue); the worker's queue polling comes, as SAM gives every SQS event source, from AWS's
    managed AWSLambdaSQSQueueExecutionRole."""
    grants: dict[str, set[str]] = {}
    for role in ("ApiFunctionRole", "InvoicesFunctionRole", "FastapiFunctionRole"):
        for policy in translated["Resources"][role]["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    grants.setdefault(action.split("*")[0], set()).update(_resource_names(statement["Resource"]))
    polling = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    assert grants == {action: names for action, names in EXPECTED_GRANTS.items() if action not in polling}
    fastapi_grants = [statement for policy in translated["Resources"]["FastapiFunctionRole"]["Properties"]["Policies"]
                      for statement in policy["PolicyDocument"]["Statement"]]
    assert [(s["Action"], _resource_names(s["Resource"])) for s in fastapi_grants] == [
        (["sqs:SendMessage*"], {"OrdersQueue"})]
    managed = translated["Resources"]["InvoicesFunctionRole"]["Properties"]["ManagedPolicyArns"]
    assert sorted(managed) == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                               "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"]


def test_the_invoices_worker_is_fed_by_its_queue(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    function = resources["InvoicesFunction"]["Properties"]
    assert (function["Handler"], function["Timeout"]) == ("handler_lib.worker.handler", 30)
    (mapping,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["InvoicesQueue", "Arn"]}
    assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (10, ["ReportBatchItemFailures"])


def _resource_names(resource: Any) -> set[str]:
    """The logical ids a policy resource refers to (Ref / GetAtt, inside Fn::Sub too); a
    name with a path (``Bucket/prefix/*``) when the resource is under that path of it."""
    text = repr(resource)
    found = set()
    for name in (n for names in EXPECTED_GRANTS.values() for n in names):
        logical, _, path = name.partition("/")
        if (f"'{logical}" in text or f"{logical}." in text) and (not path or f"/{path}" in text):
            found.add(name)
    return found
