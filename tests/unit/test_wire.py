"""The wire format: every frame kind round-trips, and bad bytes fail at the boundary only."""

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handler_lib import wire

FRAMES = [
    wire.Hello(pid=42, wrapped=True),
    wire.EndOfInvoke(request_id="req-1", count=3),
    wire.SqsItem("id-1", "req-1", 1_700_000_000_000_000, "https://sqs/q.fifo", '{"a":1}', "g", "d", None,
                 {"n": 1, "s": "x", "b": b"\x00"}),
    wire.SnsItem("id-2", "req-1", 1, "arn:aws:sns:us-east-1:1:t", "hello", "subj", None, None, None),
    wire.EventItem("id-3", "", 2, "OrderCreated", '{"order_id":"o"}', "shop", "bus", ["arn:x"]),
    wire.TaskItem("id-4", "req-2", 3, "app:send", [1, "two", None, [3]], {"k": {"n": 1.5}}, 3, 2.5),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f.kind)
def test_every_frame_kind_round_trips(frame):
    encoded = wire.encode(frame)
    (length,) = wire.HEADER.unpack_from(encoded)
    assert length == len(encoded) - wire.HEADER.size
    assert wire.decode(encoded[wire.HEADER.size:]) == frame


def test_reader_splits_a_stream_fed_byte_by_byte():
    stream = b"".join(wire.encode(f) for f in FRAMES)
    reader, bodies = wire.FrameReader(), []
    for i in range(len(stream)):
        bodies += reader.feed(stream[i:i + 1])
    assert [wire.decode(b) for b in bodies] == FRAMES


def test_oversize_length_prefix_is_refused_before_buffering():
    reader = wire.FrameReader()
    with pytest.raises(wire.FrameDecodeError, match="exceeds"):
        reader.feed(wire.HEADER.pack(wire.MAX_FRAME_BYTES + 1) + b"x")


@pytest.mark.parametrize("body, match", [
    (b"\xc1", "not a msgpack"),
    (msgpack.packb([1, 2]), "not a map"),
    (msgpack.packb({"v": 99, "k": "sqs"}), "version"),
    (msgpack.packb({"v": 1, "k": "pickle"}), "unknown frame kind"),
    (msgpack.packb({"v": 1, "k": "sqs", "id": "x", "rid": "", "ts": 1}), "malformed sqs"),
    (msgpack.packb({"v": 1, "k": "task", "id": 1, "rid": "", "ts": 1, "fn": "m:f"}), "malformed task"),
    (msgpack.packb({"v": 1, "k": "sqs", "id": "x", "rid": "", "ts": 1, "url": "u", "body": "b",
                    "delay": "soon"}), "malformed sqs"),
])
def test_bad_frames_raise_one_exception_type(body, match):
    with pytest.raises(wire.FrameDecodeError, match=match):
        wire.decode(body)


def test_unserializable_values_raise_type_error_naming_the_fix():
    with pytest.raises(TypeError, match="cannot serialize"):
        wire.encode(wire.TaskItem("i", "", 1, "m:f", [object()]))


@given(st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False)
                    | st.text() | st.binary(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=20))
def test_task_arguments_round_trip(value):
    item = wire.TaskItem("i", "r", 1, "m:f", [value], {"v": value})
    assert wire.decode(wire.encode(item)[wire.HEADER.size:]) == item
