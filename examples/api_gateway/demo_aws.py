"""The demo's local AWS: a moto server subprocess and the orders API's resources in it.

Each deferred side effect is made observable as a queue: the SNS topic is subscribed by a
queue (raw delivery), the EventBridge rule targets a queue, the FIFO queue is read directly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

REGION = "us-east-1"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Moto:
    """``moto_server`` on a free loopback port; ``stop()`` kills its whole process group."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkdtemp(prefix="defer-demo-moto-")) / "moto.log"
        self._proc: Optional[subprocess.Popen[bytes]] = None

    def start(self, timeout_s: float = 30.0) -> "Moto":
        exe = Path(sys.executable).with_name("moto_server")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        env = {**os.environ, **AWS_ENV}
        env.pop("AWS_ENDPOINT_URL", None)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                          start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto server did not start; see {self.log_path}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def client(service: str, endpoint_url: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@dataclass(frozen=True)
class Resources:
    """One run's targets (the function's env) and the queues that observe them."""

    topic_arn: str
    fulfilment_queue_url: str
    bus_name: str
    event_source: str
    dlq_url: str
    confirmations_queue_url: str  # subscribed to the topic
    events_queue_url: str  # target of the bus's rule
    changes_queue_url: str  # the orders table's change records
    invoices_queue_url: str  # archive_invoice's calls, for the invoices worker
    invoices_bucket: str

    def function_env(self) -> dict[str, str]:
        return {"ORDERS_TOPIC_ARN": self.topic_arn, "FULFILMENT_QUEUE_URL": self.fulfilment_queue_url,
                "EVENT_BUS_NAME": self.bus_name, "ORDERS_EVENT_SOURCE": self.event_source,
                "DEFER_DLQ_URL": self.dlq_url, "ORDER_CHANGES_QUEUE_URL": self.changes_queue_url,
                "INVOICES_QUEUE_URL": self.invoices_queue_url, "INVOICES_BUCKET": self.invoices_bucket}


def create_resources(endpoint_url: str, prefix: str) -> Resources:
    sqs, sns, events = (client(s, endpoint_url) for s in ("sqs", "sns", "events"))

    def queue(name: str, **attributes: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    dlq_url, _ = queue(f"{prefix}-dead-letters")
    fulfilment_url, _ = queue(f"{prefix}-fulfilment.fifo", FifoQueue="true")
    topic_arn = sns.create_topic(Name=f"{prefix}-orders")["TopicArn"]
    confirmations_url, confirmations_arn = queue(f"{prefix}-confirmations")
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=confirmations_arn,
                  Attributes={"RawMessageDelivery": "true"})
    bus = f"{prefix}-orders"
    events.create_event_bus(Name=bus)
    source = "shop.orders"
    events_url, events_arn = queue(f"{prefix}-order-events")
    events.put_rule(Name=f"{prefix}-order-created", EventBusName=bus, State="ENABLED",
                    EventPattern=json.dumps({"source": [source], "detail-type": ["OrderCreated"]}))
    events.put_targets(Rule=f"{prefix}-order-created", EventBusName=bus, Targets=[{"Id": "q", "Arn": events_arn}])
    changes_url, _ = queue(f"{prefix}-order-changes")
    invoices_url, _ = queue(f"{prefix}-invoices")
    bucket = f"{prefix}-invoices".lower()
    client("s3", endpoint_url).create_bucket(Bucket=bucket)
    return Resources(topic_arn, fulfilment_url, bus, source, dlq_url, confirmations_url, events_url, changes_url,
                     invoices_url, bucket)


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Whatever is in the queue now (deleted once read)."""
    got: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   MessageSystemAttributeNames=["SentTimestamp"]).get("Messages", [])
        if not msgs:
            return got
        got.extend(msgs)
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(msgs)])
