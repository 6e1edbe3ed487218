"""A handler that needs a Secrets Manager secret, cached by Powertools for SECRET_TTL_S.

- ``on_expiry``: as functions are written today: the first request after the cache expired
  fetches the secret inside the request.
- ``refreshed``: the same handler, and a ``@defer.every`` hook that refreshes the cache after
  responses before it expires, so no request fetches (docs/tasks-and-after.md).
Each returns whether this request fetched.
"""

import os
import time

from aws_lambda_powertools.utilities import parameters

from handler_lib import defer

SECRET = os.environ.get("BENCH_SECRET_NAME", "bench-secret")
TTL_S = float(os.environ.get("SECRET_TTL_S", "1"))
fetches = {"n": 0}


def _secret(force: bool = False) -> str:
    started = time.perf_counter()
    value = parameters.get_secret(SECRET, max_age=int(TTL_S) or 1, force_fetch=force)
    if time.perf_counter() - started > 0.015:  # a hit takes microseconds; a fetch, the +20 ms call
        fetches["n"] += 1
    return str(value)


@defer.every(TTL_S * 0.6, jitter=TTL_S * 0.1)
def refresh_secret() -> None:
    if os.environ.get("BENCH_REFRESH") == "1":
        _secret(force=True)


@defer
def on_expiry(event, context):
    before = fetches["n"]
    _secret()
    return {"fetched": fetches["n"] > before}


refreshed = on_expiry  # the same handler: BENCH_REFRESH=1 turns the hook's refresh on
