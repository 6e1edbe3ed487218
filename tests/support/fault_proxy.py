"""An HTTP reverse proxy in front of moto that injects AWS-shaped faults.

Why: retry, dead-letter and benchmark tests need latency, throttling, partial batch
failures and dead endpoints, produced the way real AWS produces them, so that real
boto3 parses them exactly as it would in production.

How boto3 talks (observed against moto 5.2.5 / botocore 1.44):
- SQS: JSON protocol, ``POST /``, ``X-Amz-Target: AmazonSQS.<Action>``,
  ``Content-Type: application/x-amz-json-1.0``; errors carry ``__type`` and the
  ``x-amzn-query-error: <Code>;Sender`` header (botocore reports that code).
- SNS: query protocol, form body ``Action=<Action>&...``, XML responses and
  ``<ErrorResponse>`` errors.
- EventBridge: JSON 1.1, ``X-Amz-Target: AWSEvents.<Action>``.
The service is taken from the SigV4 credential scope in ``Authorization``.

Quotas: ``set_quota`` puts a token bucket in front of an action (requests or batch entries a
second, shared by every client of the proxy, as an account's quota is shared by all its
environments); a request over it is answered with the service's own throttling reply and never
forwarded, like any throttle.

Failing batch entries: the chosen entries are removed from the request before it is
forwarded (so moto never delivers them) and reported back as failed in the response,
at their original positions for PutEvents. Everything is configurable at runtime and
thread-safe; every request is counted per action.
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["FaultProxy", "RecordedRequest", "TokenBucket"]

_SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "content-length",
               "server", "date"}  # server/date are added by BaseHTTPRequestHandler itself
_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_DEFAULT_THROTTLE = {"sqs": ("RequestThrottled", 400), "sns": ("Throttling", 400),
                     "events": ("ThrottlingException", 400)}


@dataclass
class RecordedRequest:
    """One request seen by the proxy (after rules were applied)."""

    service: str
    action: str
    entries: int          # batch entries in the original request (0 if not a batch)
    failed_entries: int   # entries the proxy failed
    outcome: str          # "forwarded", "error:<Code>", "synthesized", "upstream-down"
    at: float = field(default_factory=time.monotonic)


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` held (one second's worth by default); a
    request takes its cost or is refused. The shape of AWS's API quotas (Step Functions
    documents its buckets and refill rates): a burst passes, a sustained excess is throttled.
    A cost above ``burst`` is cut to it, so a batch bigger than the bucket still passes when
    the bucket is full. Thread-safe."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be above 0, not {rate}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, cost: float = 1.0) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            cost = min(float(cost), self.burst)
            if self._tokens < cost:
                return False
            self._tokens -= cost
            return True


@dataclass
class _Quota:
    bucket: TokenBucket
    unit: str                          # "requests" | "entries"
    code: str
    status: int
    admitted: int = 0                  # requests let through
    admitted_entries: int = 0
    throttled: int = 0                 # requests refused
    throttled_entries: int = 0


@dataclass
class _Rule:
    kind: str                         # "error" | "fail_entries" | "latency"
    action: str | None
    service: str | None
    calls: int | None                 # remaining matching calls; None = forever
    code: str = ""
    status: int = 400
    message: str = ""
    seconds: float = 0.0
    ids: frozenset[str] | None = None
    indexes: frozenset[int] | None = None
    match: Callable[[dict[str, Any]], bool] | None = None
    sender_fault: bool = False

    def applies(self, service: str, action: str) -> bool:
        return ((self.action is None or self.action == action)
                and (self.service is None or self.service == service)
                and (self.calls is None or self.calls > 0))

    def selects(self, index: int, entry: dict[str, Any]) -> bool:
        if self.ids is None and self.indexes is None and self.match is None:
            return True
        return bool((self.ids is not None and entry.get("Id") in self.ids)
                    or (self.indexes is not None and index in self.indexes)
                    or (self.match is not None and self.match(entry)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 overflows under concurrent clients: 1 s SYN retries
    allow_reuse_address = True
    proxy: "FaultProxy"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on its call (its read timeout) is no error of the proxy's: quiet."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FaultProxy:
    """Reverse proxy to `upstream` (moto) on 127.0.0.1 at a free port.

    Typical use::

        proxy.throttle("SendMessageBatch", calls=2)             # next 2 calls throttled
        proxy.fail_entries("SendMessageBatch", ids={"1"})      # entry "1" fails, forever
        proxy.fail_entries("PutEvents", indexes={0}, calls=1)  # first entry, next call only
        proxy.set_latency(0.2)                                 # every request +200 ms
        proxy.refuse_connections(); ...; proxy.accept_connections()
        proxy.count("SendMessageBatch")
    """

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._counts: dict[str, int] = {}
        self.requests: list[RecordedRequest] = []
        self._raw: list[tuple[str, dict[str, str], bytes]] = []
        self._lines: list[tuple[str, str, str]] = []  # (action, method, path) of each request
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._quotas: dict[tuple[str | None, str], _Quota] = {}

    # ----------------------------------------------------------------- lifecycle
    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "FaultProxy":
        server = _Server((self.host, self.port), _Handler)
        server.proxy = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._close_active()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse_connections(self) -> None:
        """Stop listening and cut open keep-alive connections: clients get ECONNREFUSED/reset."""
        self.stop()

    def accept_connections(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            self.start()

    def _close_active(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # --------------------------------------------------------------- configuration
    def set_latency(self, seconds: float, action: str | None = None, *, service: str | None = None,
                    calls: int | None = None) -> None:
        """Delay matching requests by `seconds` before forwarding (0 removes latency rules)."""
        with self._lock:
            self._rules = [r for r in self._rules
                           if not (r.kind == "latency" and r.action == action and r.service == service)]
            if seconds > 0:
                self._rules.append(_Rule("latency", action, service, calls, seconds=seconds))

    def throttle(self, action: str | None = None, *, calls: int | None = None,
                 service: str | None = None, code: str | None = None, status: int | None = None,
                 message: str = "Rate exceeded") -> None:
        """Answer matching calls with the service's throttling error (not forwarded).

        Default codes (all in botocore's throttling list): SQS ``RequestThrottled``,
        SNS ``Throttling``, EventBridge ``ThrottlingException``; HTTP 400.
        """
        with self._lock:
            self._rules.append(_Rule("error", action, service, calls, code=code or "",
                                     status=status or 0, message=message))

    def error(self, action: str | None, code: str, status: int = 500, *, calls: int | None = None,
              service: str | None = None, message: str = "We encountered an internal error.") -> None:
        """Answer matching calls with an arbitrary AWS error (e.g. InternalError/500)."""
        with self._lock:
            self._rules.append(_Rule("error", action, service, calls, code=code, status=status,
                                     message=message))

    def fail_entries(self, action: str, *, ids: set[str] | None = None, indexes: set[int] | None = None,
                     match: Callable[[dict[str, Any]], bool] | None = None, calls: int | None = None,
                     code: str = "InternalError", message: str = "injected entry failure",
                     sender_fault: bool = False, service: str | None = None) -> None:
        """Fail chosen entries of SendMessageBatch / PublishBatch / PutEvents (or any
        SQS ``*Batch`` call). Entries are chosen by Id, by 0-based index, by a predicate
        on the request entry dict, or all entries if no selector is given. `calls` limits
        how many matching calls are affected (None = all).
        """
        with self._lock:
            self._rules.append(_Rule(
                "fail_entries", action, service, calls, code=code, message=message,
                ids=frozenset(ids) if ids is not None else None,
                indexes=frozenset(indexes) if indexes is not None else None,
                match=match, sender_fault=sender_fault))

    def set_quota(self, action: str, per_second: float, *, service: str | None = None, unit: str = "requests",
                  burst: float | None = None, code: str | None = None, status: int | None = None) -> None:
        """Throttle ``action`` above ``per_second`` requests (``unit="requests"``) or batch
        entries (``unit="entries"``: PutEvents, PublishBatch, SendMessageBatch count each
        entry), for all clients together. Over-quota requests get the service's throttling
        reply (the codes of ``throttle``) and are not forwarded. ``per_second=0`` removes it."""
        if unit not in ("requests", "entries"):
            raise ValueError(f"unit must be 'requests' or 'entries', not {unit!r}")
        with self._lock:
            if per_second <= 0:
                self._quotas.pop((service, action), None)
                return
            self._quotas[(service, action)] = _Quota(TokenBucket(per_second, burst), unit, code or "", status or 0)

    def quota_stats(self) -> dict[str, dict[str, int]]:
        """Per action with a quota: requests and entries admitted and throttled."""
        with self._lock:
            return {action: {"admitted": q.admitted, "admitted_entries": q.admitted_entries,
                             "throttled": q.throttled, "throttled_entries": q.throttled_entries}
                    for (_, action), q in self._quotas.items()}

    def _quota(self, service: str, action: str) -> _Quota | None:
        with self._lock:
            return self._quotas.get((service, action)) or self._quotas.get((None, action))

    def _admit(self, quota: _Quota, entries: int) -> bool:
        cost = max(1, entries) if quota.unit == "entries" else 1
        ok = quota.bucket.take(cost)
        with self._lock:
            self._counts_quota(quota, ok, max(1, entries))
        return ok

    @staticmethod
    def _counts_quota(quota: _Quota, ok: bool, entries: int) -> None:
        if ok:
            quota.admitted += 1
            quota.admitted_entries += entries
        else:
            quota.throttled += 1
            quota.throttled_entries += entries

    def clear(self) -> None:
        """Remove all fault rules (counts are kept)."""
        with self._lock:
            self._rules.clear()

    def reset(self) -> None:
        """Remove all rules and quotas and forget counts and recorded requests."""
        with self._lock:
            self._rules.clear()
            self._quotas.clear()
            self._counts.clear()
            self.requests.clear()
            self._raw.clear()
            self._lines.clear()

    # --------------------------------------------------------------------- counts
    def count(self, action: str | None = None) -> int:
        """Requests seen for `action` (all requests if None), faults included."""
        with self._lock:
            return sum(self._counts.values()) if action is None else self._counts.get(action, 0)

    def counts(self) -> dict[str, int]:
        """Snapshot of {action: requests seen}."""
        with self._lock:
            return dict(self._counts)

    def recorded(self, action: str | None = None) -> list[RecordedRequest]:
        """Snapshot of recorded requests (optionally only `action`), oldest first."""
        with self._lock:
            return [r for r in self.requests if action is None or r.action == action]

    def raw_requests(self, action: str) -> list[tuple[dict[str, str], bytes]]:
        """Headers and body of every `action` request received, oldest first."""
        with self._lock:
            return [(headers, body) for name, headers, body in self._raw if name == action]

    def request_lines(self, action: str) -> list[tuple[str, str]]:
        """Method and path of every `action` request received, oldest first."""
        with self._lock:
            return [(method, path) for name, method, path in self._lines if name == action]

    # ------------------------------------------------------------------ internals
    def _take(self, service: str, action: str) -> tuple[float, _Rule | None, _Rule | None]:
        """Atomically pick the latency, error and entry-failure rules for one request."""
        with self._lock:
            self._counts[action] = self._counts.get(action, 0) + 1
            latency = 0.0
            err: _Rule | None = None
            fail: _Rule | None = None
            for rule in self._rules:
                if not rule.applies(service, action):
                    continue
                if rule.kind == "latency":
                    latency = max(latency, rule.seconds)
                    self._consume(rule)
                elif rule.kind == "error" and err is None:
                    err = rule
                    self._consume(rule)
                elif rule.kind == "fail_entries" and fail is None and err is None:
                    fail = rule
            if fail is not None and err is None:
                self._consume(fail)
            else:
                fail = None
            return latency, err, fail

    @staticmethod
    def _consume(rule: _Rule) -> None:
        if rule.calls is not None:
            rule.calls -= 1

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)


def _service_of(headers: Any) -> str:
    target = headers.get("X-Amz-Target", "")
    if target.startswith("AmazonSQS."):
        return "sqs"
    if target.startswith("AWSEvents."):
        return "events"
    m = _SCOPE_RE.search(headers.get("Authorization", ""))
    return m.group(1) if m else "unknown"


def _entry_count(action: str, body: bytes, form: list[tuple[str, str]], is_json: bool) -> int:
    """Batch entries in a request (what an entries quota counts); 0 for a call that is not a batch."""
    if is_json:
        if action != "PutEvents" and not action.endswith("Batch"):
            return 0
        try:
            return len(json.loads(body or b"{}").get("Entries") or [])
        except ValueError:
            return 0
    if action != "PublishBatch":
        return 0
    return len(_sns_members(form)[1])


def _sns_members(form: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[dict[str, Any]],
                                                        list[list[tuple[str, str]]]]:
    """Split a PublishBatch form into (other params, entry dicts, raw params per entry)."""
    prefix = "PublishBatchRequestEntries.member."
    others: list[tuple[str, str]] = []
    raw: dict[int, list[tuple[str, str]]] = {}
    for key, value in form:
        if key.startswith(prefix):
            n, _, rest = key[len(prefix):].partition(".")
            raw.setdefault(int(n), []).append((rest, value))
        else:
            others.append((key, value))
    ordered = [raw[n] for n in sorted(raw)]
    entries = [{k: v for k, v in params if "." not in k} for params in ordered]
    return others, entries, ordered


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK: +40 ms on every proxied call.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.proxy._lock:
            self.server.proxy._conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.proxy._lock:
                self.server.proxy._conns.discard(self.connection)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    # ------------------------------------------------------------------ main path
    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        service = _service_of(self.headers)
        target = self.headers.get("X-Amz-Target", "")
        is_json = bool(target)
        form: list[tuple[str, str]] = []
        if is_json:
            action = target.rpartition(".")[2]
        else:
            form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            action = dict(form).get("Action", "") or f"{self.command} {self.path.split('?')[0]}"
        with proxy._lock:
            proxy._raw.append((action, dict(self.headers), body))
            proxy._lines.append((action, self.command, self.path))
        quota = proxy._quota(service, action)
        if quota is not None:
            entries = _entry_count(action, body, form, is_json)
            if not proxy._admit(quota, entries):
                with proxy._lock:
                    proxy._counts[action] = proxy._counts.get(action, 0) + 1
                code, status = quota.code, quota.status
                if not code:
                    code, default_status = _DEFAULT_THROTTLE.get(service, ("Throttling", 400))
                    status = status or default_status
                # recorded before the reply: a client that reads the record after its call sees it
                proxy._record(RecordedRequest(service, action, entries, entries, f"throttled:{code}"))
                self._send_error(service, is_json, code, status or 400, "Rate exceeded")
                return
        latency, err, fail = proxy._take(service, action)
        if latency:
            time.sleep(latency)
        if err is not None:
            code, status = err.code, err.status
            if not code:
                code, status0 = _DEFAULT_THROTTLE.get(service, ("Throttling", 400))
                status = status or status0
            proxy._record(RecordedRequest(service, action, 0, 0, f"error:{code}"))
            self._send_error(service, is_json, code, status or 400, err.message)
            return
        if fail is not None:
            if is_json and action == "PutEvents":
                return self._put_events(body, fail)
            if is_json and action.endswith("Batch"):
                return self._sqs_batch(body, action, fail)
            if not is_json and action == "PublishBatch":
                return self._sns_batch(form, fail)
        status, headers, data = self._forward(body)
        proxy._record(RecordedRequest(service, action, 0, 0,  # before the reply, as every record
                                      "forwarded" if status else "upstream-down"))
        self._reply(status, headers, data)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, [(k, v) for k, v in resp.getheaders()
                                 if k.lower() not in _HOP_BY_HOP], data
        except OSError as exc:
            msg = f"fault proxy: upstream unreachable: {exc}".encode()
            return 502, [("Content-Type", "text/plain")], msg
        finally:
            conn.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, service: str, is_json: bool, code: str, status: int, message: str) -> None:
        rid = uuid.uuid4().hex
        if is_json:
            ctype = self.headers.get("Content-Type", "application/x-amz-json-1.0")
            headers = [("Content-Type", ctype), ("x-amzn-RequestId", rid)]
            if service == "sqs":
                # SQS is awsQueryCompatible: botocore takes the code from this header.
                headers.append(("x-amzn-query-error", f"{code};Sender"))
                type_ = f"com.amazonaws.sqs#{code}"
            else:
                type_ = code
            data = json.dumps({"__type": type_, "message": message}).encode()
        else:
            headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)]
            data = (f'<ErrorResponse xmlns="{_SNS_NS}"><Error><Type>Sender</Type>'
                    f"<Code>{_x(code)}</Code><Message>{_x(message)}</Message></Error>"
                    f"<RequestId>{rid}</RequestId></ErrorResponse>").encode()
        self._reply(status, headers, data)

    # ------------------------------------------------------------ batch rewriting
    def _json_reply(self, obj: dict[str, Any]) -> None:
        ctype = self.headers.get("Content-Type", "application/x-amz-json-1.0")
        self._reply(200, [("Content-Type", ctype), ("x-amzn-RequestId", uuid.uuid4().hex)],
                    json.dumps(obj).encode())

    def _sqs_batch(self, body: bytes, action: str, rule: _Rule) -> None:
        req = json.loads(body or b"{}")
        entries: list[dict[str, Any]] = req.get("Entries", [])
        failed_ids = [e.get("Id") for i, e in enumerate(entries) if rule.selects(i, e)]
        failed = [{"Id": i, "SenderFault": rule.sender_fault, "Code": rule.code,
                   "Message": rule.message} for i in failed_ids]
        keep = [e for e in entries if e.get("Id") not in failed_ids]
        result: dict[str, Any] = {"Successful": [], "Failed": []}
        outcome = "synthesized"
        if keep:
            req["Entries"] = keep
            data = self._forward_or_relay(json.dumps(req).encode(), action, "sqs", len(entries))
            if data is None:
                return None
            result = json.loads(data)
            outcome = "forwarded"
        result["Failed"] = list(result.get("Failed") or []) + failed
        result.setdefault("Successful", [])
        self._json_reply(result)
        self._record(action, "sqs", len(entries), len(failed), outcome)

    def _put_events(self, body: bytes, rule: _Rule) -> None:
        req = json.loads(body or b"{}")
        entries: list[dict[str, Any]] = req.get("Entries", [])
        failed_idx = [i for i, e in enumerate(entries) if rule.selects(i, e)]
        keep = [e for i, e in enumerate(entries) if i not in failed_idx]
        upstream: list[dict[str, Any]] = []
        upstream_failed = 0
        outcome = "synthesized"
        if keep:
            req["Entries"] = keep
            data = self._forward_or_relay(json.dumps(req).encode(), "PutEvents", "events", len(entries))
            if data is None:
                return None
            parsed = json.loads(data)
            upstream = list(parsed.get("Entries", []))
            upstream_failed = int(parsed.get("FailedEntryCount", 0))
            outcome = "forwarded"
        merged: list[dict[str, Any]] = []
        it = iter(upstream)
        for i in range(len(entries)):
            if i in failed_idx:
                merged.append({"ErrorCode": rule.code, "ErrorMessage": rule.message})
            else:
                merged.append(next(it, {}))
        self._json_reply({"FailedEntryCount": upstream_failed + len(failed_idx), "Entries": merged})
        self._record("PutEvents", "events", len(entries), len(failed_idx), outcome)

    def _sns_batch(self, form: list[tuple[str, str]], rule: _Rule) -> None:
        others, entries, raw = _sns_members(form)
        failed_idx = [i for i, e in enumerate(entries) if rule.selects(i, e)]
        keep = [raw[i] for i in range(len(entries)) if i not in failed_idx]
        successful: list[dict[str, str]] = []
        upstream_failed: list[dict[str, str]] = []
        outcome = "synthesized"
        if keep:
            params = list(others)
            for n, entry_params in enumerate(keep, start=1):
                params += [(f"PublishBatchRequestEntries.member.{n}.{k}", v) for k, v in entry_params]
            data = self._forward_or_relay(urlencode(params).encode(), "PublishBatch", "sns", len(entries))
            if data is None:
                return None
            root = ET.fromstring(data)
            ns = {"s": _SNS_NS}
            for m in root.findall(".//s:Successful/s:member", ns):
                successful.append({c.tag.split("}")[1]: c.text or "" for c in m})
            for m in root.findall(".//s:Failed/s:member", ns):
                upstream_failed.append({c.tag.split("}")[1]: c.text or "" for c in m})
            outcome = "forwarded"
        failed = upstream_failed + [
            {"Id": entries[i].get("Id", ""), "Code": rule.code, "Message": rule.message,
             "SenderFault": "true" if rule.sender_fault else "false"} for i in failed_idx]

        def members(items: list[dict[str, str]]) -> str:
            return "".join("<member>" + "".join(f"<{k}>{_x(v)}</{k}>" for k, v in it.items())
                           + "</member>" for it in items)

        xml = (f'<PublishBatchResponse xmlns="{_SNS_NS}"><PublishBatchResult>'
               f"<Successful>{members(successful)}</Successful><Failed>{members(failed)}</Failed>"
               f"</PublishBatchResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
               f"</ResponseMetadata></PublishBatchResponse>")
        self._reply(200, [("Content-Type", "text/xml")], xml.encode())
        self._record("PublishBatch", "sns", len(entries), len(failed_idx), outcome)

    def _forward_or_relay(self, body: bytes, action: str, service: str, entries: int) -> bytes | None:
        """Forward the entries kept; on an upstream error relay that reply as is and return None."""
        status, headers, data = self._forward(body)
        if status != 200:
            self._reply(status, headers, data)
            self._record(action, service, entries, 0, "upstream-error")
            return None
        return data

    def _record(self, action: str, service: str, entries: int, failed: int, outcome: str) -> None:
        self.server.proxy._record(RecordedRequest(service, action, entries, failed, outcome))


def _x(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
