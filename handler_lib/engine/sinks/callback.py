"""Durable callback adapter: SendDurableExecutionCallbackSuccess, or ...Failure for an error."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from ... import wire

from .single import SingleCallSink


class CallbackSink(SingleCallSink):
    service = "lambda"
    max_batch_bytes = 1_048_576

    def entry_size(self, item: wire.CallbackItem) -> int:
        return len((item.result or "").encode()) + sum(len(str(v).encode()) for v in (item.error or {}).values())

    def request(self, item: wire.CallbackItem) -> Tuple[str, Dict[str, Any]]:
        if item.error is not None:
            return "send_durable_execution_callback_failure", {"CallbackId": item.callback_id, "Error": item.error}
        arguments: Dict[str, Any] = {"CallbackId": item.callback_id}
        if item.result is not None:
            arguments["Result"] = item.result.encode()
        return "send_durable_execution_callback_success", arguments
