"""moto in server mode, reached over real HTTP, plus resource factories and queue helpers.

Why a server (not `mock_aws`): the extension and RIE run in other processes, so the only
thing they can share with the test is an HTTP endpoint (`AWS_ENDPOINT_URL`). moto routes
SNS -> subscribed SQS queues and EventBridge rules -> SQS targets inside its own process,
so delivery is checked simply by receiving from a queue.

Default mode is a `moto_server` subprocess (isolated from the test process's GIL,
warnings-as-errors filter and pytest-timeout signals); `DEFER_TEST_MOTO=thread` selects
`moto.server.ThreadedMotoServer` in-process instead.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .waiting import die_with_parent, free_port, port_open, wait_until

__all__ = [
    "MotoServer",
    "AwsResources",
    "TEST_ENV",
    "REAL_AWS_VARS",
    "aws_env_for",
    "create_resources",
    "drain_queue",
    "drain_messages",
    "client",
]

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account

#: Fixed part of the test AWS environment (the endpoint is added per server).
TEST_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}

#: Variables that could make boto3 reach real AWS or use real credentials; removed for tests.
REAL_AWS_VARS: tuple[str, ...] = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CA_BUNDLE",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


def aws_env_for(endpoint_url: str) -> dict[str, str]:
    """The env vars a process needs to talk to `endpoint_url` with dummy credentials."""
    env = dict(TEST_ENV)
    env["AWS_ENDPOINT_URL"] = endpoint_url
    # Config/credential files on this machine must never be read by tests.
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


class MotoServer:
    """A moto server on 127.0.0.1 at a free port. Use as a context manager or start()/stop()."""

    def __init__(self, mode: str | None = None, host: str = "127.0.0.1", port: int | None = None,
                 log_dir: str | None = None) -> None:
        self.mode = mode or os.environ.get("DEFER_TEST_MOTO", "process")
        if self.mode not in ("process", "thread"):
            raise ValueError(f"unknown moto mode {self.mode!r}")
        self.host = host
        self.port = port or 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._threaded: Any = None
        self._log_dir = log_dir
        self.log_path: Path | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> "MotoServer":
        """Start and wait (bounded) until moto answers HTTP."""
        if self.mode == "thread":
            from moto.server import ThreadedMotoServer

            self._threaded = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
            self._threaded.start()
            self.port = self._threaded.get_host_and_port()[1]
        else:
            self._start_process(timeout)
        wait_until(self._answers, timeout, interval=0.05,
                   message=lambda: f"moto did not answer at {self.endpoint_url}; log: {self.log()}")
        return self

    def _start_process(self, timeout: float) -> None:
        log_dir = Path(self._log_dir or tempfile.mkdtemp(prefix="moto-"))
        self.log_path = log_dir / "moto_server.log"
        exe = Path(sys.executable).with_name("moto_server")
        cmd_base = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        env = {k: v for k, v in os.environ.items() if k not in REAL_AWS_VARS}
        env.update(TEST_ENV)
        env.pop("AWS_ENDPOINT_URL", None)
        for attempt in range(5):  # a free port can be taken between probe and bind
            port = self.port or free_port(self.host)
            log = open(self.log_path, "ab")
            self._proc = subprocess.Popen(
                [*cmd_base, "-H", self.host, "-p", str(port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True, preexec_fn=die_with_parent,
            )
            log.close()
            self.port = port
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                if port_open(self.host, port):
                    return
                time.sleep(0.05)
            if self._proc.poll() is None:
                raise AssertionError(f"moto_server did not listen within {timeout}s: {self.log()}")
            self._proc = None
            if self.port == port and attempt < 4:
                self.port = 0
        raise AssertionError(f"moto_server failed to start: {self.log()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def reset(self) -> None:
        """Drop all moto state (rarely needed: tests use unique resource names)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=5):
            pass

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""

    def stop(self, timeout: float = 5.0) -> None:
        if self._threaded is not None:
            self._threaded.stop()
            self._threaded = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client(service: str, endpoint_url: str | None = None, **kwargs: Any) -> Any:
    """A boto3 client for the test endpoint (defaults to $AWS_ENDPOINT_URL), dummy creds, us-east-1."""
    import boto3

    url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        raise RuntimeError("no endpoint: pass endpoint_url or request the aws_env fixture")
    return boto3.client(
        service, endpoint_url=url, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing", **kwargs,
    )


