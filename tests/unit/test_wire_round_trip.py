"""What a handler defers is what the extension decodes: ``.defer()`` and ``capture()`` hand on
the item after the wire codec's round trip, and what the codec cannot read back fails at the call."""

import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler_lib import defer, wire
from handler_lib.testing import capture

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"


class Priority(enum.IntEnum):
    HIGH = 1


@defer.task
def fulfil(order, *lines, **options) -> None:
    pass


def extension_view(item):
    """The item as the extension's reader decodes it from the frame the handler sends."""
    frame = wire.encode(item)
    return wire.decode(frame[wire.HEADER.size:])


def test_capture_shows_tasks_as_the_extension_receives_them():
    with capture() as deferred:
        fulfil.defer(("o-1", 2), (1, 2), priority=Priority.HIGH, tags=("a", "b"))
    task = deferred.tasks[0]
    assert task.args == [["o-1", 2], [1, 2]]
    assert task.kwargs == {"priority": 1, "tags": ["a", "b"]}
    assert type(task.kwargs["priority"]) is int
    assert task == extension_view(task)


def test_capture_round_trips_message_items_too():
    with capture() as deferred:
        defer.sqs(QUEUE, "m", attributes={"n": Priority.HIGH, "raw": b"\x00"})
    assert deferred.sqs[0].attributes == {"n": 1, "raw": b"\x00"}
    assert type(deferred.sqs[0].attributes["n"]) is int


def test_a_map_with_non_str_keys_is_refused_at_the_call_or_arrives_intact():
    """Either the codec carries ``{1: "x"}`` both ways, or ``.defer()`` refuses it: never a frame
    the extension cannot read (that dropped the connection and every frame behind it)."""
    with capture() as deferred:
        try:
            fulfil.defer({1: "x"})
        except TypeError as exc:
            assert "could not read this task item back" in str(exc)
            assert list(deferred) == []
            return
    assert deferred.tasks[0].args == [{1: "x"}] == extension_view(deferred.tasks[0]).args


def test_keyword_names_must_be_identifiers():
    with capture() as deferred, pytest.raises(TypeError, match="must be identifiers"):
        fulfil.defer("o-1", **{"not-a-name": 1})
    assert list(deferred) == []


values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False) | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5) | st.integers(-5, 5), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(args=st.lists(values, max_size=3), kwargs=st.dictionaries(st.sampled_from(["a", "b", "c"]), values))
def test_whatever_defer_accepts_the_extension_decodes_equal(args, kwargs):
    with capture() as deferred:
        try:
            fulfil.defer("o", *args, **kwargs)
        except TypeError:
            assert list(deferred) == []
            return
    task = deferred.tasks[0]
    assert extension_view(task) == task
