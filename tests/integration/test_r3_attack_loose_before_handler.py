"""The durable hand-off × loose items sent before the ``@defer`` handler existed.

A process's loose items are counted from its start, but their ids are kept only once its
hello says it has a ``@defer`` handler (``keep_id``). An item the journal could not take (a
full /tmp) is confirmed only by id (the rule: an item counts once it is journaled), so one
sent at init, before the handler was defined, must not be confirmed by the count either: a
SIGKILL of the extension would lose it, with no ERROR line (nothing replays it).

The real Journal on a real 64 KiB tmpfs, the real Runner and routing (the in-memory channel).
"""
from __future__ import annotations

from handler_lib import handoff, wire
from handler_lib.engine.journal import Journal
from tests.integration.test_r3_durable_handback import RecordingSink, fill, item, make, small_tmp  # noqa: F401


def test_a_loose_item_sent_before_the_handler_existed_is_not_confirmed_unless_journaled(small_tmp):  # noqa: F811
    # GIVEN a full /tmp, and a process that defers at init, before its @defer handler is defined
    fill(small_tmp, leave=8 * 1024)
    channel, runner = make(small_tmp / "journal", RecordingSink(down=True))
    peer = channel.connect(wrapped=False)
    sent = [item(n, "") for n in range(12)]
    for it in sent:
        channel.send(peer, it)
    journal = runner.queue.journal
    not_journaled = [it.id for it in sent if not journal.journaled(it.id)]
    assert not_journaled  # the disk did fill up
    # WHEN the handler is defined (a new hello on the same connection) and the first invoke
    # ends with the loose marker
    channel.send(peer, wire.Hello(pid=1, wrapped=True))
    ack = channel.send(peer, wire.EndOfInvoke("", len(sent), 0, 0))
    # THEN what the journal does not hold is left to the function
    left_to_function = {it.id for it in handoff.unconfirmed(sent, ack)}
    assert set(not_journaled) <= left_to_function, ack
    # (the extension, killed now, replays only what its journal holds)
    journal.close()
    replayed = {i.id for i in Journal(str(small_tmp / "journal")).replayed}
    assert not set(not_journaled) & replayed
