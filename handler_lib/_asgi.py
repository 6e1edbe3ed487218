"""ASGI apps (FastAPI, Starlette) as Lambda handlers that answer before their background work (``defer.asgi``).

Mangum alone runs the whole app call inside the invoke, so Starlette's BackgroundTasks, which
run after the response inside the same call, hold the response back. Here Mangum only
translates: the event to an ASGI scope, the response back to the event source's shape.

The app runs on one event loop per process, in a daemon thread started by the first invoke;
lifespan startup runs there once, before the first request. Lifespan shutdown is never sent:
at the end of an environment the runtime gets at most a SIGTERM and 300 ms, while its main
thread waits in awslambdaric's native ``next``, where a Python signal handler may not get to run;
the state dies with the process.

Each invoke's app call is a task on that loop. The handler waits until the app has sent the
complete response (the ``http.response.body`` without ``more_body``), returns it, and hands
the rest of the call (the BackgroundTasks) to ``defer.after``: the extension keeps the
environment thawed until the call has ended, and the invoke's end marker goes after it.
An app that raises before its response is complete answers 500, as under Mangum; one that
raises after it is logged and counted like any failing ``defer.after``. That holds for what is
not an ``Exception`` too (``asyncio.CancelledError``, ``SystemExit``, ``KeyboardInterrupt``),
as Mangum catches ``BaseException``: none of them may leave the app call's task, because asyncio
lets ``SystemExit`` and ``KeyboardInterrupt`` out of a task through the loop itself, which would
stop it (and every later request with it). After the response one is reported as
``AppCallEnded``, an ``Exception`` whose cause is the original, so that ``defer.after`` logs it
with its traceback and counts it. Should one still reach the loop (from a task the app started
and never awaited), the loop thread logs it and runs the loop again.

Which invoke does a ``defer.*`` call belong to? Each app call sets its invoke in a context
variable (``_invoke.TASK_INVOKE``) as its task starts. asyncio copies a task's context into
every task it creates, and Starlette (through anyio) into the worker threads of sync routes
and sync background tasks; so a route, its BackgroundTasks and whatever they start defer into
the invoke of the request they serve. That holds when invokes overlap: on Lambda Managed
Instances nothing is frozen and a worker process takes its next request as soon as it has
answered, so the next app call may run on the same loop while the previous call's
BackgroundTasks still run; each keeps deferring into its own invoke, whose end marker waits
for its own call only. (On-demand Lambda holds the next invoke until then. awslambdaric forks
its Managed Instances workers before importing the handler, and the loop starts at the first
invoke, so each worker has its own.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import Any, Dict, List, MutableMapping, Optional, TypedDict

from ._dispatch import DISPATCHER
from ._invoke import TASK_INVOKE, Invoke

log = logging.getLogger("handler_lib")

LIFESPAN_MODES = ("auto", "on", "off")
ASGI_VERSION = {"version": "3.0", "spec_version": "2.0"}


class AppResponse(TypedDict):
    """Mangum's Response (``mangum.types.Response``), which its handlers turn into the reply."""

    status: int
    headers: List[List[bytes]]
    body: bytes


INTERNAL_ERROR: AppResponse = {"status": 500, "headers": [[b"content-type", b"text/plain; charset=utf-8"]],
                               "body": b"Internal Server Error"}


class AppCall:
    """One request through the app: the ASGI channels, and the response once it is complete."""

    def __init__(self, scope: MutableMapping[str, Any], body: bytes) -> None:
        self.scope = scope
        self.body: Optional[bytes] = body  # None once the app has received it
        self.response: "concurrent.futures.Future[AppResponse]" = concurrent.futures.Future()
        self._status = 0
        self._headers: List[Any] = []
        self._chunks: List[bytes] = []
        self._disconnect: Optional[asyncio.Event] = None

    async def run(self, app: Any, invoke: Optional[Invoke]) -> None:
        TASK_INVOKE.set(invoke)  # this task's context: what it and its children defer goes here
        self._disconnect = asyncio.Event()
        try:
            await app(self.scope, self._receive, self._send)
        except BaseException as exc:  # noqa: BLE001 - none may leave the task (see the module doc)
            if self.response.done():  # after the response: the waiting post-response work reports it
                if isinstance(exc, Exception):
                    raise
                raise AppCallEnded(f"the ASGI app raised {type(exc).__name__} after its response") from exc
            log.exception("lambda-defer: the ASGI app raised %s before its response was complete", type(exc).__name__)
            self.response.set_result(INTERNAL_ERROR)
            return
        if not self.response.done():
            log.error("lambda-defer: the ASGI app returned without a complete response")
            self.response.set_result(INTERNAL_ERROR)

    async def _receive(self) -> Dict[str, Any]:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._disconnect.wait()  # type: ignore[union-attr]
        return {"type": "http.disconnect"}

    async def _send(self, message: Dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self._status:
            self._status = message["status"]
            self._headers = list(message.get("headers", []))
        elif kind == "http.response.body" and self._status and not self.response.done():
            self._chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.response.set_result({"status": self._status, "headers": self._headers,
                                          "body": b"".join(self._chunks)})
                self._disconnect.set()  # type: ignore[union-attr]
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} (response {'sent' if self.response.done() else 'open'})")


