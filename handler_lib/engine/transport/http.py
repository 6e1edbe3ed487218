"""A keep-alive connection pool over ``http.client``, with bounded timeouts.

Connections are kept per endpoint (at most ``size`` idle ones, ``DEFER_CONCURRENCY`` or more,
so that every batch call in flight finds one), connect within ``CONNECT_TIMEOUT_S`` (TLS
handshake included) and wait at most ``READ_TIMEOUT_S`` for each read: botocore's settings in
the engine. A request that fails on its connection without a reply (a keep-alive connection
the server or a SnapStart restore dropped, a refused connect) is sent once more on a new
connection, as botocore's ``total_max_attempts: 2`` would; a timeout or a TLS failure is not
retried here. The errors have botocore's names and words (``errors``), for the logs.
Every other retry is the engine's, per entry and bounded by the invoke's deadline.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from typing import Dict, List, Mapping, NamedTuple, Optional

from .endpoints import Endpoint, split_host
from .errors import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0


class Reply(NamedTuple):
    status: int
    headers: Dict[str, str]  # names in lower case
    body: bytes


def tls_context(ca_bundle: Optional[str] = None) -> ssl.SSLContext:
    """Verification against ``ca_bundle`` (AWS_CA_BUNDLE), else certifi's, as botocore does,
    else the system's."""
    if ca_bundle is None:
        try:
            import certifi  # botocore's own default; a small module

            ca_bundle = certifi.where()
        except ImportError:
            ca_bundle = None
    return ssl.create_default_context(cafile=ca_bundle)


class ConnectionPool:
    """Connections to one endpoint, shared by threads; each request holds one connection."""

    def __init__(self, endpoint: Endpoint, size: int, tls: Optional[ssl.SSLContext] = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S, read_timeout: float = READ_TIMEOUT_S) -> None:
        if endpoint.scheme == "https" and tls is None:
            raise ValueError("an https endpoint needs a TLS context")
        self.endpoint = endpoint
        self.size = max(1, size)
        self._tls = tls
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Send one request and read its whole reply; raise a ``TransportError`` without one."""
        url = self.endpoint.url + path
        for attempt in (1, 2):
            conn = self._take()
            try:
                self._connect(conn)
            except socket.timeout as exc:  # socket.timeout is TimeoutError
                raise ConnectTimeoutError(url, exc) from exc
            except (OSError, ssl.SSLError) as exc:
                if attempt == 2 or isinstance(exc, ssl.SSLError):
                    raise EndpointConnectionError(url, exc) from exc
                continue
            try:
                return self._exchange(conn, method, path, headers, body)
            except socket.timeout as exc:
                conn.close()
                raise ReadTimeoutError(url, exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if attempt == 2:
                    raise ConnectionClosedError(url, exc) from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        host, port = split_host(self.endpoint)
        if self.endpoint.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self._connect_timeout, context=self._tls)
        return http.client.HTTPConnection(host, port, timeout=self._connect_timeout)

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self, conn: http.client.HTTPConnection) -> None:
        """A new connection, within the connect timeout (TLS included); a kept one as it is."""
        if conn.sock is None:
            try:
                conn.connect()
            except BaseException:
                conn.close()
                raise
            assert conn.sock is not None
            conn.sock.settimeout(self._read_timeout)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _exchange(self, conn: http.client.HTTPConnection, method: str, path: str,
                  headers: Mapping[str, str], body: bytes) -> Reply:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        if response.will_close:
            conn.close()
        else:
            self._give_back(conn)
        return reply

