"""A Starlette app served by defer.asgi, for the sandbox: async work after the response, and a failure there."""

import asyncio
import os
import time

from starlette.applications import Starlette
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.responses import JSONResponse
from starlette.routing import Route

from handler_lib import defer


async def slow_then_defer(tag: str, started: float) -> None:
    await asyncio.sleep(0.5)  # on the app's loop, after the response
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"tag": tag, "from": "task", "after_s": round(time.time() - started, 3)})


def broken(tag: str) -> None:
    raise ValueError(f"background task failed on purpose ({tag})")


async def order(request):
    tag = request.path_params["tag"]
    started = time.time()
    defer.after(lambda: defer.sqs(os.environ["TEST_QUEUE_URL"], {"tag": tag, "from": "after"}))
    tasks = BackgroundTasks([BackgroundTask(slow_then_defer, tag, started)])
    if request.query_params.get("fail"):
        tasks.add_task(broken, tag)
    return JSONResponse({"tag": tag}, status_code=201, background=tasks)


handler = defer.asgi(Starlette(routes=[Route("/orders/{tag}", order, methods=["POST"])]))
