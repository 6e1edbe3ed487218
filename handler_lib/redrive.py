"""Send dead letters back to their targets: ``python -m handler_lib.redrive --dlq URL``.

Each letter's item is rebuilt with its original id (so FIFO deduplication and consumers'
idempotency keys still hold) and delivered through the extension's own drain: the same
sinks, batching and retries. A letter is deleted only after its item was delivered; the
rest are made visible again at once and stay in the DLQ (a failure is not dead-lettered a
second time). Truncated letters are refused: their payload is gone. Exit status 0 when
every selected letter was redriven (or, with ``--dry-run``, could be), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from . import config as cfg
from . import wire

log = logging.getLogger("handler_lib.redrive")

#: How long received letters stay hidden from other consumers while they are redriven.
VISIBILITY_S = 300


class Letter:
    def __init__(self, message: Dict[str, Any]) -> None:
        self.receipt = message["ReceiptHandle"]
        self.item: Optional[wire.WorkItem] = None
        self.problem = ""
        try:
            body = json.loads(message["Body"])
            if not isinstance(body, dict) or body.get("defer_dead_letter") != 1:
                raise ValueError("not a lambda-defer dead letter")
            self.id = str(body.get("id"))
            if body.get("truncated"):
                self.problem = (f"its payload was truncated to fit the DLQ ({body.get('payload_bytes')} bytes, "
                                f"sha256 {body.get('payload_sha256')}); it cannot be redriven")
                return
            frame = wire.from_map(body["item"])
            if not isinstance(frame, (wire.SqsItem, wire.SnsItem, wire.EventItem, wire.TaskItem)):
                raise ValueError("the letter does not hold a work item")
            self.item = frame
        except (ValueError, KeyError, TypeError) as exc:
            self.id = getattr(self, "id", message.get("MessageId", "?"))
            self.problem = f"unreadable letter: {exc}"


def receive(sqs: Any, dlq: str, limit: Optional[int]) -> List[Letter]:
    """Receive letters until the DLQ has no more visible ones (or ``limit`` is reached)."""
    letters: List[Letter] = []
    while limit is None or len(letters) < limit:
        want = 10 if limit is None else min(10, limit - len(letters))
        reply = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=want, WaitTimeSeconds=1,
                                    VisibilityTimeout=VISIBILITY_S)
        messages = reply.get("Messages") or []
        if not messages:
            break
        letters += [Letter(m) for m in messages]
    return letters


def redrive(dlq: str, *, ids: Sequence[str] = (), limit: Optional[int] = None, dry_run: bool = False,
            budget_s: float = 60.0, out: Any = sys.stdout) -> int:
    """Redrive the DLQ's letters (those of ``ids`` only, if given); return the exit status."""
    config = cfg.load()._replace(dlq_url=None)  # a failure stays in the DLQ; never a second letter
    from ._inline import make_drainer  # the engine (and botocore) load only when redriving

    drainer = make_drainer(config)
    sqs = drainer.sinks["sqs"].client
    letters = receive(sqs, dlq, None if ids else limit)
    selected = [l for l in letters if not ids or l.id in ids][:limit]
    skipped = [l for l in letters if l not in selected]
    refused = [l for l in selected if l.item is None]
    for letter in refused:
        print(f"refused {letter.id}: {letter.problem}", file=out)
    todo = [l for l in selected if l.item is not None]
    delivered: List[Letter] = []
    if dry_run:
        for letter in todo:
            item = letter.item
            assert item is not None
            print(f"would redrive {letter.id}: {item.kind} to {item.target}", file=out)
    elif todo:
        for letter in todo:
            item = letter.item
            assert item is not None
            drainer.queue.add(item)
        report = drainer.drain(time.monotonic() + budget_s)
        failed = set(report.given_up_ids) | {e.item.id for e in drainer.queue.snapshot()}
        delivered = [l for l in todo if l.id not in failed]
        for start in range(0, len(delivered), 10):
            chunk = delivered[start:start + 10]
            sqs.delete_message_batch(QueueUrl=dlq, Entries=[
                {"Id": str(n), "ReceiptHandle": l.receipt} for n, l in enumerate(chunk)])
        for letter in todo:
            print(f"{'redriven' if letter in delivered else 'failed again'} {letter.id}", file=out)
    back = [l for l in letters if l not in delivered]
    for start in range(0, len(back), 10):  # visible again now, not after VISIBILITY_S
        sqs.change_message_visibility_batch(QueueUrl=dlq, Entries=[
            {"Id": str(n), "ReceiptHandle": l.receipt, "VisibilityTimeout": 0}
            for n, l in enumerate(back[start:start + 10])])
    failed_count = len(refused) + (0 if dry_run else len(todo) - len(delivered))
    print(f"{'dry run: ' if dry_run else ''}{len(selected)} letters selected, "
          f"{len(todo) if dry_run else len(delivered)} {'could be redriven' if dry_run else 'redriven'}, "
          f"{failed_count} left in the DLQ ({len(skipped)} not selected)", file=out)
    return 1 if failed_count else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handler_lib.redrive", description=__doc__.splitlines()[0])
    parser.add_argument("--dlq", required=True, help="the dead-letter queue URL (DEFER_DLQ_URL)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be redriven; change nothing")
    parser.add_argument("--id", action="append", default=[], dest="ids", help="redrive only this item id (repeatable)")
    parser.add_argument("--max", type=int, default=None, dest="limit", help="redrive at most N letters")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds allowed for delivery (default 60)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return redrive(args.dlq, ids=args.ids, limit=args.limit, dry_run=args.dry_run, budget_s=args.budget)


if __name__ == "__main__":
    sys.exit(main())
