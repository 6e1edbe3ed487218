"""The lean clients: one call path (validate, write, sign, send, read) and three thin shapes.

Each client has the method names, keyword arguments and reply dicts of the botocore client the
sinks would otherwise call (``send_message_batch``, ``send_message``, ``publish_batch``,
``put_events``), and fails as it would (``errors``), so a sink cannot tell them apart, except
that SNS's ``publish_batch`` takes ``extra_headers``: the plain way to send the batch's
``X-Amzn-Trace-Id``, where botocore needs a ``before-sign`` hook.
"""

from __future__ import annotations

import ssl
import sys
import threading
from typing import Any, Dict, Mapping, Optional

from . import endpoints, shapes
from .credentials import CredentialSource, credential_source
from .errors import ParamValidationError
from .http import ConnectionPool, tls_context
from .protocols import JsonProtocol, Protocol, QueryProtocol
from .signing import Scope, sign

#: The services a lean client exists for.
LEAN_SERVICES = frozenset(endpoints.SERVICES)
USER_AGENT = "lambda-defer/lean-transport Python/%d.%d.%d" % sys.version_info[:3]
#: Proxy variables botocore honours (urllib's getproxies): with one set, botocore decides.
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class LeanClient:
    """What the three clients share: the endpoint, credentials and connections, and ``_call``."""

    service: str
    protocol: Protocol
    lean = True  # ClientFactory.uses_botocore tells the two kinds apart by it

    def __init__(self, endpoint: endpoints.Endpoint, credentials: CredentialSource, pool: ConnectionPool) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.pool = pool
        self._scope = Scope(endpoint.region, self.service)

    def _call(self, operation: str, shape: shapes.Shape, params: Dict[str, Any],
              result: Optional[shapes.Shape] = None, extra_headers: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        shapes.validate(shape, params)
        headers, body = self.protocol.request(operation, shape, params)
        headers["Host"] = self.endpoint.host_header
        headers.update(sign("POST", "/", "", headers, body, self.credentials.get(), self._scope))
        headers["User-Agent"] = USER_AGENT
        taken = {name.lower() for name in headers}
        for name, value in (extra_headers or {}).items():  # unsigned, as botocore's hook leaves them
            if name.lower() in taken or any(c in value for c in "\r\n") or not name.replace("-", "").isalnum():
                raise ParamValidationError(f"extra header {name!r}: already set, not a header name, or its value "
                                           "holds a line break")
            headers[name] = value
        return self.protocol.reply(operation, self.pool.request("POST", "/", headers, body), result)


class SqsClient(LeanClient):
    service = "sqs"
    protocol = JsonProtocol("1.0", "AmazonSQS", query_compatible=True)

    def send_message_batch(self, **params: Any) -> Dict[str, Any]:
        return self._call("SendMessageBatch", shapes.SEND_MESSAGE_BATCH, params)

    def send_message(self, **params: Any) -> Dict[str, Any]:
        return self._call("SendMessage", shapes.SEND_MESSAGE, params)


class SnsClient(LeanClient):
    service = "sns"
    protocol = QueryProtocol("2010-03-31")
    #: ``publish_batch`` takes ``extra_headers`` (sinks.sns sends the trace header with it).
    accepts_extra_headers = True

    def publish_batch(self, *, extra_headers: Optional[Mapping[str, str]] = None, **params: Any) -> Dict[str, Any]:
        return self._call("PublishBatch", shapes.PUBLISH_BATCH, params, shapes.PUBLISH_BATCH_RESULT, extra_headers)


class EventsClient(LeanClient):
    service = "events"
    protocol = JsonProtocol("1.1", "AWSEvents")

    def put_events(self, **params: Any) -> Dict[str, Any]:
        return self._call("PutEvents", shapes.PUT_EVENTS, params)


_CLIENTS = {cls.service: cls for cls in (SqsClient, SnsClient, EventsClient)}


class LeanTransport:
    """The lean clients of one environment: its credentials and TLS set-up, shared."""

    def __init__(self, environ: Mapping[str, str], credentials: CredentialSource, pool_size: int) -> None:
        self._environ = dict(environ)
        self.credentials = credentials
        self.pool_size = pool_size
        self._tls: Optional[ssl.SSLContext] = None
        self._lock = threading.Lock()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pool_size: int) -> Optional["LeanTransport"]:
        """The lean transport this environment allows, or None (botocore for every service)."""
        if any(environ.get(name) for name in _PROXY_VARIABLES):
            return None
        credentials = credential_source(environ)
        return None if credentials is None else cls(environ, credentials, pool_size)

    def client(self, service: str) -> Optional[LeanClient]:
        """A new lean client for ``service``, or None where its endpoint is botocore's to resolve."""
        endpoint = endpoints.resolve(service, self._environ) if service in _CLIENTS else None
        if endpoint is None:
            return None
        tls = self.tls() if endpoint.scheme == "https" else None
        return _CLIENTS[service](endpoint, self.credentials, ConnectionPool(endpoint, self.pool_size, tls))

    def tls(self) -> ssl.SSLContext:
        """One TLS context for every connection (loading the CA bundle is the costly part)."""
        with self._lock:
            if self._tls is None:
                self._tls = tls_context(self._environ.get("AWS_CA_BUNDLE") or None)
            return self._tls

    def warm(self) -> None:
        """What the first call would do first: the TLS context and the credentials (the
        container endpoint's fetch), so the SDK loader does it off the drain."""
        if any((endpoints.resolve(s, self._environ) or endpoints.Endpoint("http", "", None, "")).scheme == "https"
               for s in _CLIENTS):
            self.tls()
        self.credentials.get()


def lean_client(service: str, environ: Mapping[str, str], pool_size: int) -> Optional[LeanClient]:
    """A lean client for ``service`` in ``environ``, or None: botocore's."""
    transport = LeanTransport.from_environ(environ, pool_size)
    return None if transport is None else transport.client(service)
