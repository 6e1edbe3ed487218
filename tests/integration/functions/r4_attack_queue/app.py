from handler_lib import defer

import fifo_jobs


@defer
def handler(event, context):
    """Each call is [task name, *args]."""
    return {"ids": [getattr(fifo_jobs, name).defer(*args) for name, *args in event["calls"]]}
