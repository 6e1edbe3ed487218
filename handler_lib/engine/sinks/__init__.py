"""AWS destinations. Each adapter is thin; batching, retries and accounting are shared."""

from typing import Dict, Optional

from ...config import Config
from .base import MakeClient, Sink
from .callback import CallbackSink
from .claim_check import ClaimCheck
from .events import EventsSink
from .lambda_invoke import LambdaInvokeSink
from .sns import SnsSink
from .sqs import SqsSink
from .stepfunctions import StepFunctionsSink

__all__ = ["MakeClient", "CallbackSink", "ClaimCheck", "EventsSink", "LambdaInvokeSink", "Sink", "SnsSink", "SqsSink",
           "StepFunctionsSink", "make_sinks"]


def make_sinks(client_factory: MakeClient, config: Optional[Config] = None) -> Dict[str, Sink]:
    """One sink per work-item kind; SQS and SNS with the claim check ``config`` asks for."""
    claim_check = ClaimCheck.configured(config, client_factory) if config is not None else None
    return {"sqs": SqsSink(client_factory, claim_check), "sns": SnsSink(client_factory, claim_check),
            "event": EventsSink(client_factory), "invoke": LambdaInvokeSink(client_factory),
            "sfn": StepFunctionsSink(client_factory), "callback": CallbackSink(client_factory)}
