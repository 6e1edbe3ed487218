"""A function with periodic upkeep: a slow refresh and one that always fails."""

import os
import time

from handler_lib import defer

INTERVAL = float(os.environ.get("HOOK_INTERVAL_S", "1"))
state = {"refreshes": 0}


@defer.every(INTERVAL, run_first=os.environ.get("HOOK_RUN_FIRST") == "1")
def refresh_secret() -> None:
    state["refreshes"] += 1
    print(f"refresh {state['refreshes']} started", flush=True)
    time.sleep(0.5)
    print(f"refresh {state['refreshes']} done", flush=True)


@defer.every(INTERVAL)
def flaky_flags() -> None:
    raise ConnectionError("flag service down")


@defer
def handler(event, context):
    return {"refreshes": state["refreshes"]}
