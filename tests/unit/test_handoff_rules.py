"""The hand-off rule, both halves, without a socket: what an ack confirms and what it leaves."""

from __future__ import annotations

import pytest

from handler_lib import handoff, wire
from handler_lib.handoff import InvokeReceipts, LooseReceipts, Recent


def item(n: int, request_id: str = "req-1") -> wire.SqsItem:
    return wire.SqsItem(f"id-{n}", request_id, 0, "https://sqs/q", "{}", None, None, None, None, None)


def test_an_invoke_whose_items_all_arrived_is_confirmed_by_its_count_alone():
    receipts = InvokeReceipts()
    sent = [item(n) for n in range(3)]
    for it in sent:
        receipts.received(it)
    ack = receipts.confirm(wire.EndOfInvoke("req-1", 3, 0, 0))
    assert (ack.count, ack.ids) == (3, None)
    assert handoff.unconfirmed(sent, ack) == []


def test_a_short_count_names_the_ids_held_and_the_function_keeps_exactly_the_others_in_order():
    receipts = InvokeReceipts()
    sent = [item(n) for n in range(5)]
    for it in (sent[0], sent[2], sent[4]):
        receipts.received(it)
    ack = receipts.confirm(wire.EndOfInvoke("req-1", 5, 0, 0))
    assert ack.count == 3 and ack.ids == ["id-0", "id-2", "id-4"]
    assert handoff.unconfirmed(sent, ack) == [sent[1], sent[3]]
    assert "holds 3 of 5" in handoff.shortfall(sent, ack, 2)


def test_no_ack_leaves_every_item_to_the_function_and_a_confirmation_is_given_once():
    sent = [item(n) for n in range(2)]
    assert handoff.unconfirmed(sent, None) == sent
    assert "no confirmation" in handoff.shortfall(sent, None, 2)
    receipts = InvokeReceipts()
    for it in sent:
        receipts.received(it)
    receipts.confirm(wire.EndOfInvoke("req-1", 2, 0, 0))
    again = receipts.confirm(wire.EndOfInvoke("req-1", 2, 0, 0))  # a replayed marker confirms nothing
    assert again.count == 0 and handoff.unconfirmed(sent, again) == sent


def test_items_of_another_invoke_or_of_none_are_not_counted_for_this_one():
    receipts = InvokeReceipts()
    receipts.received(item(1, "req-2"))
    receipts.received(item(2, ""))  # loose: confirmed per connection, never by an invoke
    ack = receipts.confirm(wire.EndOfInvoke("req-1", 1, 0, 0))
    assert ack.count == 0 and ack.ids == []


def test_loose_items_past_the_ids_kept_are_confirmed_by_their_count_and_the_count_resets():
    loose = LooseReceipts()
    n = handoff.LOOSE_IDS_KEPT + 10
    for k in range(n):
        loose.received(f"id-{k}")
    ack = loose.confirm(wire.EndOfInvoke("", n, 0, 0))
    assert (ack.count, ack.ids) == (n, None)
    loose.received("late")
    short = loose.confirm(wire.EndOfInvoke("", 2, 0, 0))
    assert (short.count, short.ids) == (1, ["late"])


def test_recent_forgets_the_oldest_inserted_first_and_keeps_its_bound():
    recent: Recent[str, int] = Recent(limit=3)
    for k in "abcd":
        recent[k] = ord(k)
    assert list(recent) == ["b", "c", "d"] and "a" not in recent and len(recent) == 3
    recent["b"] = 0  # an update keeps its place
    recent["e"] = 1
    assert list(recent) == ["c", "d", "e"]
    receipts = InvokeReceipts(limit=2)
    for rid in ("r1", "r2", "r3"):
        receipts.received(item(0, rid))
    assert receipts.confirm(wire.EndOfInvoke("r1", 1, 0, 0)).count == 0  # forgotten: the function delivers it
    assert receipts.confirm(wire.EndOfInvoke("r3", 1, 0, 0)).count == 1


@pytest.mark.xfail(strict=True, reason="not fixed: receipts are per connection now, but two senders of one request "
                   "id on one connection are counted together; the ack would need a digest of the ids")
def test_an_item_of_the_same_request_from_another_sender_never_confirms_a_missing_one():
    # Two senders of one request id (a child forked inside a defer.asgi app call carries the
    # parent's invoke): the parent sent a and b, b never arrived, the child's c did. The
    # count alone (2 of 2) said everything arrived and the function dropped b.
    receipts = InvokeReceipts()
    a, b, c = item(1), item(2), item(3)
    receipts.received(a)
    receipts.received(c)
    ack = receipts.confirm(wire.EndOfInvoke("req-1", 2, 0, 0))
    assert handoff.unconfirmed([a, b], ack) == [b]
