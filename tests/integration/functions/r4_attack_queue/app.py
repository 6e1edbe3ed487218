from handler_lib import defer

import chain_jobs
import fifo_jobs


@defer
def handler(event, context):
    """Each call is [task name, *args]; the task is fifo_jobs' or chain_jobs'."""
    tasks = {**vars(fifo_jobs), **vars(chain_jobs)}
    return {"ids": [tasks[name].defer(*args) for name, *args in event["calls"]]}
