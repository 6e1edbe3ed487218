"""A user's own function: its dependency (Powertools) comes in its zip, lambda-defer in the layer."""
from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

from handler_lib import defer

logger = Logger(service="greetings")


@defer
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    name = event.get("name", "world")
    defer.sqs(os.environ["GREETINGS_QUEUE_URL"], {"greeted": name})
    logger.info("greeted", extra={"greeted": name})  # not "name": a LogRecord attribute
    return {"statusCode": 200, "body": f"hello {name}"}
