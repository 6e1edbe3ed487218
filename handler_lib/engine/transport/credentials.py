"""Credentials for the lean transport: what Lambda gives an extension, and nothing it would
have to guess.

- The environment's ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``):
  how Lambda hands the function's role to its extensions.
- The container credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` or ``_RELATIVE_URI``,
  with ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` or ``_TOKEN``): SnapStart and others. Fetched
  on first use and again 15 minutes before they expire; a failed refresh keeps the old ones
  while they have 10 minutes left (botocore's advisory and mandatory windows).

Anything else (a profile, a shared config or credentials file, web identity, a credential
process, credentials that expire from the environment, none at all) is botocore's:
``credential_source`` returns None and every service goes through botocore.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime
from typing import Callable, Mapping, NamedTuple, Optional
from urllib.parse import urlsplit

from .errors import CredentialsError

ADVISORY_REFRESH_S = 15 * 60
MANDATORY_REFRESH_S = 10 * 60
#: botocore's ContainerMetadataFetcher: 2 s a try, 3 tries, 1 s apart.
FETCH_TIMEOUT_S = 2.0
FETCH_ATTEMPTS = 3
FETCH_PAUSE_S = 1.0
ECS_HOST = "169.254.170.2"
#: Hosts a FULL_URI over plain HTTP may name (botocore's ContainerMetadataFetcher rules).
_ALLOWED_HTTP_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", ECS_HOST, "169.254.170.23", "fd00:ec2::23"})
#: Variables that make botocore look elsewhere than the environment's keys first, or read
#: files we do not parse: with any of them set, botocore decides.
_BOTOCORE_ONLY = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
                  "AWS_CREDENTIAL_EXPIRATION", "AWS_SECURITY_TOKEN")


class Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: Optional[str] = None


class CredentialSource:
    """Gives the credentials to sign with now (thread-safe)."""

    def get(self) -> Credentials:
        raise NotImplementedError


class StaticCredentials(CredentialSource):
    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def get(self) -> Credentials:
        return self._credentials


class ContainerCredentials(CredentialSource):
    """The container credentials endpoint, refreshed before expiry. ``fetch`` is injectable for
    tests; by default a GET with the authorization token, bounded by ``FETCH_TIMEOUT_S``."""

    def __init__(self, url: str, token: Optional[str] = None, token_file: Optional[str] = None,
                 fetch: Optional[Callable[[], bytes]] = None, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._token, self._token_file = token, token_file
        self._fetch = fetch or self._get
        self._clock = clock
        self._lock = threading.Lock()
        self._credentials: Optional[Credentials] = None
        self._expires = 0.0

    def get(self) -> Credentials:
        now = self._clock()
        credentials = self._credentials
        if credentials is not None and self._expires - now > ADVISORY_REFRESH_S:
            return credentials
        with self._lock:  # one refresh at a time; the others wait for it
            now = self._clock()
            if self._credentials is not None and self._expires - now > ADVISORY_REFRESH_S:
                return self._credentials
            try:
                self._credentials, self._expires = self._load()
            except CredentialsError:
                if self._credentials is None or self._expires - now <= MANDATORY_REFRESH_S:
                    raise
            return self._credentials

    def _load(self) -> "tuple[Credentials, float]":
        last: Exception = CredentialsError("no attempt")
        for attempt in range(FETCH_ATTEMPTS):
            if attempt:
                time.sleep(FETCH_PAUSE_S)
            try:
                return _parse(self._fetch())
            except CredentialsError as exc:
                last = exc
        raise CredentialsError(f"no credentials from {self.url}: {last}")

    def _get(self) -> bytes:
        import http.client  # only where the container provider is used

        headers = {"Accept": "application/json", "User-Agent": "lambda-defer"}
        token = self._read_token()
        if token:
            headers["Authorization"] = token
        parts = urlsplit(self.url)
        conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_class(parts.hostname or "", parts.port, timeout=FETCH_TIMEOUT_S)
        try:
            conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), headers=headers)
            reply = conn.getresponse()
            body = reply.read()
        except (OSError, http.client.HTTPException) as exc:
            raise CredentialsError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
        if reply.status != 200:
            raise CredentialsError(f"HTTP {reply.status}: {body[:200]!r}")
        return body

    def _read_token(self) -> Optional[str]:
        if self._token_file:  # read on every fetch: the platform rotates it
            try:
                with open(self._token_file, encoding="utf-8") as handle:
                    token = handle.read().strip()
            except OSError as exc:
                raise CredentialsError(f"cannot read {self._token_file}: {exc}") from exc
            if any(c in token for c in "\r\n"):
                raise CredentialsError("the authorization token holds a line break")
            return token
        return self._token


def _parse(body: bytes) -> "tuple[Credentials, float]":
    try:
        data = json.loads(body)
        credentials = Credentials(data["AccessKeyId"], data["SecretAccessKey"], data.get("Token") or None)
        expires = datetime.fromisoformat(str(data["Expiration"]).replace("Z", "+00:00")).timestamp()
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialsError(f"not a credentials reply ({type(exc).__name__}: {exc})") from exc
    return credentials, expires


def credential_source(environ: Mapping[str, str]) -> Optional[CredentialSource]:
    """Where the lean transport's credentials come from, or None: botocore's to find."""
    # A shared file may say more than credentials (a region, an endpoint, FIPS): botocore's.
    if any(environ.get(name) for name in _BOTOCORE_ONLY) or _shared_files(environ):
        return None
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return StaticCredentials(Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or None))
    if key or secret:
        return None  # half a key pair: botocore refuses it, and says why
    return _container(environ)


def _shared_files(environ: Mapping[str, str]) -> bool:
    """Whether a shared config or credentials file with anything in it is there to read."""
    home = environ.get("HOME") or os.path.expanduser("~")
    paths = (environ.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config"),
             environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, ".aws", "credentials"))
    for path in paths:
        try:
            if os.path.getsize(os.path.expanduser(path)) > 0:
                return True
        except OSError:
            continue
    return False


def _container(environ: Mapping[str, str]) -> Optional[CredentialSource]:
    relative, full = environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if relative:
        url = f"http://{ECS_HOST}{relative}"
    elif full:
        parts = urlsplit(full)
        if not (parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in _ALLOWED_HTTP_HOSTS)):
            return None  # botocore refuses such a host; let it say so
        url = full
    else:
        return None
    return ContainerCredentials(url, token=environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN") or None,
                                token_file=environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") or None)
