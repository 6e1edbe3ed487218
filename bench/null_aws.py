"""A do-nothing AWS endpoint for SendMessageBatch, PublishBatch, PutEvents and S3 PutObject (its own process).

Why: moto's SendMessageBatch costs grow with the queue's length (measured: 5 ms on an empty
queue, +1.4 ms per 10 messages already queued) and moto serializes every call under one GIL,
so at 102 calls moto alone needs more CPU time than the 260 ms ideal of the drain. Behind the
same fault proxy, this upstream answers every entry as successful at once, so the drain's
wall time measures the engine (batching, concurrency, boto3) against the injected latency.
``python -m bench.null_aws`` prints its port.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from .common import serve_on_free_port


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, body: bytes, ctype: str) -> None:
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                f"x-amzn-RequestId: {uuid.uuid4()}\r\n\r\n").encode()
        self.wfile.write(head + body)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        if target.endswith("SendMessageBatch"):
            req = json.loads(raw)
            ok = [{"Id": e["Id"], "MessageId": str(uuid.uuid4()),
                   "MD5OfMessageBody": hashlib.md5(e["MessageBody"].encode()).hexdigest()}
                  for e in req["Entries"]]
            self._send(json.dumps({"Successful": ok, "Failed": []}).encode(), "application/x-amz-json-1.0")
        elif target.endswith("SendMessage"):
            req = json.loads(raw)
            self._send(json.dumps({"MessageId": str(uuid.uuid4()),
                                   "MD5OfMessageBody": hashlib.md5(req["MessageBody"].encode()).hexdigest()}).encode(),
                       "application/x-amz-json-1.0")
        elif target.endswith("PutEvents"):
            req = json.loads(raw)
            entries = [{"EventId": str(uuid.uuid4())} for _ in req["Entries"]]
            self._send(json.dumps({"FailedEntryCount": 0, "Entries": entries}).encode(), "application/x-amz-json-1.1")
        else:
            form = dict(parse_qsl(raw.decode()))
            action = form.get("Action", "")
            ns = "http://sns.amazonaws.com/doc/2010-03-31/"
            if action == "PublishBatch":
                ids = [v for k, v in form.items() if k.startswith("PublishBatchRequestEntries.member.") and k.endswith(".Id")]
                members = "".join(f"<member><Id>{escape(i)}</Id><MessageId>{uuid.uuid4()}</MessageId></member>" for i in ids)
                xml = (f'<PublishBatchResponse xmlns="{ns}"><PublishBatchResult><Successful>{members}</Successful>'
                       f"<Failed/></PublishBatchResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
                       "</ResponseMetadata></PublishBatchResponse>")
            else:  # Publish
                xml = (f'<PublishResponse xmlns="{ns}"><PublishResult><MessageId>{uuid.uuid4()}</MessageId>'
                       f"</PublishResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
                       "</ResponseMetadata></PublishResponse>")
            self._send(xml.encode(), "text/xml")


    def do_PUT(self) -> None:  # S3 PutObject (the claim check's puts): the body is read and dropped
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                self.rfile.read(size + 2) if size else self.rfile.readline()
                if not size:
                    break
        else:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.wfile.write((f'HTTP/1.1 200 OK\r\nETag: "{uuid.uuid4().hex}"\r\nContent-Length: 0\r\n'
                          f"x-amz-request-id: {uuid.uuid4()}\r\n\r\n").encode())


if __name__ == "__main__":
    serve_on_free_port(Handler)
