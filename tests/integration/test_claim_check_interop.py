"""The claim check against code nobody here wrote: AWS's amazon-sqs-extended-client (PyPI)
reads back, byte for byte, a 600 KB SQS message and a 300 KB SNS message (raw delivery to
an SQS queue) that a handler in the sandbox deferred through the built layer's extension;
and handler_lib.consumer reads a pointer that AWS's client wrote. Moto's S3, SQS and SNS
over real HTTP. AWS's client patches boto3's Session class when imported, so it runs in a
process of its own."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from handler_lib import consumer
from handler_lib.engine.sinks.claim_check import KEY_PREFIX
from lambda_sandbox import Sandbox
from tests.support.moto_server import client, drain_messages

FUNCTION = Path(__file__).parent / "functions" / "large"
REPO_ROOT = Path(__file__).resolve().parents[2]

# Receives `expected` messages from a queue with AWS's extended client and prints, per
# message, its defer_id, the size and SHA-256 of the body it read and whether it still saw
# the pointer's attribute (the client takes it away once it has fetched the payload).
EXTENDED_READER = r"""
import hashlib, json, sys, time
import boto3
import sqs_extended_client  # noqa: F401 - patches boto3's Session with the extended client

url, expected = sys.argv[1], int(sys.argv[2])
sqs = boto3.session.Session().client("sqs")
got, deadline = [], time.monotonic() + 20
while len(got) < expected and time.monotonic() < deadline:
    reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                MessageAttributeNames=["All"])
    for m in reply.get("Messages", []):
        attrs = m.get("MessageAttributes", {})
        body = m["Body"].encode()
        got.append({"defer_id": attrs["defer_id"]["StringValue"], "size": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(), "pointer_left": "ExtendedPayloadSize" in attrs})
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
print(json.dumps(got))
"""

# Sends one message with AWS's extended client, every payload through S3.
EXTENDED_WRITER = r"""
import sys
import boto3
import sqs_extended_client  # noqa: F401

url, bucket, body = sys.argv[1], sys.argv[2], sys.stdin.read()
sqs = boto3.session.Session().client("sqs")
sqs.large_payload_support = bucket
sqs.always_through_s3 = True
sqs.send_message(QueueUrl=url, MessageBody=body,
                 MessageAttributes={"defer_id": {"DataType": "String", "StringValue": "from-aws-client"}})
"""


def load_payload():
    spec = importlib.util.spec_from_file_location("large_app", FUNCTION / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.payload


def run(script: str, *args: str, stdin: str = "") -> str:
    done = subprocess.run([sys.executable, "-c", script, *args], input=stdin, capture_output=True, text=True,
                          timeout=60, cwd=REPO_ROOT, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_awss_extended_client_reads_back_what_a_deferring_handler_sent(built_layer, aws_resources, moto_endpoint,
                                                                       tmp_path):
    res = aws_resources()
    bucket = f"payloads-{uuid.uuid4().hex[:12]}"
    s3 = client("s3", moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    env = {**res.env(), "AWS_ENDPOINT_URL": moto_endpoint, "DEFER_SOCKET": str(tmp_path / "defer.sock"),
           "DEFER_JOURNAL_DIR": str(tmp_path / "journal"), "DEFER_LARGE_PAYLOAD_BUCKET": bucket,
           "DEFER_LARGE_PAYLOAD_THRESHOLD": "262144"}  # the extended clients' own threshold
    box = Sandbox(built_layer, FUNCTION, "app.handler", timeout_s=10, env=env).start()
    try:
        result = box.invoke({"tag": "interop", "sqs_bytes": 600_000, "sns_bytes": 300_000})
        ids = result.json()
        box.wait_for_report(result.request_id)
    finally:
        box.stop()

    payload = load_payload()
    for url, kind, size in ((res.queue_url, "sqs", 600_000), (res.topic_queue_url, "sns", 300_000)):
        (read,) = json.loads(run(EXTENDED_READER, url, "1"))
        original = payload(size, f"interop-{kind}").encode()
        assert len(original) == size
        assert read == {"defer_id": ids[kind], "size": size, "sha256": hashlib.sha256(original).hexdigest(),
                        "pointer_left": False}
    stored = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert stored == sorted(KEY_PREFIX + ids[kind] for kind in ("sqs", "sns"))  # both went by S3


def test_the_consumer_helper_reads_a_pointer_awss_extended_client_wrote(aws_resources, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setattr(consumer, "_default_s3", None)  # made again, from this test's environment
    res = aws_resources()
    bucket = f"payloads-{uuid.uuid4().hex[:12]}"
    client("s3", moto_endpoint).create_bucket(Bucket=bucket)
    body = json.dumps({"order": "o-1", "lines": ["ü" * 1000] * 200})
    run(EXTENDED_WRITER, res.queue_url, bucket, stdin=body)
    (message,) = drain_messages(res.queue_url, 1, timeout=5)
    assert json.loads(message["Body"])[1]["s3BucketName"] == bucket  # a pointer indeed
    found = consumer.record(message)
    assert found.pointer is not None and found.pointer.bucket == bucket and found.pointer.size == len(body.encode())
    assert (found.defer_id, found.body) == ("from-aws-client", body)
    assert "ExtendedPayloadSize" not in found.attributes
