"""The lean transport's connections and container credentials, against real servers on
loopback: keep-alive reuse and its bound, the read timeout, one quick retry for a connection
the server dropped, and the container credentials endpoint (token, refresh before expiry, a
failed refresh) down to the signed request moto receives."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest

from handler_lib.engine.outcome import TRANSPORT
from handler_lib.engine.sinks.base import describe_exception
from handler_lib.engine.transport.clients import LeanTransport
from handler_lib.engine.transport.credentials import ContainerCredentials
from handler_lib.engine.transport.endpoints import Endpoint
from handler_lib.engine.transport.errors import CredentialsError, TransportError
from handler_lib.engine.transport.http import ConnectionPool


class Server:
    """An HTTP/1.1 server on loopback that counts connections; ``mode`` says how it answers."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.connections = 0
        self.requests: List[Any] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                outer.connections += 1

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(dict(self.headers))
                if outer.mode == "silent":
                    time.sleep(3)
                    return
                if outer.mode == "slow":
                    time.sleep(0.2)
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if outer.mode == "drop":  # keep-alive promised, then the connection is gone
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.endpoint = Endpoint("http", "127.0.0.1", self.http.server_address[1], "us-east-1")
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def post(pool: ConnectionPool) -> int:
    return pool.request("POST", "/", {"Host": pool.endpoint.host_header}, b"{}").status


def test_calls_reuse_kept_connections_at_most_the_pools_size(server: Server) -> None:
    server.mode = "slow"
    pool = ConnectionPool(server.endpoint, size=4)
    with ThreadPoolExecutor(8) as threads:
        assert list(threads.map(lambda _: post(pool), range(8))) == [200] * 8
    assert server.connections == 8  # eight at once: eight connections ...
    assert len(pool._idle) == 4  # ... of which the pool keeps its size
    server.mode = "ok"
    for _ in range(20):
        assert post(pool) == 200
    assert server.connections == 8  # kept connections are reused, none made


def test_a_reply_that_never_comes_is_a_transport_error_after_the_read_timeout(server: Server) -> None:
    server.mode = "silent"
    pool = ConnectionPool(server.endpoint, size=2, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TransportError) as raised:
        post(pool)
    assert time.monotonic() - started < 2.0
    assert len(server.requests) == 1  # a timeout is not sent again
    assert type(raised.value).__name__ == "ReadTimeoutError"
    assert describe_exception(raised.value)[0] == TRANSPORT


def test_a_dropped_keep_alive_connection_is_retried_once_on_a_new_one(server: Server) -> None:
    server.mode = "drop"
    pool = ConnectionPool(server.endpoint, size=2)
    for _ in range(3):
        assert post(pool) == 200  # each call finds its kept connection dropped, and retries
    assert server.connections >= 3


def test_a_refused_connection_is_a_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    pool = ConnectionPool(Endpoint("http", "127.0.0.1", port, "us-east-1"), size=1)
    with pytest.raises(TransportError) as raised:
        post(pool)
    assert type(raised.value).__name__ == "EndpointConnectionError"  # botocore's name, for the logs
    assert describe_exception(raised.value) == (TRANSPORT, f"EndpointConnectionError: {raised.value}", False)


class CredentialsServer:
    """A container credentials endpoint: each answer expires ``ttl_s`` after it is given."""

    def __init__(self, ttl_s: float = 3600) -> None:
        self.ttl_s = ttl_s
        self.clock = time.time  # the time its answers expire from
        self.fail = False
        self.seen: List[Optional[str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.seen.append(self.headers.get("Authorization"))
                if outer.fail:
                    self.send_error(500)
                    return
                n = len(outer.seen)
                expires = dt.datetime.fromtimestamp(outer.clock() + outer.ttl_s, dt.timezone.utc)
                body = json.dumps({"AccessKeyId": f"ASIA{n}", "SecretAccessKey": "s", "Token": f"token-{n}",
                                   "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/creds"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def creds_server() -> Iterator[CredentialsServer]:
    s = CredentialsServer()
    yield s
    s.close()


def test_container_credentials_are_fetched_once_and_refreshed_before_expiry(creds_server, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    now = [time.time()]
    creds_server.clock = lambda: now[0]
    source = ContainerCredentials(creds_server.url, token_file=str(token_file), clock=lambda: now[0])
    assert source.get().access_key == "ASIA1" and source.get().token == "token-1"
    assert creds_server.seen == ["first-token"]  # once, with the file's token
    token_file.write_text("rotated-token")
    now[0] += 3600 - 14 * 60  # 14 minutes before expiry: inside the refresh window
    assert source.get().access_key == "ASIA2"
    assert creds_server.seen[-1] == "rotated-token"  # the file is read again at each fetch
    # a failed refresh keeps credentials that have more than 10 minutes left ...
    monkeypatch.setattr("handler_lib.engine.transport.credentials.FETCH_PAUSE_S", 0.01)
    creds_server.fail = True
    now[0] += 3600 - 14 * 60  # 14 minutes left: a refresh is due, and fails
    assert source.get().access_key == "ASIA2"
    # ... and raises for credentials about to expire
    now[0] += 5 * 60
    with pytest.raises(CredentialsError):
        source.get()


def test_requests_are_signed_with_the_containers_credentials(creds_server, moto_endpoint: str, fault_proxy,
                                                             aws_resources) -> None:
    # GIVEN no keys in the environment, only the container endpoint (as after a SnapStart restore)
    res = aws_resources()
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": creds_server.url, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "tok",
           "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": fault_proxy.endpoint_url,
           "HOME": "/nonexistent"}
    transport = LeanTransport.from_environ(env, 10)
    assert transport is not None
    client = transport.client("sqs")
    assert client is not None
    # WHEN a batch is sent
    reply = client.send_message_batch(QueueUrl=res.queue_url, Entries=[{"Id": "0", "MessageBody": "b"}])
    # THEN it was signed with the container's key and carried its session token
    assert [e["Id"] for e in reply["Successful"]] == ["0"]
    ((headers, _),) = fault_proxy.raw_requests("SendMessageBatch")
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIA1/")
    assert headers["X-Amz-Security-Token"] == "token-1"
    assert creds_server.seen == ["tok"]
