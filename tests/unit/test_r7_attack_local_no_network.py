"""A newcomer calls a @defer handler from a script, without capture(), a Lambda or a network.
Held: it returns at once and each item gets one ERROR line saying it was not delivered and why
(docs/testing.md). Found: without a region or credentials the line said "the endpoint could
not be reached", which sends the user after the network; it now names what boto3 lacked, and
that boto3 reads AWS_DEFAULT_REGION, not the AWS_REGION a user sets as Lambda does (the lean
transport of SQS, SNS and EventBridge reads both, AWS_REGION first)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = """
from handler_lib import defer
@defer
def handler(event, context):
    defer.sqs("https://sqs.us-east-1.amazonaws.com/123456789012/q", {"a": 1})
    defer.sns("arn:aws:sns:us-east-1:123456789012:t", "hi")
    return {"ok": True}
print(handler({}, None))
"""


def run(tmp_path: Path, **env: str) -> tuple[str, float]:
    (tmp_path / "app.py").write_text(APP)
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "DEFER_")) and k not in ("HOME", "PYTHONPATH")}
    environ.update(HOME=str(tmp_path), PYTHONPATH=str(REPO), DEFER_SOCKET=str(tmp_path / "none.sock"),
                   AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                   AWS_EC2_METADATA_DISABLED="true", **env)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-W", "ignore::RuntimeWarning", str(tmp_path / "app.py")],
                          capture_output=True, text=True, env=environ, timeout=60, cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert "{'ok': True}" in done.stdout
    return done.stdout + done.stderr, elapsed


def not_delivered(out: str) -> list[str]:
    return [line for line in out.splitlines() if "not delivered" in line]


KEYS = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}


def test_a_closed_port_fails_fast_with_one_line_per_item(tmp_path: Path) -> None:
    out, elapsed = run(tmp_path, AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL="http://127.0.0.1:1", **KEYS)
    lines = not_delivered(out)
    assert len(lines) == 2 and elapsed < 20, out
    assert all("endpoint could not be reached" in line and "capture()" in line for line in lines)


def test_missing_credentials_are_named_not_called_an_unreachable_endpoint(tmp_path: Path) -> None:
    out, elapsed = run(tmp_path, AWS_DEFAULT_REGION="us-east-1")
    lines = not_delivered(out)
    assert len(lines) == 2 and elapsed < 20, out
    assert all("no AWS credentials were found" in line for line in lines), out
    assert not any("endpoint could not be reached" in line for line in lines), out


def test_aws_region_alone_is_named_as_the_cause(tmp_path: Path) -> None:
    # botocore's clients (DEFER_TRANSPORT=botocore; Lambda, Step Functions and S3 always)
    out, elapsed = run(tmp_path, AWS_REGION="us-east-1", DEFER_TRANSPORT="botocore",
                       **KEYS)  # as Lambda sets it; boto3 wants AWS_DEFAULT_REGION
    lines = not_delivered(out)
    assert len(lines) == 2 and elapsed < 20, out
    assert all("no AWS region is set" in line and "AWS_DEFAULT_REGION" in line for line in lines), out


def test_aws_region_alone_is_the_lean_transports_region(tmp_path: Path) -> None:
    """The lean transport (SQS, SNS, EventBridge) reads AWS_REGION, then AWS_DEFAULT_REGION:
    here it goes for the region's endpoint, and says it could not be reached."""
    out, elapsed = run(tmp_path, AWS_REGION="us-east-1", **KEYS)
    lines = not_delivered(out)
    assert len(lines) == 2 and elapsed < 20, out
    assert all("endpoint could not be reached" in line for line in lines), out
    assert 'endpoint URL: "https://sqs.us-east-1.amazonaws.com/"' in lines[0] + lines[1], out
