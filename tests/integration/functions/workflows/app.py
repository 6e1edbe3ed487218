"""A function for the fault battery on the workflow targets: defers numbered invokes,
Step Functions starts and callbacks, as the event asks."""

import os

from handler_lib import defer


@defer
def handler(event, context):
    ids = []
    for n in range(event.get("invoke", 0)):
        ids.append(defer.invoke(event["function"], {"tag": event["tag"], "n": n}))
    for n in range(event.get("sfn", 0)):
        ids.append(defer.sfn(event["state_machine"], {"tag": event["tag"], "n": n}))
    for callback_id in event.get("callbacks", []):
        ids.append(defer.callback(callback_id, result={"tag": event["tag"]}))
    return {"ids": ids, "pid": os.getpid()}
