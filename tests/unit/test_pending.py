"""The queue's intake: duplicates need proof, colliding ids are kept apart, queued bytes are counted."""

import logging

from handler_lib import config, wire
from handler_lib.engine.journal import Journal
from handler_lib.engine.pending import PendingQueue


def sqs(item_id: str, body: str = "m") -> wire.SqsItem:
    return wire.SqsItem(item_id, "req", 1, "https://sqs/q", body)


def test_the_same_item_twice_is_a_resend_and_is_queued_once():
    queue = PendingQueue()
    assert queue.add(sqs("a", "one")) is True
    assert queue.add(sqs("a", "one")) is False
    assert len(queue) == 1 and queue.duplicates == 1 and queue.collisions == 0


def test_a_different_item_with_a_known_id_is_queued_apart_and_logged(tmp_path, caplog):
    queue = PendingQueue(Journal(str(tmp_path)))
    queue.add(sqs("a", "first"))
    with caplog.at_level(logging.ERROR, "defer_runner.pending"):
        assert queue.add(sqs("a", "second")) is True
        assert queue.add(sqs("a", "third")) is True
    assert queue.collisions == 2 and "id collision" in caplog.text
    by_id = {e.item.id: e.item.body for e in queue.snapshot()}
    assert by_id == {"a": "first", "a#2": "second", "a#3": "third"}
    assert queue.add(sqs("a", "second")) is False  # a resend of the colliding item is still known
    queue.finish("a#2")  # the drain finishes by the queued id: the right item leaves
    assert sorted(e.item.body for e in queue.snapshot()) == ["first", "third"]
    queue.journal.close()
    assert sorted((i.id, i.body) for i in Journal(str(tmp_path)).replayed) == [("a", "first"), ("a#3", "third")]


def test_queued_bytes_follow_adds_and_finishes_and_say_when_over_the_bound():
    queue = PendingQueue(max_queued_bytes=250_000)
    sizes = {}
    for n in range(3):
        item = sqs(f"i{n}", "x" * 100_000)
        queue.add(item)
        sizes[item.id] = len(wire.pack_map(item.to_map()))
    assert queue.queued_bytes == sum(sizes.values())
    assert queue.over_limit()
    queue.add(sqs("i0", "x" * 100_000))  # a resend adds nothing
    queue.finish("i1")
    queue.finish("i1")
    assert queue.queued_bytes == sizes["i0"] + sizes["i2"]
    assert not queue.over_limit()
    queue.finish("i0")
    queue.finish("i2")
    assert queue.queued_bytes == 0


def test_the_bound_defaults_to_a_quarter_of_the_function_memory_at_most_64_mib():
    assert config.load({}).max_queued_bytes == 32 << 20
    assert config.load({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}).max_queued_bytes == 64 << 20
    assert config.load({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}).max_queued_bytes == 32 << 20
    assert config.load({"DEFER_MAX_QUEUED_MB": "5"}).max_queued_bytes == 5 << 20


def test_the_default_journal_belongs_to_the_function():
    assert config.load({"AWS_LAMBDA_FUNCTION_NAME": "orders-api"}).journal_dir == "/tmp/defer-runner/orders-api"
    assert config.load({"AWS_LAMBDA_FUNCTION_NAME": "../x y"}).journal_dir == "/tmp/defer-runner/___x_y"
    assert config.load({"DEFER_JOURNAL_DIR": "/tmp/j"}).journal_dir == "/tmp/j"