@dataclass(frozen=True)
class AwsResources:
    """Names/URLs/ARNs of one test's resources in moto (all unique per call)."""

    prefix: str
    endpoint_url: str
    queue_url: str
    queue_arn: str
    fifo_queue_url: str
    fifo_queue_arn: str
    dlq_url: str
    dlq_arn: str
    topic_arn: str               # standard SNS topic ...
    topic_queue_url: str         # ... delivered raw (RawMessageDelivery=true) to this queue
    topic_queue_arn: str
    subscription_arn: str
    fifo_topic_arn: str          # FIFO SNS topic ...
    fifo_topic_queue_url: str    # ... delivered raw to this FIFO queue
    bus_name: str                # custom EventBridge bus ...
    bus_arn: str
    rule_name: str               # ... whose rule matches {"source": [event_source]} ...
    event_source: str
    event_queue_url: str         # ... and targets this queue (body = full event envelope JSON)
    event_queue_arn: str
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """Handy env vars for a handler under test."""
        return {"DEFER_DLQ_URL": self.dlq_url, "TEST_QUEUE_URL": self.queue_url,
                "TEST_FIFO_QUEUE_URL": self.fifo_queue_url, "TEST_TOPIC_ARN": self.topic_arn,
                "TEST_FIFO_TOPIC_ARN": self.fifo_topic_arn, "TEST_BUS_NAME": self.bus_name,
                "TEST_EVENT_SOURCE": self.event_source}


def _queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def create_resources(endpoint_url: str, prefix: str | None = None) -> AwsResources:
    """Create the standard set of queues/topics/bus for one test (see AwsResources)."""
    p = prefix or f"t{uuid.uuid4().hex[:12]}"
    sqs, sns, events = (client(s, endpoint_url) for s in ("sqs", "sns", "events"))

    dlq_url, dlq_arn = _queue(sqs, f"{p}-dlq")
    queue_url, queue_arn = _queue(sqs, f"{p}-q", VisibilityTimeout="5")
    fifo_url, fifo_arn = _queue(sqs, f"{p}-q.fifo", FifoQueue="true", VisibilityTimeout="5")

    topic_arn = sns.create_topic(Name=f"{p}-topic")["TopicArn"]
    tq_url, tq_arn = _queue(sqs, f"{p}-topic-q")
    sub_arn = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=tq_arn,
                            Attributes={"RawMessageDelivery": "true"},
                            ReturnSubscriptionArn=True)["SubscriptionArn"]

    fifo_topic_arn = sns.create_topic(Name=f"{p}-topic.fifo",
                                      Attributes={"FifoTopic": "true"})["TopicArn"]
    ftq_url, ftq_arn = _queue(sqs, f"{p}-topic-q.fifo", FifoQueue="true")
    sns.subscribe(TopicArn=fifo_topic_arn, Protocol="sqs", Endpoint=ftq_arn,
                  Attributes={"RawMessageDelivery": "true"})

    bus_name = f"{p}-bus"
    bus_arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
    source = f"test.{p}"
    eq_url, eq_arn = _queue(sqs, f"{p}-events-q")
    rule_name = f"{p}-rule"
    events.put_rule(Name=rule_name, EventBusName=bus_name,
                    EventPattern=json.dumps({"source": [source]}), State="ENABLED")
    events.put_targets(Rule=rule_name, EventBusName=bus_name,
                       Targets=[{"Id": "q", "Arn": eq_arn}])

    return AwsResources(
        prefix=p, endpoint_url=endpoint_url,
        queue_url=queue_url, queue_arn=queue_arn,
        fifo_queue_url=fifo_url, fifo_queue_arn=fifo_arn,
        dlq_url=dlq_url, dlq_arn=dlq_arn,
        topic_arn=topic_arn, topic_queue_url=tq_url, topic_queue_arn=tq_arn,
        subscription_arn=sub_arn,
        fifo_topic_arn=fifo_topic_arn, fifo_topic_queue_url=ftq_url,
        bus_name=bus_name, bus_arn=bus_arn, rule_name=rule_name, event_source=source,
        event_queue_url=eq_url, event_queue_arn=eq_arn,
    )


def _parse(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def drain_messages(url: str, expected: int, timeout: float = 5.0, *,
                   endpoint_url: str | None = None, sqs: Any = None) -> list[dict[str, Any]]:
    """Receive and delete raw SQS messages (with all attributes) until `expected` or `timeout`.

    Returns what arrived (possibly fewer, or more if a batch overshoots); the caller asserts.
    """
    sqs = sqs or client("sqs", endpoint_url)
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if len(got) >= expected and expected > 0 or remaining <= 0:
            return got
        resp = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=int(min(1.0, remaining)),
            MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
        )
        msgs = resp.get("Messages", [])
        if msgs:
            got.extend(msgs)
            for i in range(0, len(msgs), 10):
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(msgs[i:i + 10])])
        elif remaining < 1.0:
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))


def drain_queue(url: str, expected: int, timeout: float = 5.0, *,
                endpoint_url: str | None = None, sqs: Any = None) -> list[Any]:
    """Like drain_messages but returns bodies, JSON-decoded where they parse.

    With expected=0 it listens for the whole `timeout` (to prove nothing arrives).
    """
    return [_parse(m["Body"]) for m in drain_messages(url, expected, timeout,
                                                      endpoint_url=endpoint_url, sqs=sqs)]
