from handler_lib import defer

import jobs


@defer
def handler(event, context):
    """Each call is [task name, day, *args]."""
    return {"ids": [getattr(jobs, name).defer(*args) for name, *args in event["calls"]]}
