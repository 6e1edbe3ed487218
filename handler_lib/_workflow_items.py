"""Build the items of ``defer.invoke/sfn/callback``, or fail at the call site.

Lambda async invoke, Step Functions StartExecution and durable callbacks hand work to
something that outlives the request. Every rule the services state (name formats, lengths,
payload limits) is checked here, so bad input raises where it entered and nothing is queued.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Mapping, Optional

from . import wire
from ._ids import new_id
from . import _items
from ._items import TENANT_ID, _refuse_constant, _trace, _utf8_len, now_us, to_text

#: Lambda: "1 MB for asynchronous invocations"; a durable execution's input: 256 KB.
INVOKE_MAX_PAYLOAD_BYTES = 1_048_576
DURABLE_MAX_PAYLOAD_BYTES = 262_144
DURABLE_NAME_MAX_CHARS = 64
SFN_MAX_INPUT_BYTES = 262_144
SFN_NAME_MAX_CHARS = 80
SFN_ARN_MAX_CHARS = 256
SFN_TRACE_MAX_CHARS = 256
CALLBACK_ID_MAX_CHARS = 1024
CALLBACK_MAX_BYTES = 1_048_576
TENANT_ID_MAX_CHARS = 256

# Invoke's FunctionName (botocore's model): a name, a partial ARN or an ARN, maybe with a
# version or alias; the name itself up to 64 characters, the whole up to 256.
_FUNCTION = re.compile(
    r"(?:arn:aws[a-zA-Z-]*:lambda:)?(?:(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d:)?(?:\d{12}:)?"
    r"(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?")
_QUALIFIER = re.compile(r"\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_$-]{1,128}")
_DURABLE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_SFN_ARN = re.compile(r"arn:aws[a-zA-Z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[^:\s\ud800-\udfff]+"
                     r"(?::[^:\s\ud800-\udfff]+)?")
# Step Functions names: no white space, brackets, wildcards, the listed punctuation or control
# characters; nor a lone surrogate, which no request can carry, nor the non-characters U+FFFE
# and U+FFFF, which Step Functions refuses.
_SFN_NAME_REFUSED = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_CALLBACK_ID = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_ERROR_FIELDS = ("ErrorMessage", "ErrorType", "ErrorData", "StackTrace")


def durable_name_for(item_id: str) -> str:
    """An item id shaped to DurableExecutionName's rules (1-64 of ``[A-Za-z0-9_-]``)."""
    return _NOT_NAME_CHAR.sub("_", item_id)[:DURABLE_NAME_MAX_CHARS] or "_"


def _json_text(value: Any, what: str) -> str:
    """A dict, list, dataclass or model as JSON; a str must already be JSON text."""
    text = to_text(value, what)
    if isinstance(value, str):
        try:
            json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise ValueError(f"{what} is a str but not JSON text ({exc}); pass a dict or JSON text") from None
    return text


def _size(text: str, what: str) -> int:
    try:
        return _utf8_len(text)
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid Unicode: a lone surrogate at position {exc.start}") from None


def _function(function: Any, qualifier: Optional[str]) -> None:
    if not isinstance(function, str) or not function:
        raise TypeError(f"function must be a non-empty str (a name or ARN), not {function!r}")
    match = _FUNCTION.fullmatch(function)
    if match is None or len(function) > 256 or len(match.group("name")) > 64:
        raise ValueError(f"{function!r} is not a Lambda function name or ARN (a name is up to 64 of "
                         "A-Z a-z 0-9 - _ .; an ARN arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER])")
    if qualifier is not None:
        if not isinstance(qualifier, str) or not _QUALIFIER.fullmatch(qualifier):
            raise ValueError(f"qualifier {qualifier!r} is not a version or alias (1-128 of A-Z a-z 0-9 - _ $)")
        if match.group("qualifier") is not None:
            raise ValueError(f"{function!r} already names a version or alias; drop qualifier={qualifier!r}")


def invoke_item(request_id: str, function: Any, payload: Any, *, qualifier: Optional[str],
                durable_name: Optional[str], tenant_id: Optional[str]) -> wire.InvokeItem:
    _function(function, qualifier)
    named = durable_name is not None
    if named and (not isinstance(durable_name, str) or not _DURABLE_NAME.fullmatch(durable_name)):
        raise ValueError(f"durable_name must be 1-{DURABLE_NAME_MAX_CHARS} of A-Z a-z 0-9 - _, not {durable_name!r}")
    if tenant_id is None:
        tenant_id = _items.invoke_tenant  # the invoke's own, under tenant isolation
    elif tenant_id == "":
        tenant_id = None  # told otherwise: no TenantId (a function without tenant isolation)
    elif not isinstance(tenant_id, str) or not re.fullmatch(TENANT_ID, tenant_id):
        raise ValueError(f"tenant_id must be 1-{TENANT_ID_MAX_CHARS} of A-Z a-z 0-9 . _ : / = + - @ and space, "
                         f"not {tenant_id!r}")
    text = _json_text(payload, "invoke payload")
    limit = DURABLE_MAX_PAYLOAD_BYTES if named else INVOKE_MAX_PAYLOAD_BYTES
    size = _size(text, "invoke payload")
    if size > limit:
        kind = "a durable execution's input" if named else "an asynchronous invoke's payload"
        raise ValueError(f"invoke payload is {size} bytes; {kind} is limited to {limit}")
    item_id = new_id()
    return wire.InvokeItem(item_id, request_id, now_us(), function, text, qualifier,
                           durable_name if named else durable_name_for(item_id), tenant_id, named)


