"""The ``defer`` object: the decorator for the handler and the enqueue calls.

``from handler_lib import defer`` loads this module alone: the dispatcher, the item checks
(and with them the wire codec, msgpack and the socket) load when ``@defer`` wraps the
handler or an enqueue comes first, ``@defer.task``'s machinery when it is first used, and
``typing`` only for the type checker (issue 22: each millisecond of this import is ~3.5 ms
of a 512 MB function's cold start).
"""

from __future__ import annotations

import functools
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy reads the name as True
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Literal, Mapping, Optional, Sequence, TypeVar, overload

    from . import _durable
    from . import _items
    from ._dispatch import DISPATCHER
    from ._tasks import P, R, Task

    H = TypeVar("H", bound=Callable[..., Any])
    F = TypeVar("F", bound=Callable[[], Any])  # a periodic hook
else:
    def overload(fn):  # only the type checker reads the overloads; the last definition stands
        return fn


_loading = False  # a first use began: _load ran, or runs, in some thread


def _load() -> None:
    """Bind the names the calls below use to the modules they stand for (once; idempotent)."""
    global _durable, _items, DISPATCHER, _loading
    _loading = True
    from . import _durable, _items
    from ._dispatch import DISPATCHER


def _finish_loading_before_fork() -> None:
    """A fork while another thread is inside the first use's imports would copy their module
    locks held: the child's first deferral would wait on them forever. The forking thread
    finishes them first (waiting for that thread's imports); a process that never used
    ``defer`` loads nothing here."""
    if _loading:
        _load()


os.register_at_fork(before=_finish_loading_before_fork)


