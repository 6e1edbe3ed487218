"""The claim check across a crash, under RIE with the built layer: the extension is killed
(SIGKILL) after it put a payload in S3 and while its message is on the way; the item is in
the journal, so the next environment puts it again under the same key and sends it. Nothing
is lost, and the bucket holds one object for it, not two."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path

from handler_lib import consumer
from handler_lib.engine.sinks.claim_check import KEY_PREFIX
from tests.integration.test_faults_rie import extension_pid
from tests.support.moto_server import client, drain_messages
from tests.support.waiting import wait_until

FUNCTION = Path(__file__).parent / "functions" / "large"


def test_a_kill_between_the_put_and_the_send_loses_nothing_and_leaves_one_object(rie_function, moto_endpoint,
                                                                                 tmp_path, monkeypatch):
    start, res, proxy = rie_function
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)  # this process reads from moto itself
    monkeypatch.setattr(consumer, "_default_s3", None)
    bucket = f"payloads-{uuid.uuid4().hex[:12]}"
    s3 = client("s3", moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    rie = start(FUNCTION, 10, DEFER_LARGE_PAYLOAD_BUCKET=bucket, DEFER_LARGE_PAYLOAD_THRESHOLD="262144")
    rie.invoke({"tag": "warm"})  # the extension is launched on the first invoke
    # The send is held at the proxy, then refused: this life never delivers it.
    proxy.error("SendMessageBatch", "InternalError", 500, calls=1)
    proxy.set_latency(30.0, "SendMessageBatch")
    thread = threading.Thread(target=rie.invoke, args=({"tag": "kill", "sqs_bytes": 600_000},), daemon=True)
    thread.start()

    def objects():
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    wait_until(lambda: objects() and proxy.count("SendMessageBatch") >= 1, 10, message="no put, then send")
    os.kill(extension_pid(str(tmp_path / "defer.sock")), signal.SIGKILL)
    thread.join(15)
    proxy.reset()  # no faults, and no requests recorded: what follows is the next environment's
    (key,) = objects()

    status, _, _ = rie.invoke({"tag": "next"})  # RIE resets and re-inits; the journal is replayed
    assert status == 200
    (message,) = drain_messages(res.queue_url, 1, timeout=10)
    found = consumer.record(message)
    assert found.pointer.key == key == KEY_PREFIX + found.defer_id
    assert len(found.body.encode()) == 600_000 and found.body.startswith("kill-sqs:")
    puts = [r for r in proxy.recorded() if r.service == "s3" and r.action.startswith("PUT ")]
    assert len(puts) >= 1  # put again after the restart ...
    assert objects() == [key]  # ... over the same object
    assert drain_messages(res.queue_url, 0, timeout=1) == []  # delivered once
