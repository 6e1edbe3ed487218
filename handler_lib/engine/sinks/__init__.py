"""AWS destinations. Each adapter is thin; batching, retries and accounting are shared."""

from typing import Dict

from .base import MakeClient, Sink
from .events import EventsSink
from .sns import SnsSink
from .sqs import SqsSink

__all__ = ["MakeClient", "EventsSink", "Sink", "SnsSink", "SqsSink", "make_sinks"]


def make_sinks(client_factory: MakeClient) -> Dict[str, Sink]:
    """One sink per work-item kind."""
    return {"sqs": SqsSink(client_factory), "sns": SnsSink(client_factory),
            "event": EventsSink(client_factory)}
