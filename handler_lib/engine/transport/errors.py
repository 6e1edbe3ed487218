"""The lean transport's exceptions, shaped like botocore's where the engine reads them.

``sinks.base.describe_exception`` reads ``exc.response`` (``Error.Code/Message/Type`` and
``ResponseMetadata.HTTPStatusCode``) and maps a class named ``ParamValidationError`` to a
request that was never sent, so every retry, throttle and dead-letter rule treats a lean
client's failure exactly as it treats botocore's. Anything else (``TransportError``,
``CredentialsError``) is a transport failure: backed off, no attempt used.

    Exception
    ├── ServiceError          the service answered with an error (``.response``)
    ├── TransportError        no answer (botocore's names and words, for the logs):
    │   ├── EndpointConnectionError   the connection could not be made
    │   ├── ConnectTimeoutError       ... within the connect timeout
    │   ├── ReadTimeoutError          no reply within the read timeout
    │   └── ConnectionClosedError     the connection closed before a whole reply
    ├── CredentialsError      the container credentials endpoint gave none
    └── ValueError
        └── ParamValidationError   a request refused before it was sent
"""

from __future__ import annotations

from typing import Any, Dict


class ServiceError(Exception):
    """An AWS error reply; ``response`` has botocore's ``ClientError.response`` shape."""

    def __init__(self, operation: str, response: Dict[str, Any]) -> None:
        error = response.get("Error") or {}
        super().__init__(f"An error occurred ({error.get('Code', 'Unknown')}) when calling the {operation} "
                         f"operation: {error.get('Message', 'Unknown')}")  # botocore's ClientError words
        self.operation_name = operation
        self.response = response


class TransportError(Exception):
    """The request got no reply (connection refused, reset or timed out, or a reply that is
    not HTTP): the engine's ``Defer.TransportError``, as botocore's connection errors are."""


class EndpointConnectionError(TransportError):
    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(f'Could not connect to the endpoint URL: "{url}" ({type(cause).__name__}: {cause})')


class ConnectTimeoutError(TransportError):
    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(f'Connect timeout on endpoint URL: "{url}"')


class ReadTimeoutError(TransportError):
    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(f'Read timeout on endpoint URL: "{url}"')


class ConnectionClosedError(TransportError):
    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(f'Connection was closed before we received a valid response from endpoint URL: "{url}" '
                         f"({type(cause).__name__}: {cause})")


class CredentialsError(Exception):
    """No credentials could be had from the container credentials endpoint."""


class ParamValidationError(ValueError):
    """A call's arguments that the service would refuse: raised before anything is sent (the
    name is botocore's, which ``describe_exception`` maps to ``Defer.InvalidRequest``)."""
