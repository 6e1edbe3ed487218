"""AWS Signature Version 4 with ``hmac`` and ``hashlib`` (the part of botocore a call needs).

The rules are AWS's (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html)
as botocore's ``SigV4Auth`` applies them to these services: every header is signed but the
hop-by-hop and tracing ones botocore leaves out (``UNSIGNED_HEADERS``), values are trimmed
with inner runs of spaces folded, and the payload hash is the body's SHA-256. The signing key
changes once a day per region and service; it is kept (``SigningKeys``).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import quote

from .credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
#: Headers botocore never signs (auth.SIGNED_HEADERS_BLACKLIST): a proxy may change them, and
#: X-Amzn-Trace-Id goes on after signing.
UNSIGNED_HEADERS = frozenset({"baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
                              "proxy-authorization", "te", "traceparent", "tracestate", "trailer",
                              "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"})


class Scope(NamedTuple):
    """Who signs for what: the credential scope's region and service."""

    region: str
    service: str


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """The day's key: HMAC chain over the date, region, service and ``aws4_request``."""
    key = _hmac(("AWS4" + secret).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


class SigningKeys:
    """The signing keys of the current day, by secret, region and service (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: Dict[Tuple[str, str, str, str], bytes] = {}

    def get(self, secret: str, day: str, region: str, service: str) -> bytes:
        wanted = (secret, day, region, service)
        key = self._keys.get(wanted)
        if key is None:
            key = signing_key(secret, day, region, service)
            with self._lock:
                if len(self._keys) > 16:  # days and rotated secrets pass; a handful is all in use
                    self._keys.clear()
                self._keys[wanted] = key
        return key


def canonical_query(query: str) -> str:
    """The query string with its parameters sorted, each side URI-encoded once."""
    if not query:
        return ""
    pairs: List[Tuple[str, str]] = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        pairs.append((quote(name, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def sign(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
         credentials: Credentials, scope: Scope, now: Optional[float] = None,
         keys: Optional[SigningKeys] = None) -> Dict[str, str]:
    """The headers to add to a request: ``X-Amz-Date``, ``X-Amz-Security-Token`` (temporary
    credentials) and ``Authorization``. ``headers`` must hold ``Host`` as it is sent."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    day = stamp[:8]
    added = {"X-Amz-Date": stamp}
    if credentials.token:
        added["X-Amz-Security-Token"] = credentials.token
    signed: Dict[str, str] = {}
    for name, value in (*headers.items(), *added.items()):
        lower = name.lower()
        if lower not in UNSIGNED_HEADERS:
            signed[lower] = " ".join(value.split())
    names = sorted(signed)
    canonical = "\n".join((method, quote(path or "/", safe="/~"), canonical_query(query),
                           "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names),
                           hashlib.sha256(body).hexdigest()))
    credential_scope = f"{day}/{scope.region}/{scope.service}/aws4_request"
    to_sign = "\n".join((ALGORITHM, stamp, credential_scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()))
    key = (keys or _KEYS).get(credentials.secret_key, day, scope.region, scope.service)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    added["Authorization"] = (f"{ALGORITHM} Credential={credentials.access_key}/{credential_scope}, "
                              f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return added


_KEYS = SigningKeys()
