"""Wire-visible error types (one place) and the sandbox's exception tree.

SandboxError
 +-- SandboxConfigError     bad directories / handler / options, raised before anything runs
 +-- SandboxStartError      the servers could not start or init did not finish at start
 +-- SandboxStoppedError    the sandbox was stopped while a caller waited on it
"""
from __future__ import annotations

import json

__all__ = ["ErrorType", "SandboxError", "SandboxConfigError", "SandboxStartError", "SandboxStoppedError",
           "error_body"]


def error_body(error_type: str, message: str) -> bytes:
    """The JSON body Lambda answers an invoke that failed with."""
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class ErrorType:
    """`errorType` strings as Lambda and RIE put them on the wire."""

    MISSING_EXTENSION_ID = "Extension.MissingExtensionIdentifier"
    INVALID_EXTENSION_ID = "Extension.InvalidExtensionIdentifier"
    UNKNOWN_EXTENSION_ID = "Extension.UnknownExtensionIdentifier"
    INVALID_EXTENSION_NAME = "Extension.InvalidExtensionName"
    INVALID_EXTENSION_STATE = "Extension.InvalidExtensionState"
    INVALID_EVENT_TYPE = "Extension.InvalidEventType"
    REGISTRATION_CLOSED = "Extension.RegistrationClosed"
    TOO_MANY_EXTENSIONS = "Extension.TooManyExtensions"
    MISSING_HEADER = "Extension.MissingHeader"
    EXTENSION_CRASH = "Extension.Crash"
    EXTENSION_LAUNCH_ERROR = "Extension.LaunchError"
    EXTENSION_INIT_ERROR = "Extension.InitError"
    EXTENSION_EXIT_ERROR = "Extension.ExitError"
    INVALID_REQUEST_FORMAT = "InvalidRequestFormat"
    INVALID_REQUEST_ID = "InvalidRequestID"
    INVALID_STATE_TRANSITION = "InvalidStateTransition"
    ENTITY_TOO_LARGE = "RequestEntityTooLarge"
    RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
    RUNTIME_EXIT = "Runtime.ExitError"
    INVALID_ENTRYPOINT = "Runtime.InvalidEntrypoint"
    OUT_OF_MEMORY = "Runtime.OutOfMemory"
    RUNTIME_INIT_TIMEOUT = "Sandbox.InitTimeout"
    TIMED_OUT = "Sandbox.Timedout"
    STOPPED = "Sandbox.Stopped"
    VALIDATION = "ValidationError"
    SUBSCRIPTION_CLOSED = "Telemetry.SubscriptionClosed"
    INTERNAL = "InternalServerError"


class SandboxError(Exception):
    """Root of every exception the sandbox raises."""


class SandboxConfigError(SandboxError, ValueError):
    """The sandbox was given options it cannot run with."""


class SandboxStartError(SandboxError):
    """The sandbox could not start its servers or finish its first init."""


class SandboxStoppedError(SandboxError):
    """The sandbox stopped while a caller was waiting on it."""
