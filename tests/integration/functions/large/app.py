"""Defers an SQS and an SNS message of the sizes asked for (bytes of UTF-8), for the claim
check's tests: with DEFER_LARGE_PAYLOAD_BUCKET set, what is over the threshold goes by S3."""

import os

from handler_lib import defer


def payload(size: int, seed: str) -> str:
    """``size`` bytes of UTF-8 text, accents included, that differ from one seed to the next."""
    unit = f"{seed}:é-ü-€-{seed}|"
    text = unit * (size // len(unit.encode()) + 1)
    while len(text.encode()) > size:
        text = text[:-1]
    return text + "x" * (size - len(text.encode()))


@defer
def handler(event, context):
    ids = {}
    if event.get("sqs_bytes"):
        ids["sqs"] = defer.sqs(os.environ["TEST_QUEUE_URL"], payload(event["sqs_bytes"], event["tag"] + "-sqs"))
    if event.get("sns_bytes"):
        ids["sns"] = defer.sns(os.environ["TEST_TOPIC_ARN"], payload(event["sns_bytes"], event["tag"] + "-sns"))
    return ids
