"""Step Functions StartExecution adapter, named by the item (its id unless the caller named it).

A standard state machine answers a second start under the same name and input with the
running execution, or, once it has closed, with ExecutionAlreadyExists; it answers
ExecutionAlreadyExists too when another input took the name. Under the item's own name (its
id, the default) no other input can have it: the execution this item asked for exists, so the
item is delivered. Under a name the caller gave, the execution's input is read back
(DescribeExecution) and the item counts as delivered only if it is this item's; otherwise,
or if it cannot be read, the refusal stands and the item is dead-lettered with it.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from ... import wire

from .base import describe_exception
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

    def entry(self, item: wire.SfnItem, entry_id: str) -> Dict[str, Any]:
        return {**super().entry(item, entry_id), "own_name": item.name == item.id}

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        (entry,) = entries
        arguments = entry["arguments"]
        try:
            response: Dict[str, Any] = self.client.start_execution(**arguments)
        except Exception as exc:  # noqa: BLE001 - base.send maps whatever is not "already done"
            if describe_exception(exc)[0] not in self.already_done \
                    or not (entry.get("own_name") or self._holds_this_input(arguments)):
                raise
            return {}
        return response

    def _holds_this_input(self, arguments: Dict[str, Any]) -> bool:
        """Whether the execution under a name the caller gave runs this item's input."""
        arn = arguments["stateMachineArn"].replace(":stateMachine:", ":execution:", 1) + ":" + arguments["name"]
        try:
            running = self.client.describe_execution(executionArn=arn)
            return bool(json.loads(running.get("input", "null")) == json.loads(arguments["input"]))
        except Exception:  # noqa: BLE001 - unreadable (no permission, gone): the refusal stands
            return False
