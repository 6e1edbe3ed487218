"""An SQS consumer that names each failed record twice in its batchItemFailures."""


def handler(event, context):
    failed = [r["messageId"] for r in event["Records"] if r["body"] == "fail"]
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed for _ in range(2)]}
