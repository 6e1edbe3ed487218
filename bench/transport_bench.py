"""Part transport (``--only transport``): would a lean AWS transport pay for itself?

The CPU one SendMessageBatch (1 entry of 1 KB) costs the process that sends it, against
``bench.null_aws`` (answers at once, its own process), no added latency, keep-alive:

- ``lean``: the engine's own client as it ships (``handler_lib.engine.clients.ClientFactory``,
  ``DEFER_TRANSPORT=auto``: ``handler_lib.engine.transport``);
- ``botocore``: the engine's botocore client (the same factory, ``DEFER_TRANSPORT=botocore``);
- ``signer_only``: the same request signed by botocore's ``SigV4Auth`` and sent with
  ``http.client`` (what a lean transport built on botocore's signer would do per call);
- ``stdlib``: signed with ``hmac``/``hashlib`` (SigV4 written out) and sent with ``http.client``.

The three alternate in rounds (a shared machine); each figure is the median of the rounds'
CPU per call. ``sdk_load_cpu_ms``: in a fresh interpreter, the CPU of what the extension loaded
before its first call with botocore (botocore, the session, the SQS, SNS and EventBridge
clients, through ClientFactory with ``DEFER_TRANSPORT=botocore``), median of fresh runs;
``lean_load_cpu_ms``: the same with the lean transport (its modules, TLS context, credentials,
the three clients); ``signer_load_cpu_ms``: importing botocore's signer alone. ``signer_only``
and ``stdlib`` are the probes the decision was taken on (docs/performance.md).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import time
from typing import Any, Callable, Dict, List

from .common import AWS_ENV, PY, ROOT, child_env, log, median, stop_process

_KEY_ID, _SECRET = "AKIDEXAMPLE", "bench-secret"
_LOAD = """
import json, time
t = time.process_time()
{body}
print(json.dumps(round((time.process_time() - t) * 1000, 2)))
"""
_SDK = """
from handler_lib import config as cfg
from handler_lib.engine.clients import ClientFactory
make = ClientFactory(cfg.load({{"DEFER_TRANSPORT": "{transport}"}}))
make.preload()
for service in ("sqs", "sns", "events"):
    assert getattr(make(service), "lean", False) == ("{transport}" == "auto")
"""


def _stdlib_headers(host: str, payload: bytes, target: str) -> Dict[str, str]:
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    signed = "content-type;host;x-amz-date;x-amz-target"
    canonical = (f"POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:{host}\nx-amz-date:{amz_date}\n"
                 f"x-amz-target:{target}\n\n{signed}\n{hashlib.sha256(payload).hexdigest()}")
    scope = f"{day}/us-east-1/sqs/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = hmac.new(f"AWS4{_SECRET}".encode(), day.encode(), hashlib.sha256).digest()
    for part in ("us-east-1", "sqs", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Date": amz_date, "X-Amz-Target": target,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={_KEY_ID}/{scope}, SignedHeaders={signed}, "
                             f"Signature={signature}"}


def _senders(port: int) -> Dict[str, Callable[[], Any]]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from handler_lib import config as cfg
    from handler_lib.engine.clients import ClientFactory

    url = f"http://127.0.0.1:{port}"
    queue = f"{url}/123456789012/bench-transport"
    entries = [{"Id": "0", "MessageBody": json.dumps({"order_id": "1", "note": "x" * 960})}]
    client = ClientFactory(cfg.load({"DEFER_TRANSPORT": "botocore"}))("sqs")
    lean = ClientFactory(cfg.load({}))("sqs")
    assert getattr(lean, "lean", False) and not getattr(client, "lean", False)
    signer = SigV4Auth(Credentials(_KEY_ID, _SECRET), "sqs", "us-east-1")
    target = "AmazonSQS.SendMessageBatch"
    conns = {name: http.client.HTTPConnection("127.0.0.1", port) for name in ("signer_only", "stdlib")}

    def signer_only() -> None:
        payload = json.dumps({"QueueUrl": queue, "Entries": entries}).encode()
        request = AWSRequest("POST", url + "/", data=payload,
                             headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target})
        signer.add_auth(request)
        conns["signer_only"].request("POST", "/", body=payload, headers=dict(request.headers.items()))
        json.loads(conns["signer_only"].getresponse().read())

    def stdlib() -> None:
        payload = json.dumps({"QueueUrl": queue, "Entries": entries}).encode()
        conns["stdlib"].request("POST", "/", body=payload,
                                headers=_stdlib_headers(f"127.0.0.1:{port}", payload, target))
        json.loads(conns["stdlib"].getresponse().read())

    return {"botocore": lambda: client.send_message_batch(QueueUrl=queue, Entries=entries),
            "lean": lambda: lean.send_message_batch(QueueUrl=queue, Entries=entries),
            "signer_only": signer_only, "stdlib": stdlib}


def _load_cpu_ms(body: str, runs: int) -> float:
    values: List[float] = []
    for _ in range(runs):
        out = subprocess.run([PY, "-c", _LOAD.format(body=body)], cwd=ROOT, env=child_env(AWS_ENV),
                             capture_output=True, text=True, check=True).stdout
        values.append(float(out.strip().splitlines()[-1]))
    return round(median(values), 2)


def run(quick: bool = False) -> Dict[str, Any]:
    rounds, calls = (3, 100) if quick else (7, 300)
    saved = {k: os.environ.get(k) for k in [*AWS_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(AWS_ENV)
    server = subprocess.Popen([PY, "-m", "bench.null_aws"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env=child_env({}))
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"  # the engine's client finds it here
        senders = _senders(port)
        per_call: Dict[str, List[float]] = {name: [] for name in senders}
        log(f"transport: {rounds} rounds of {calls} SendMessageBatch calls per sender ({', '.join(senders)})")
        for send in senders.values():
            for _ in range(20):
                send()  # connections open, caches warm
        for _ in range(rounds):
            for name, send in senders.items():
                started = time.process_time()
                for _ in range(calls):
                    send()
                per_call[name].append((time.process_time() - started) / calls * 1000)
    finally:
        stop_process(server)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    cpu = {name: round(median(v), 3) for name, v in per_call.items()}
    loads = 3 if quick else 7
    log(f"transport: SDK load CPU, {loads} fresh interpreters each")
    return {
        "transport_cpu_ms_per_call_botocore": cpu["botocore"],
        "transport_cpu_ms_per_call_lean": cpu["lean"],
        "transport_cpu_ms_per_call_signer_only": cpu["signer_only"],
        "transport_cpu_ms_per_call_stdlib": cpu["stdlib"],
        "sdk_load_cpu_ms": _load_cpu_ms(_SDK.format(transport="botocore"), loads),
        "lean_load_cpu_ms": _load_cpu_ms(_SDK.format(transport="auto"), loads),
        "signer_load_cpu_ms": _load_cpu_ms("import botocore.auth, botocore.awsrequest, botocore.credentials", loads),
        "transport_detail": {"rounds": rounds, "calls_per_round": calls,
                             "cpu_ms_per_call": {n: [round(x, 3) for x in v] for n, v in per_call.items()},
                             "note": "SendMessageBatch, 1 entry of ~1 KB, to bench.null_aws over keep-alive HTTP; "
                                     "CPU of this process (time.process_time) per call"},
    }
