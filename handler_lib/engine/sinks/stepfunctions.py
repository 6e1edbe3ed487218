"""Step Functions StartExecution adapter, named by the item (its id unless the caller named it).

A standard state machine answers a second start under the same name and input with the
running execution, or, once it has closed, with ExecutionAlreadyExists: either way the
execution this item asked for exists, so the item is delivered, not failed.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from ... import wire

from .single import SingleCallSink


class StepFunctionsSink(SingleCallSink):
    service = "stepfunctions"
    max_batch_bytes = 262_144
    already_done = frozenset({"ExecutionAlreadyExists"})

    def entry_size(self, item: wire.SfnItem) -> int:
        return len(item.input.encode())

    def request(self, item: wire.SfnItem) -> Tuple[str, Dict[str, Any]]:
        arguments: Dict[str, Any] = {"stateMachineArn": item.state_machine_arn, "name": item.name,
                                     "input": item.input}
        if item.trace:
            arguments["traceHeader"] = item.trace
        return "start_execution", arguments