class _OnFirstUse:
    """Stands for one of ``_load``'s names until the first use of any of them binds them all:
    from then on the calls look up the real module or object, at no cost per call."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr: str) -> Any:
        _load()
        return getattr(globals()[self._name], attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        _load()
        setattr(globals()[self._name], attr, value)


if not TYPE_CHECKING:
    _durable, _items, DISPATCHER = _OnFirstUse("_durable"), _OnFirstUse("_items"), _OnFirstUse("DISPATCHER")


class Defer:
    """Decorate the Lambda handler with ``@defer``; enqueue with ``defer.sqs/sns/event/call``.

    Every enqueue returns the item's id, which is also its idempotency key (the ``defer_id``
    String message attribute on SQS and SNS, which leaves 9 of the 10 attributes to you; the
    FIFO deduplication id when none is given; a ``defer_id`` field in EventBridge details that
    are dicts; ``defer_id=`` for tasks declared with ``pass_item_id=True``).

    Example
    -------
    >>> @defer
    ... def handler(event, context):
    ...     defer.sqs(QUEUE_URL, {"order_id": "o-1"})
    ...     return {"statusCode": 201}
    """

    def __call__(self, handler: H) -> H:
        if not callable(handler):
            raise TypeError(f"@defer wraps a Lambda handler function, not {type(handler).__name__}")
        _load()  # the wrapper below runs on every invoke: it finds the real names bound

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            if DISPATCHER.invoke is not None:
                # Called from inside an invoke (a router calling another @defer handler, post-
                # response work, an app call): it joins that invoke, which ends once, with it.
                return handler(event, context)
            _items.invoke_trace = os.environ.get(_items.ENV_TRACE_ID) or None
            lambda_context = _durable.lambda_context(context)  # under a DurableContext too
            _items.invoke_tenant = _items.tenant_of(lambda_context)
            # the context's clock: inline delivery at the invoke's end must stop before it does
            invoke = DISPATCHER.begin(getattr(lambda_context, "aws_request_id", "") or "",
                                      getattr(lambda_context, "get_remaining_time_in_millis", None))
            replay = _durable.watch(event, context)
            try:
                return handler(event, context)
            finally:
                _durable.unwatch(replay)
                try:
                    DISPATCHER.finish(invoke)
                finally:
                    _items.invoke_trace = _items.READ_AT_CALL
                    _items.invoke_tenant = None

        DISPATCHER.wrapped_handler()
        return wrapper  # type: ignore[return-value]

    @property
    def json_default(self) -> Optional[Callable[[Any], Any]]:
        """Encoder for your own types in JSON payloads: ``defer.json_default = fn``.

        Called for a value the built-in rules do not encode (they cover Decimal as its exact
        digits, datetime/date as ISO 8601, UUID as str, Enum as its value, dataclasses and
        pydantic models as objects); return something JSON can carry, or raise TypeError.
        One hook per process; ``None`` removes it.
        """
        return _items.json_default()

    @json_default.setter
    def json_default(self, fn: Optional[Callable[[Any], Any]]) -> None:
        _items.set_json_default(fn)

    def sqs(self, queue_url: str, message: Any, group_id: Optional[str] = None,
            dedup_id: Optional[str] = None, delay_seconds: Optional[int] = None,
            attributes: Optional[Mapping[str, Any]] = None) -> str:
        """Send ``message`` to an SQS queue after the response (SendMessageBatch); over
        ``DEFER_LARGE_PAYLOAD_THRESHOLD``, with a bucket set, by S3 (the claim check)."""
        return DISPATCHER.submit(_items.sqs_item(
            DISPATCHER.request_id, queue_url, message, group_id=group_id, dedup_id=dedup_id,
            delay_seconds=delay_seconds, attributes=attributes,
            offload_above=DISPATCHER.config.offload_above(_items.SQS_MAX_MESSAGE_BYTES)))

    def sns(self, topic_arn: str, message: Any, subject: Optional[str] = None,
            attributes: Optional[Mapping[str, Any]] = None, group_id: Optional[str] = None,
            dedup_id: Optional[str] = None) -> str:
        """Publish ``message`` to an SNS topic after the response (PublishBatch); over
        ``DEFER_LARGE_PAYLOAD_THRESHOLD``, with a bucket set, by S3 (the claim check)."""
        return DISPATCHER.submit(_items.sns_item(
            DISPATCHER.request_id, topic_arn, message, subject=subject, group_id=group_id,
            dedup_id=dedup_id, attributes=attributes,
            offload_above=DISPATCHER.config.offload_above(_items.SNS_MAX_MESSAGE_BYTES)))

    def event(self, detail_type: str, detail: Any, source: str, bus: Optional[str] = None,
              resources: Optional[Sequence[str]] = None) -> str:
        """Put an EventBridge event after the response (PutEvents); ``bus`` defaults to "default"."""
        return DISPATCHER.submit(_items.event_item(
            DISPATCHER.request_id, detail_type, detail, source=source, bus=bus, resources=resources))

    def invoke(self, function: str, payload: Any, qualifier: Optional[str] = None,
               durable_name: Optional[str] = None, tenant_id: Optional[str] = None) -> str:
        """Invoke a Lambda function asynchronously after the response (Invoke, InvocationType=Event).

        The request carries DurableExecutionName: ``durable_name``, or this item's id, so a
        durable function started twice by a retried delivery runs once. Pass ``durable_name``
        for a durable function to have its 256 KB input limit checked here (1 MB otherwise).
        """
        from . import _workflow_items  # loaded by the first call: most handlers never make one

        return DISPATCHER.submit(_workflow_items.invoke_item(
            DISPATCHER.request_id, function, payload, qualifier=qualifier, durable_name=durable_name,
            tenant_id=tenant_id))

    def sfn(self, state_machine_arn: str, input: Any, name: Optional[str] = None) -> str:
        """Start a Step Functions execution after the response (StartExecution).

        ``name`` defaults to this item's id: a second delivery of the item starts nothing new.
        """
        from . import _workflow_items

        return DISPATCHER.submit(_workflow_items.sfn_item(DISPATCHER.request_id, state_machine_arn, input, name=name))

    def callback(self, callback_id: str, result: Any = None, error: Any = None) -> str:
        """Complete a durable function's callback after the response: with ``result``
        (SendDurableExecutionCallbackSuccess) or, given ``error``, as failed (...Failure)."""
        from . import _workflow_items

        return DISPATCHER.submit(_workflow_items.callback_item(DISPATCHER.request_id, callback_id, result, error))

    def every(self, seconds: float, *, jitter: float = 0.0, run_first: bool = False) -> Callable[[F], F]:
        """Run a module-level function after a response, at most once per ``seconds``: the
        function's own upkeep (refresh a secret, a cache, a pool) that no request should wait
        for. It runs in this process as ``defer.after`` work does, never during a request;
        ``jitter`` (seconds, up to ``seconds``) spreads environments' runs; ``run_first`` runs
        it after the first response too. A run that raises is logged and counted, and the
        hook runs again at its next interval."""
        from . import _hooks

        return _hooks.every(seconds, jitter=jitter, run_first=run_first)

    def call(self, task: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        """Run a ``@defer.task`` after the response; the same as ``task.defer(*args, **kwargs)``."""
        from ._tasks import Task, task_options

        if not isinstance(task, Task) or task_options(task) is None:
            name = getattr(task, "__qualname__", repr(task))
            raise ValueError(f"defer.call needs a function decorated with @defer.task; {name} is not one")
        return task.defer(*args, **kwargs)

    def after(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` in this process after the response has gone to the caller.

        Any callable: a closure over a DB session, a bound method, a client's flush. The
        defer-runner extension keeps the environment from freezing until it has finished, up
        to the invoke's deadline minus ``DEFER_DEADLINE_MARGIN_MS``; work still running then is
        frozen with the environment and resumes at its next thaw (the extension logs it).
        Without the extension (inline mode, or none listening) it runs before the handler
        returns. Raises ``RuntimeError`` outside an invoke of a ``@defer`` handler.
        """
        DISPATCHER.after(fn, args, kwargs)

    def asgi(self, app: Any, **mangum_options: Any) -> Callable[[Any, Any], Dict[str, Any]]:
        """A ``@defer`` Lambda handler for an ASGI app (FastAPI, Starlette) that answers before its BackgroundTasks.

        ``handler = defer.asgi(app)``. Mangum (``pip install 'lambda-defer[asgi]'``) translates
        API Gateway REST/HTTP, ALB and function URL events; ``mangum_options`` go to it
        (``api_gateway_base_path``, ``text_mime_types``, ``exclude_headers``, ``custom_handlers``),
        and ``lifespan`` ("auto", "on", "off") says whether lifespan startup runs, once per
        environment. The response goes out as soon as the app has sent it; the rest of the
        app call runs after it, like ``defer.after`` work, and ``defer.*`` works in routes and
        background tasks.
        """
        from ._asgi import AsgiHandler  # on demand: Mangum stays out of handlers that do not use it

        return self(AsgiHandler(app, **mangum_options))

    def change(self, table: str, event_name: str, keys: Mapping[str, Any],
               new_image: Optional[Mapping[str, Any]] = None, old_image: Optional[Mapping[str, Any]] = None,
               *, target: Any) -> str:
        """Defer one DynamoDB-Streams-shaped change record, for databases without SQLAlchemy."""
        from ._change_targets import defer_change  # on demand; needs no SQLAlchemy

        return defer_change(table, event_name, keys, new_image, old_image, target=target)

    @overload
    def task(self, fn: Callable[P, R]) -> Task[P, R]: ...

    @overload
    def task(self, *, max_attempts: Optional[int] = None, timeout: Optional[float] = None,
             pass_item_id: Literal[True], queue: Optional[str] = None) -> Callable[[Callable[..., R]], Task[..., R]]: ...

    @overload
    def task(self, *, max_attempts: Optional[int] = None, timeout: Optional[float] = None,
             pass_item_id: Literal[False] = False,
             queue: Optional[str] = None) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, fn: Any = None, *, max_attempts: Optional[int] = None,
             timeout: Optional[float] = None, pass_item_id: bool = False,
             queue: Optional[str] = None) -> Any:
        """Mark a module-level function as deferrable: ``@defer.task`` or ``@defer.task(max_attempts=3, timeout=10.0)``.

        With ``queue`` (an SQS queue URL) each ``.defer()`` sends the call there, after the
        response, and ``handler_lib.worker.handler`` runs it in the function that queue feeds:
        work too long for the response window scales with Lambda instead.

        With ``pass_item_id=True`` the runner passes ``defer_id``, so ``.defer()`` takes the
        other arguments only; Python's types cannot say "the function's parameters less one
        keyword", so such a task's ``.defer()`` is checked at the call, at run time, instead.
        """
        from ._tasks import make_task  # loaded by the first @defer.task

        if queue is not None:
            from ._task_queue import check_queue_url  # at the decorator's line, before any function

            check_queue_url(queue)
        if fn is not None:
            return make_task(fn, max_attempts=max_attempts, timeout=timeout, pass_item_id=pass_item_id,
                             queue=queue)
        return functools.partial(make_task, max_attempts=max_attempts, timeout=timeout,
                                 pass_item_id=pass_item_id, queue=queue)


defer = Defer()
