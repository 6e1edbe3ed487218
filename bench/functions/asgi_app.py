"""The ASGI benchmark's app: a FastAPI route with a 200 ms BackgroundTask, served two ways.

- ``mangum_handler``  plain Mangum: the app call, background task included, ends before the response.
- ``defer_handler``   ``defer.asgi``: the response first, the task after it, in the same invoke.
"""

import time

from fastapi import BackgroundTasks, FastAPI
from handler_lib import defer
from mangum import Mangum

app = FastAPI()


def slow_work(order_id: str) -> None:
    time.sleep(0.2)


@app.post("/orders", status_code=201)
def create_order(background_tasks: BackgroundTasks) -> dict:
    background_tasks.add_task(slow_work, "o-1")
    return {"id": "o-1"}


mangum_handler = Mangum(app, lifespan="off")
defer_handler = defer.asgi(app, lifespan="off")
