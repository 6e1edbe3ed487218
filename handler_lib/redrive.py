"""Send dead letters back to their targets: ``python -m handler_lib.redrive --dlq URL``.

Each letter's item is rebuilt with its original id (so FIFO deduplication and consumers'
idempotency keys still hold) and delivered through the extension's own drain: the same
sinks, batching and retries. The item is the letter's ``wire`` form when it has one (the
item's own encoded map), so Binary attributes, bytes and non-text dict keys in task
arguments come back as they were; a letter that holds neither that nor its item exactly in
JSON (a truncated payload, an older letter with such values) is refused and left. A letter
is deleted only after its item was delivered, and is reported ``redriven`` only once the
delete succeeded; the rest are made visible again at once and stay in the DLQ (a failure is
not dead-lettered a second time). Exit status 0 when every selected letter was redriven
(or, with ``--dry-run``, could be), 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

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
            self.item, self.problem = _item_of(body)
        except Exception as exc:  # noqa: BLE001 - RecursionError too: a letter is refused, never fatal
            self.id = getattr(self, "id", message.get("MessageId", "?"))
            self.item, self.problem = None, f"unreadable letter: {type(exc).__name__}: {exc}"


def _item_of(body: Dict[str, Any]) -> Tuple[Optional[wire.WorkItem], str]:
    """The letter's item exactly as it was deferred, or (None, why it cannot be had)."""
    if body.get("wire"):  # the item's own frame body: exact whatever the readable copy lost
        item = _work_item(wire.decode(base64.b64decode(body["wire"], validate=True)))
        if item.id != body.get("id"):
            raise ValueError(f"its wire form is of item {item.id}, not {body.get('id')}")
        return item, ""
    if body.get("truncated"):
        return None, (f"its payload was truncated to fit the DLQ ({body.get('payload_bytes')} bytes, "
                      f"sha256 {body.get('payload_sha256')}); it cannot be redriven")
    if body.get("item") is None:
        return None, f"it holds no payload ({body.get('unrendered') or 'none'}); it cannot be redriven"
    lost = _not_exact(body)
    if lost:
        return None, (f"it does not hold the item exactly: {lost}, which JSON cannot carry (and the letter "
                      "has no wire form); redriving it would send something else")
    return _work_item(wire.from_map(body["item"])), ""


def _work_item(frame: wire.Frame) -> wire.WorkItem:
    if not isinstance(frame, wire.ITEM_TYPES):
        raise ValueError("the letter does not hold a work item")
    return frame


def _not_exact(body: Dict[str, Any]) -> str:
    """What the readable item may have lost ("" if nothing). A letter says whether its item is
    exact; one of an older version does not, and is judged by what JSON could have changed."""
    if "exact" in body:
        return "" if body["exact"] is True else "some of its values (bytes, non-text dict keys, msgpack types)"
    item = body["item"]
    if not isinstance(item, dict):
        return ""  # from_map refuses it
    attrs = item.get("attrs")
    if isinstance(attrs, dict) and any(isinstance(v, (dict, list)) for v in attrs.values()):
        return "a Binary message attribute"
    if item.get("k") == "task":
        kwargs = item.get("kwargs")
        values = list(item.get("args") or []) + (list(kwargs.values()) if isinstance(kwargs, dict) else [])
        if _holds_dict(values):
            return "task arguments holding dicts (bytes, and non-text keys, were written as text)"
    return ""


def _holds_dict(values: List[Any]) -> bool:
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            return True
        if isinstance(value, list):
            stack.extend(value)
    return False


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
    # A failure stays in the DLQ (never a second letter). botocore for every call: redrive reads
    # and deletes from the DLQ too (ReceiveMessage...), which the lean clients do not offer, and
    # it runs from a shell, where profiles and config files are the rule.
    config = cfg.load()._replace(dlq_url=None, transport="botocore")
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
    not_deleted: Dict[Letter, str] = {}
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
        not_deleted = delete(sqs, dlq, delivered)
        for letter in todo:
            if letter in not_deleted:
                print(f"delivered {letter.id}, but its letter was not deleted ({not_deleted[letter]}): it stays "
                      "in the DLQ, and redriving it again delivers the item again (with the same id)", file=out)
            else:
                print(f"{'redriven' if letter in delivered else 'failed again'} {letter.id}", file=out)
    redriven = [l for l in delivered if l not in not_deleted]
    back = [l for l in letters if l not in redriven]
    for start in range(0, len(back), 10):  # visible again now, not after VISIBILITY_S
        try:
            sqs.change_message_visibility_batch(QueueUrl=dlq, Entries=[
                {"Id": str(n), "ReceiptHandle": l.receipt, "VisibilityTimeout": 0}
                for n, l in enumerate(back[start:start + 10])])
        except Exception as exc:  # noqa: BLE001 - they become visible after VISIBILITY_S anyway
            print(f"could not make letters visible again ({type(exc).__name__}: {exc}); they are, "
                  f"{VISIBILITY_S} s after they were received", file=out)
    failed_count = len(refused) + (0 if dry_run else len(todo) - len(redriven))
    kept = f" ({len(not_deleted)} of them delivered, their letters not deleted)" if not_deleted else ""
    print(f"{'dry run: ' if dry_run else ''}{len(selected)} letters selected, "
          f"{len(todo) if dry_run else len(redriven)} {'could be redriven' if dry_run else 'redriven'}, "
          f"{failed_count} left in the DLQ{kept} ({len(skipped)} not selected)", file=out)
    return 1 if failed_count else 0


def delete(sqs: Any, dlq: str, letters: List[Letter], tries: int = 2) -> Dict[Letter, str]:
    """Delete the letters from the DLQ; return those that could not be, with why."""
    not_deleted: Dict[Letter, str] = {}
    for start in range(0, len(letters), 10):
        pending = letters[start:start + 10]
        reasons: Dict[str, str] = {}
        for _ in range(tries):
            try:
                reply = sqs.delete_message_batch(QueueUrl=dlq, Entries=[
                    {"Id": str(n), "ReceiptHandle": l.receipt} for n, l in enumerate(pending)])
                reasons = {f["Id"]: f"{f.get('Code', 'Unknown')}: {f.get('Message', '')}"
                           for f in reply.get("Failed") or []}
            except Exception as exc:  # noqa: BLE001 - every letter of the call is left
                reasons = {str(n): f"{type(exc).__name__}: {exc}" for n in range(len(pending))}
            failed = [(l, reasons[str(n)]) for n, l in enumerate(pending) if str(n) in reasons]
            pending = [l for l, _ in failed]
            reasons = {str(n): why for n, (_, why) in enumerate(failed)}
            if not pending:
                break
        for n, letter in enumerate(pending):
            not_deleted[letter] = reasons[str(n)]
    return not_deleted


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
