"""AWS destinations. Each adapter is thin; batching, retries and accounting are shared."""

from typing import Dict

from .base import MakeClient, Sink
from .callback import CallbackSink
from .events import EventsSink
from .lambda_invoke import LambdaInvokeSink
from .sns import SnsSink
from .sqs import SqsSink
from .stepfunctions import StepFunctionsSink

__all__ = ["MakeClient", "CallbackSink", "EventsSink", "LambdaInvokeSink", "Sink", "SnsSink", "SqsSink",
           "StepFunctionsSink", "make_sinks"]


def make_sinks(client_factory: MakeClient) -> Dict[str, Sink]:
    """One sink per work-item kind."""
    return {"sqs": SqsSink(client_factory), "sns": SnsSink(client_factory),
            "event": EventsSink(client_factory), "invoke": LambdaInvokeSink(client_factory),
            "sfn": StepFunctionsSink(client_factory), "callback": CallbackSink(client_factory)}
