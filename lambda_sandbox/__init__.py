"""A local AWS Lambda execution environment that behaves like production where RIE does not:
the caller gets the response as soon as the runtime posts it, the Telemetry API is
delivered, and the environment is frozen (SIGSTOP) between invokes.

Runs the real awslambdaric runtime and the layer's external extensions. Not shipped in
the layer; used by tests, `make demo`, and `python -m lambda_sandbox`.
"""
from .errors import ErrorType, SandboxConfigError, SandboxError, SandboxStartError, SandboxStoppedError
from .events import InvokeEvent, ShutdownEvent, TelemetryEvent, parse_extension_event
from .logsink import LogLine
from .report import Report
from .sandbox import InvokeResult, Sandbox

__all__ = [
    "Sandbox", "InvokeResult", "Report", "LogLine", "TelemetryEvent", "InvokeEvent", "ShutdownEvent",
    "parse_extension_event", "ErrorType", "SandboxError", "SandboxConfigError", "SandboxStartError",
    "SandboxStoppedError",
]
