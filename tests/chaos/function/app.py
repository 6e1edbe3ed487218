"""The function the chaos harness drives: it defers what each event lists and says which ids
each call returned and which calls raised. Written against the API every lambda-defer
version since the first layer has (so the harness can attack an older layer too)."""

import json
import os
import time

from handler_lib import defer

QUEUE_URL = os.environ["TEST_QUEUE_URL"]
FIFO_QUEUE_URL = os.environ["TEST_FIFO_QUEUE_URL"]
TOPIC_ARN = os.environ["TEST_TOPIC_ARN"]
PAD = "x" * 100_000  # a big SNS message (its limit is 256 KB)
BIG_SQS_PAD = "x" * 400_000  # three of them pass the extension's 1 MB bound (DEFER_MAX_QUEUED_MB)
FLOOD_PAD = "x" * 250_000  # a flood: many of these pass the channel socket's buffers


@defer.task
def chaos_task(k):
    """A task's effect is one message: the checker sees the task ran."""
    defer.sqs(QUEUE_URL, {"k": k, "via": "task"})


def _defer_in_a_child(k):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: defer, say the id, and end without the parent's exit handlers
        try:
            os.close(read_end)
            os.write(write_end, defer.sqs(QUEUE_URL, {"k": k, "via": "fork"}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    if not said:
        raise RuntimeError("the forked child deferred nothing")
    return said


def _defer_one(item, out):
    k, kind = item["k"], item["kind"]
    if item.get("big") == "flood":
        body = {"k": k, "pad": FLOOD_PAD}
    else:
        body = {"k": k, "pad": BIG_SQS_PAD if kind == "sqs" else PAD} if item.get("big") else {"k": k}
    try:
        if kind == "sqs":
            out["ids"][k] = defer.sqs(QUEUE_URL, body)
        elif kind == "sns":
            out["ids"][k] = defer.sns(TOPIC_ARN, body)
        elif kind == "fifo":
            out["ids"][k] = defer.sqs(FIFO_QUEUE_URL, body, group_id=item["g"])
        elif kind == "task":
            out["ids"][k] = chaos_task.defer(k)
        elif kind == "refused":  # over SQS's limit: must raise at the call
            out["ids"][k] = defer.sqs(QUEUE_URL, {"k": k, "pad": "x" * 1_100_000})
        elif kind == "forked":  # deferred by a child the handler forks; the child says the id
            out["ids"][k] = _defer_in_a_child(k)
        elif kind == "forbidden":  # a character SQS refuses: must raise at the call
            out["ids"][k] = defer.sqs(QUEUE_URL, {"k": k, "text": "\uffff"})
    except Exception as exc:  # noqa: BLE001 - the harness records what a call refused
        out["refused"][k] = f"{type(exc).__name__}: {str(exc)[:200]}"


def _after(items, raise_first):
    calls = []
    if raise_first:
        def boom():
            raise {"SystemExit": SystemExit, "KeyboardInterrupt": KeyboardInterrupt}.get(raise_first, RuntimeError)(3)
        calls.append(boom)
    for item in items:
        def later(item=item):
            defer.sqs(QUEUE_URL, {"k": item["k"], "via": "after"})
        calls.append(later)
    return calls


@defer
def handler(event, context):
    out = {"ids": {}, "refused": {}, "pid": os.getpid()}
    if event.get("pre_sleep"):
        time.sleep(event["pre_sleep"])
    items = event.get("items", [])
    if event.get("nested"):  # a @defer handler called from inside another
        half = len(items) // 2
        inner_out = inner({"items": items[:half]}, context)
        out["ids"].update(inner_out["ids"])
        out["refused"].update(inner_out["refused"])
        items = items[half:]
    for item in items:
        _defer_one(item, out)
    for call in _after(event.get("after", []), event.get("after_raise")):
        defer.after(call)
    if event.get("then") and event.get("nonce"):  # the ids so far, for the harness (in the log)
        print(f"chaos-out {event['nonce']} {json.dumps(out)}", flush=True)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    for item in event.get("then", []):  # deferred after the sleep (an extension killed in it)
        _defer_one(item, out)
    if event.get("nonce"):  # the ids, for the harness, should the response not reach it
        print(f"chaos-out {event['nonce']} {json.dumps(out)}", flush=True)
    return out


@defer
def inner(event, context):
    out = {"ids": {}, "refused": {}}
    for item in event["items"]:
        _defer_one(item, out)
    return out
