"""defer.asgi when the app raises a BaseException that is not an Exception (review finding 13).

``asyncio.CancelledError``, ``SystemExit`` and ``KeyboardInterrupt`` raised by the app before
its response must end the invoke with a 500 (what Mangum answers for any exception), be logged
with their traceback, and leave the app's loop serving the next requests; raised after the
response (in BackgroundTasks), they are reported by the post-response work as an ``Exception``
whose cause is the original, and the loop goes on too.

Every handler call runs on a daemon thread joined with a bound: before the fix these invokes
hung forever.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable, Dict

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from handler_lib import defer
from handler_lib.testing import capture
from tests.asgi.test_asgi_handler import Context, http_event
from tests.support.waiting import wait_until

BOUND_S = 15  # generous: a shared 2-core machine; the failure mode is a hang, not slowness

BASE_EXCEPTIONS = [asyncio.CancelledError, SystemExit, KeyboardInterrupt]


def bounded(fn: Callable[[], Any], what: str) -> Any:
    """fn(), or a failed test if it does not return (or raise) within BOUND_S."""
    out: Dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    thread = threading.Thread(target=run, name=what, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    if thread.is_alive():  # pytest.fail: not an Exception, so no `except Exception` below takes it
        pytest.fail(f"{what} did not end within {BOUND_S} s")
    if "error" in out:
        raise out["error"]
    return out["value"]


def call(handler: Any, path: str, request_id: str, method: str = "GET") -> Dict[str, Any]:
    """The handler's reply to one request."""
    return bounded(lambda: handler(http_event(method, path), Context(request_id)),  # type: ignore[no-any-return]
                   f"the invoke {request_id} ({method} {path})")


def run_after(deferred: Any) -> Any:
    """The captured post-response work, run here (it waits for the rest of the app call)."""
    return bounded(deferred.run_after, "the post-response work")


def app_with(raising: type) -> Starlette:
    """/raise: the route raises `raising`; /late: it raises in a BackgroundTask after the response;
    /ok: a plain answer."""

    async def raise_now(request):
        raise raising("route")

    def raise_later() -> None:  # sync: Starlette runs it in a worker thread
        raise raising("background")

    async def late(request):
        return PlainTextResponse("late ok", background=BackgroundTask(raise_later))

    async def ok(request):
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/raise", raise_now), Route("/late", late), Route("/ok", ok)])


def logged_with_traceback(caplog: pytest.LogCaptureFixture, exc_type: type) -> bool:
    return any(r.exc_info and r.exc_info[0] is exc_type and r.exc_info[2] is not None for r in caplog.records)


@pytest.mark.parametrize("raising", BASE_EXCEPTIONS, ids=lambda t: t.__name__)
def test_a_raw_app_raising_it_before_responding_answers_500_and_the_next_requests_work(raising, caplog):
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])
        if scope["path"] == "/raise":
            raise raising("before any response")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"fine"})

    handler = defer.asgi(app, lifespan="off")
    caplog.set_level(logging.ERROR, logger="handler_lib")
    with capture() as deferred:
        assert call(handler, "/raise", "req-1")["statusCode"] == 500
        assert run_after(deferred) in ([], [None])  # reported once, as the 500
        for n in range(2, 4):
            reply = call(handler, "/ok", f"req-{n}")
            assert reply["statusCode"] == 200 and reply["body"] == "fine"
    assert calls == ["/raise", "/ok", "/ok"]
    assert logged_with_traceback(caplog, raising), [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("raising", BASE_EXCEPTIONS, ids=lambda t: t.__name__)
def test_a_starlette_route_raising_it_answers_500_and_the_next_requests_work(raising, caplog):
    handler = defer.asgi(app_with(raising), lifespan="off")
    caplog.set_level(logging.ERROR, logger="handler_lib")
    with capture() as deferred:
        assert call(handler, "/raise", "req-1")["statusCode"] == 500
        try:
            run_after(deferred)  # whatever is reported after the response is an Exception
        except Exception:  # noqa: BLE001
            pass
        assert call(handler, "/ok", "req-2")["body"] == "ok"
        assert call(handler, "/raise", "req-3")["statusCode"] == 500  # again, and again served after
        assert call(handler, "/ok", "req-4")["body"] == "ok"
    assert logged_with_traceback(caplog, raising)


@pytest.mark.parametrize("raising", BASE_EXCEPTIONS, ids=lambda t: t.__name__)
def test_a_background_task_raising_it_after_the_response_is_reported_as_an_exception(raising):
    handler = defer.asgi(app_with(raising), lifespan="off")
    with capture() as deferred:
        reply = call(handler, "/late", "req-1")
        assert reply["statusCode"] == 200 and reply["body"] == "late ok"
        # The post-response work (the rest of the app call) raises an Exception, which
        # defer.after logs and counts; a BaseException would escape its handling.
        with pytest.raises(Exception) as raised:
            run_after(deferred)
        assert isinstance(raised.value.__cause__, raising)
        assert raised.value.__cause__.__traceback__ is not None
        assert call(handler, "/ok", "req-2")["body"] == "ok"


@pytest.mark.parametrize("raising", [SystemExit, KeyboardInterrupt], ids=lambda t: t.__name__)
def test_a_detached_task_raising_it_on_the_apps_loop_does_not_stop_the_loop(raising, caplog):
    """asyncio re-raises SystemExit and KeyboardInterrupt out of the loop itself: the loop must
    go on serving, and say what happened."""
    fired = threading.Event()

    async def explode() -> None:
        fired.set()
        raise raising("from a task nobody awaits")

    async def spawn(request):
        request.app.state.spawned = asyncio.ensure_future(explode())
        return PlainTextResponse("spawned")

    async def ok(request):
        return PlainTextResponse("ok")

    handler = defer.asgi(Starlette(routes=[Route("/spawn", spawn), Route("/ok", ok)]), lifespan="off")
    caplog.set_level(logging.ERROR, logger="handler_lib")
    with capture():
        assert call(handler, "/spawn", "req-1")["body"] == "spawned"
        assert fired.wait(BOUND_S)
        wait_until(lambda: logged_with_traceback(caplog, raising), BOUND_S,
                   message="the loop did not log what stopped it")
        for n in range(2, 4):
            assert call(handler, "/ok", f"req-{n}")["body"] == "ok"


@pytest.mark.parametrize("raising", BASE_EXCEPTIONS, ids=lambda t: t.__name__)
def test_a_lifespan_raising_it_does_not_hang_the_invokes(raising):
    """auto: an app whose lifespan raises before any message runs without lifespan (as with an
    Exception); on: every invoke fails with the lifespan's error instead of waiting forever."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            raise raising("no lifespan here")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"fine"})

    with capture():
        assert call(defer.asgi(app), "/", "req-auto")["body"] == "fine"
        strict = defer.asgi(app, lifespan="on")
        for n in range(2):
            with pytest.raises(RuntimeError, match=raising.__name__):
                call(strict, "/", f"req-on-{n}")
