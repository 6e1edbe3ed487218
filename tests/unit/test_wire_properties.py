"""The codec accepts exactly what it can read back: anything ``encode`` takes, ``decode`` returns.

Task arguments are the only caller-shaped values on the wire, so the properties are stated
on task frames: arbitrary msgpack-able trees, including dicts with non-str keys (an int key
once made the extension drop the whole connection), and trees ``encode`` must refuse.
"""

import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler_lib import wire

KEYS = st.one_of(st.text(max_size=8), st.integers(-2**63, 2**64 - 1), st.booleans(), st.none(),
                 st.binary(max_size=8), st.floats(allow_nan=False))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
                    st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=20))
TREES = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                      st.tuples(kids, kids),
                                                      st.dictionaries(KEYS, kids, max_size=4)),
                     max_leaves=25)


def normal(value):
    """What a value reads back as: tuples become lists (msgpack has one array type)."""
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    return value


def task(args, kwargs=None):
    return wire.TaskItem("id-1", "req-1", 1, "app:send", args, kwargs or {}, None, None)


@settings(max_examples=300, deadline=None)
@given(st.lists(TREES, max_size=3), st.dictionaries(st.text(max_size=8), TREES, max_size=3))
def test_whatever_encode_accepts_decode_returns_equal(args, kwargs):
    frame = task(args, kwargs)
    try:
        encoded = wire.encode(frame)
    except (TypeError, ValueError):
        return  # refused at the call: the caller hears of it, nothing travels
    decoded = wire.decode(encoded[wire.HEADER.size:])
    assert decoded.args == normal(args) and decoded.kwargs == normal(kwargs)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(KEYS, SCALARS, min_size=1, max_size=5))
def test_dicts_with_keys_of_any_scalar_type_round_trip(mapping):
    decoded = wire.decode(wire.encode(task([mapping]))[wire.HEADER.size:])
    assert decoded.args == [mapping]


@pytest.mark.parametrize("value, why", [
    ({(1, 2): "x"}, "read back"),       # a tuple key packs as an array, which cannot be a key
    ({"a": {1, 2}}, "serialize"),       # no msgpack type
    (2 ** 64, "serialize"),             # out of msgpack's integer range
])
def test_what_cannot_be_read_back_is_refused_at_encode(value, why):
    with pytest.raises(TypeError, match=why):
        wire.encode(task([value]))


def test_a_nan_argument_reads_back_as_nan():
    decoded = wire.decode(wire.encode(task([float("nan")]))[wire.HEADER.size:])
    assert math.isnan(decoded.args[0])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_decode_raises_only_frame_decode_error_on_any_bytes(body):
    try:
        wire.decode(body)
    except wire.FrameDecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), TREES, max_size=6))
def test_decode_of_any_map_raises_only_frame_decode_error(payload):
    payload = {"v": wire.PROTOCOL_VERSION, **payload}
    try:
        body = msgpack.packb(payload, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return
    try:
        wire.decode(body)
    except wire.FrameDecodeError:
        pass


def test_replies_round_trip():
    for frame in (wire.Ack("req-1", 3), wire.Ack("req-1", 1, ["a"]), wire.Backlog(True), wire.Backlog(False)):
        assert wire.decode(wire.encode(frame)[wire.HEADER.size:]) == frame