def sfn_item(request_id: str, state_machine_arn: Any, input: Any, *, name: Optional[str]) -> wire.SfnItem:
    if not isinstance(state_machine_arn, str) or not state_machine_arn:
        raise TypeError(f"state_machine_arn must be a non-empty str, not {state_machine_arn!r}")
    if len(state_machine_arn) > SFN_ARN_MAX_CHARS or not _SFN_ARN.fullmatch(state_machine_arn):
        raise ValueError(f"{state_machine_arn!r} is not a state machine ARN "
                         "(arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= SFN_NAME_MAX_CHARS
                             or _SFN_NAME_REFUSED.search(name)):
        raise ValueError(f"name must be 1-{SFN_NAME_MAX_CHARS} characters without white space, brackets, "
                         f"wildcards, control characters, surrogates or any of \" # % \\ ^ | ~ ` $ & , ; : /, not {name!r}")
    text = _json_text(input, "Step Functions input")
    size = _size(text, "Step Functions input")
    if size > SFN_MAX_INPUT_BYTES:
        raise ValueError(f"Step Functions input is {size} bytes; StartExecution allows {SFN_MAX_INPUT_BYTES}")
    trace = _trace()
    if trace is not None and len(trace) > SFN_TRACE_MAX_CHARS:
        trace = None  # StartExecution would refuse it; the execution matters more than its trace
    item_id = new_id()
    return wire.SfnItem(item_id, request_id, now_us(), state_machine_arn, text, name or item_id, trace)


def _error(error: Any) -> Dict[str, Any]:
    """The callback failure's Error structure, from a str, an exception or a dict of its fields."""
    if isinstance(error, str):
        shaped: Dict[str, Any] = {"ErrorMessage": error}
    elif isinstance(error, BaseException):
        shaped = {"ErrorType": type(error).__name__, "ErrorMessage": str(error)}
    elif isinstance(error, Mapping):
        unknown = set(error) - set(_ERROR_FIELDS)
        if unknown:
            raise ValueError(f"error has fields {sorted(map(str, unknown))}; it takes {', '.join(_ERROR_FIELDS)}")
        shaped = dict(error)
        for key, value in shaped.items():
            if key == "StackTrace":
                if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise TypeError("error's StackTrace must be a list of str")
            elif not isinstance(value, str):
                raise TypeError(f"error's {key} must be a str, not {type(value).__name__}")
    else:
        raise TypeError(f"error must be a str, an exception or a dict of {', '.join(_ERROR_FIELDS)}, "
                        f"not {type(error).__name__}")
    size = sum(_size(v, "error") for v in shaped.values() if isinstance(v, str))
    size += sum(_size(v, "error") for v in shaped.get("StackTrace") or ())
    if size > CALLBACK_MAX_BYTES:
        raise ValueError(f"error is {size} bytes; a callback failure's fields are limited to {CALLBACK_MAX_BYTES}")
    return shaped


def callback_item(request_id: str, callback_id: Any, result: Any, error: Any) -> wire.CallbackItem:
    if not isinstance(callback_id, str) or not callback_id:
        raise TypeError(f"callback_id must be a non-empty str, not {callback_id!r}")
    if len(callback_id) > CALLBACK_ID_MAX_CHARS or not _CALLBACK_ID.fullmatch(callback_id):
        raise ValueError(f"callback_id is not a durable callback id (1-{CALLBACK_ID_MAX_CHARS} characters of "
                         "base64: A-Z a-z 0-9 + / and = padding)")
    if error is not None:
        if result is not None:
            raise ValueError("a callback completes with a result or fails with an error, not both")
        return wire.CallbackItem(new_id(), request_id, now_us(), callback_id, None, _error(error))
    text = None if result is None else _json_text(result, "callback result")
    if text is not None and _size(text, "callback result") > CALLBACK_MAX_BYTES:
        raise ValueError(f"callback result is over {CALLBACK_MAX_BYTES} bytes, the limit of "
                         "SendDurableExecutionCallbackSuccess")
    return wire.CallbackItem(new_id(), request_id, now_us(), callback_id, text, None)