class AppCallEnded(RuntimeError):
    """The app call raised what is not an ``Exception`` after its response (the ``__cause__``)."""


def rest_of_the_app_call(call: "concurrent.futures.Future[None]") -> None:
    """Post-response work: wait for the app call (its BackgroundTasks) to end; raise what it raised."""
    call.result()


class LifespanFailed(RuntimeError):
    """The app said its lifespan startup failed: it cannot serve in this environment."""


class AppLoop:
    """The process's event loop for the app, in its own thread, with lifespan startup run once."""

    def __init__(self, app: Any, lifespan: str) -> None:
        self.app = app
        self.lifespan = lifespan
        self.state: Dict[str, Any] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._started: "concurrent.futures.Future[None]" = concurrent.futures.Future()
        self._lifespan_task: Optional["asyncio.Future[None]"] = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, after lifespan startup; a failed startup raises here on every invoke."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=self._serve, args=(loop,), name="defer-asgi-loop", daemon=True).start()
                self._started = asyncio.run_coroutine_threadsafe(self._startup(), loop)
                self._loop = loop
        self._started.result()
        return self._loop

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop thread; its frame holds this object, so the lifespan task lives as long as the loop.

        asyncio lets a task's ``SystemExit`` or ``KeyboardInterrupt`` out of ``run_forever``
        (the task keeps it as its result); nothing here stops the loop otherwise, so it is run
        again: the requests that follow, and the app calls still running, are served."""
        while True:
            try:
                loop.run_forever()
                return
            except (SystemExit, KeyboardInterrupt):  # the only ones asyncio lets out of a task or callback
                log.exception("lambda-defer: a task on the ASGI app's event loop raised; the loop goes on")

    async def _startup(self) -> None:
        if self.lifespan == "off":
            return
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        messages: asyncio.Queue[Dict[str, Any]] = asyncio.Queue()
        messages.put_nowait({"type": "lifespan.startup"})  # shutdown is never sent (see the module doc)

        async def send(message: Dict[str, Any]) -> None:
            if started.done():
                return
            if message["type"] == "lifespan.startup.complete":
                started.set_result(None)
            elif message["type"] == "lifespan.startup.failed":
                started.set_exception(LifespanFailed(f"ASGI lifespan startup failed: {message.get('message', '')}"))

        async def run() -> None:
            scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
            try:
                await self.app(scope, messages.get, send)
            except BaseException as exc:  # noqa: BLE001 - an app without lifespan support raises here
                if not started.done():
                    if not isinstance(exc, Exception):  # awaited, it would leave the task: see the module doc
                        wrapped = RuntimeError(f"the ASGI app's lifespan raised {type(exc).__name__}: {exc}")
                        wrapped.__cause__ = exc
                        exc = wrapped
                    started.set_exception(exc)
                elif started.exception() is None:
                    log.exception("lambda-defer: the ASGI app's lifespan raised")

        self._lifespan_task = asyncio.ensure_future(run())  # held: a task nobody holds may be collected
        try:
            await started
        except LifespanFailed:
            raise
        except Exception:  # noqa: BLE001 - raised before any lifespan message: not supported
            if self.lifespan == "on":
                raise
            log.info("lambda-defer: the ASGI app does not support lifespan; running without it",
                     exc_info=True)


class AsgiHandler:
    """``handler(event, context)`` for an ASGI app; ``defer.asgi`` wraps it in ``@defer``."""

    def __init__(self, app: Any, lifespan: str = "auto", **mangum_options: Any) -> None:
        try:
            from mangum import Mangum
        except ImportError as exc:
            raise ImportError("defer.asgi translates events with Mangum: "
                              "pip install 'lambda-defer[asgi]'") from exc
        if lifespan not in LIFESPAN_MODES:
            raise ValueError(f"defer.asgi lifespan must be one of {', '.join(LIFESPAN_MODES)}, not {lifespan!r}")
        if not callable(app):
            raise TypeError(f"defer.asgi needs an ASGI app, not {type(app).__name__}")
        self._events = Mangum(app, lifespan="off", **mangum_options)  # translation only
        self._app = AppLoop(app, lifespan)

    def __call__(self, event: Any, context: Any) -> Dict[str, Any]:
        adapter = self._events.infer(event, context)
        loop = self._app.loop()
        scope = adapter.scope
        if self._app.state:
            scope["state"] = dict(self._app.state)  # each request gets its own shallow copy
        call = AppCall(scope, adapter.body)
        running = asyncio.run_coroutine_threadsafe(call.run(self._app.app, DISPATCHER.invoke), loop)
        either: List["concurrent.futures.Future[Any]"] = [call.response, running]
        concurrent.futures.wait(either, return_when=concurrent.futures.FIRST_COMPLETED)
        if call.response.done():
            response = call.response.result()
        else:  # the task ended without running the app call (cancelled before its first step)
            log.error("lambda-defer: the ASGI app call ended without a response")
            response = INTERNAL_ERROR
        # Cancelled only before its first step (run() catches everything after): nothing ran, nothing to report.
        ended_cleanly = running.done() and (running.cancelled() or running.exception() is None)
        if not ended_cleanly:
            DISPATCHER.after(rest_of_the_app_call, (running,), {})
        return adapter(response)
