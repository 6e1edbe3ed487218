"""defer.asgi in this process, under capture(): what it answers, when, and where defer.* goes."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from handler_lib import defer
from handler_lib.testing import capture
from tests.support.waiting import wait_until

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"


@dataclass
class Context:
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def http_event(method: str, path: str, body: str = "") -> dict:
    """A Lambda function URL / HTTP API (payload 2.0) event."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {"host": "x.lambda-url.us-east-1.on.aws", "content-type": "application/json"},
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "203.0.113.1", "userAgent": "t"},
                               "requestId": "r", "routeKey": "$default", "stage": "$default"},
            "body": body, "isBase64Encoded": False}


def tagged_app():
    """POST /t/{tag}: defers one message in the route, one in a BackgroundTask that waits for a gate."""
    app = FastAPI()
    gates: dict[str, threading.Event] = {}
    started: dict[str, float] = {}

    def slow(tag: str) -> None:  # a sync task: Starlette runs it in a worker thread
        started[tag] = time.monotonic()
        assert gates.setdefault(tag, threading.Event()).wait(5)
        defer.sqs(QUEUE, {"tag": tag, "from": "task"})

    @app.post("/t/{tag}")
    async def route(tag: str, background_tasks: BackgroundTasks) -> dict:
        defer.sqs(QUEUE, {"tag": tag, "from": "route"})
        background_tasks.add_task(slow, tag)
        return {"tag": tag}

    return app, gates, started


def test_answers_before_the_background_task_and_defers_into_the_right_invoke():
    app, gates, started = tagged_app()
    handler = defer.asgi(app, lifespan="off")
    with capture() as deferred:
        first = handler(http_event("POST", "/t/one"), Context("req-1"))
        assert first["statusCode"] == 200 and json.loads(first["body"]) == {"tag": "one"}
        wait_until(lambda: "one" in started, 5, message="the first background task did not start")
        # The next invoke arrives while the first's task still runs (Managed Instances).
        second = handler(http_event("POST", "/t/two"), Context("req-2"))
        assert json.loads(second["body"]) == {"tag": "two"}
        gates["two"] = threading.Event()
        gates["two"].set()
        gates["one"].set()
        deferred.run_after()  # waits for the rest of both app calls
    by_request = {(json.loads(i.body)["tag"], json.loads(i.body)["from"]): i.request_id for i in deferred.sqs}
    assert by_request == {("one", "route"): "req-1", ("one", "task"): "req-1",
                          ("two", "route"): "req-2", ("two", "task"): "req-2"}


def test_an_app_error_before_the_response_is_a_500_and_after_it_raises_in_the_post_response_work():
    async def boom(request):
        raise ValueError("before")

    def late_failure() -> None:
        raise ValueError("after the response")

    async def late(request):
        from starlette.background import BackgroundTask

        return PlainTextResponse("ok", background=BackgroundTask(late_failure))

    async def raw_boom(scope, receive, send):  # no error middleware: nothing was sent
        raise ValueError("before")

    app = Starlette(routes=[Route("/boom", boom), Route("/late", late)])
    with capture() as deferred:
        assert defer.asgi(raw_boom, lifespan="off")(http_event("GET", "/"), Context("req-r"))["statusCode"] == 500
        assert deferred.run_after() in ([], [None])  # reported once, as a 500: nothing raises after it
        handler = defer.asgi(app, lifespan="off")
        # Starlette answers 500 itself and re-raises: reported like work failing after the response.
        assert handler(http_event("GET", "/boom"), Context("req-b"))["statusCode"] == 500
        with pytest.raises(ValueError, match="before"):
            deferred.run_after()
        reply = handler(http_event("GET", "/late"), Context("req-l"))
        assert reply["statusCode"] == 200 and reply["body"] == "ok"
        with pytest.raises(ValueError, match="after the response"):
            deferred.run_after()


def test_lifespan_startup_runs_once_and_its_state_reaches_requests():
    from contextlib import asynccontextmanager

    startups = []

    @asynccontextmanager
    async def lifespan(app):
        startups.append(time.monotonic())
        yield {"greeting": "hello"}

    async def hello(request):
        return PlainTextResponse(request.state.greeting)

    handler = defer.asgi(Starlette(routes=[Route("/", hello)], lifespan=lifespan))
    with capture():
        bodies = [handler(http_event("GET", "/"), Context(f"req-{n}"))["body"] for n in range(3)]
    assert bodies == ["hello"] * 3 and len(startups) == 1


def test_a_failed_lifespan_startup_fails_every_invoke_with_the_apps_message():
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        raise ConnectionError("no database")
        yield

    handler = defer.asgi(Starlette(lifespan=lifespan))
    with capture():
        for n in range(2):
            with pytest.raises(RuntimeError, match="(?s)lifespan startup failed: .*no database"):
                handler(http_event("GET", "/"), Context(f"req-{n}"))


def test_bad_arguments_are_refused_where_they_are_given():
    with pytest.raises(ValueError, match="lifespan must be one of"):
        defer.asgi(FastAPI(), lifespan="sometimes")
    with pytest.raises(TypeError, match="needs an ASGI app"):
        defer.asgi("app")
