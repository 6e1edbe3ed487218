"""Lambda Invoke adapter: an asynchronous invoke (InvocationType=Event) per item.

Every request carries DurableExecutionName (the caller's name, or the item id shaped to the
name's rules): starting a durable function twice under one name starts one execution, so
the engine's at-least-once delivery becomes exactly-once starts. A function that is not
durable and refuses the parameter gets the request again without it, once, and is then
remembered as such in this process; a name the caller gave is never dropped (the letter says
why instead).
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Set, Tuple

from ... import wire

from .base import describe_exception
from .single import SingleCallSink

NAME_PARAMETER = "DurableExecutionName"
# What a refusal of the parameter looks like: a validation error that speaks of durability.
_REFUSAL_CODES = frozenset({"InvalidParameterValueException", "InvalidRequestContentException",
                            "ValidationException"})


class LambdaInvokeSink(SingleCallSink):
    service = "lambda"
    max_batch_bytes = 1_048_576

    def __init__(self, client_factory: Any) -> None:
        super().__init__(client_factory)
        self._not_durable: Set[str] = set()  # targets that refused the name
        self._names_lock = threading.Lock()

    def entry_size(self, item: wire.InvokeItem) -> int:
        return len(item.payload.encode())

    def request(self, item: wire.InvokeItem) -> Tuple[str, Dict[str, Any]]:
        arguments: Dict[str, Any] = {"FunctionName": item.function, "InvocationType": "Event",
                                     "Payload": item.payload.encode()}
        if item.qualifier is not None:
            arguments["Qualifier"] = item.qualifier
        if item.tenant_id is not None:
            arguments["TenantId"] = item.tenant_id
        if item.durable_name is not None and (item.durable or item.target not in self._not_durable):
            arguments[NAME_PARAMETER] = item.durable_name
        return "invoke", arguments

    def entry(self, item: Any, entry_id: str) -> Dict[str, Any]:
        entry = super().entry(item, entry_id)
        entry["target"], entry["named"] = item.target, item.durable
        return entry

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        try:
            return super().call(target, entries)
        except Exception as exc:  # noqa: BLE001 - anything but a refused name goes on up
            (entry,) = entries
            if entry["named"] or NAME_PARAMETER not in entry["arguments"] or not _refuses_name(exc):
                raise
            with self._names_lock:
                self._not_durable.add(entry["target"])
            entry["arguments"] = {k: v for k, v in entry["arguments"].items() if k != NAME_PARAMETER}
            return super().call(target, entries)


def _refuses_name(exc: BaseException) -> bool:
    code, message, _ = describe_exception(exc)
    return code in _REFUSAL_CODES and "durable" in message.lower()
