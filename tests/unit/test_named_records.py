"""handler_lib._records.NamedTuple makes what typing.NamedTuple makes (a collections.namedtuple
with the class body's fields, defaults, methods and docstring), without typing's checks of each
annotation, which cost the wire module ~2 ms of every cold start (issue 22)."""

from __future__ import annotations

import pickle
import typing
from typing import Optional

import pytest

from handler_lib import _records, config, wire


class Typed(typing.NamedTuple):
    """A record."""

    name: str
    size: int = 0
    note: Optional[str] = None

    def doubled(self) -> int:
        return 2 * self.size


class Made(_records.NamedTuple):
    """A record."""

    name: str
    size: int = 0
    note: Optional[str] = None

    def doubled(self) -> int:
        return 2 * self.size


def test_the_same_record_as_typing_makes():
    typed, made = Typed("a", 2), Made("a", 2)
    assert made._fields == typed._fields == ("name", "size", "note")
    assert made._field_defaults == typed._field_defaults == {"size": 0, "note": None}
    assert tuple(made) == tuple(typed) and made.doubled() == typed.doubled() == 4
    assert made._replace(size=3) == Made("a", 3) and made._asdict() == typed._asdict()
    assert repr(made) == "Made(name='a', size=2, note=None)"
    assert Made.__doc__ == Typed.__doc__ == "A record."
    assert (Made.__module__, Made.__qualname__) == (__name__, "Made")
    assert typing.get_type_hints(Made) == typing.get_type_hints(Typed)
    assert isinstance(made, tuple) and pickle.loads(pickle.dumps(made)) == made


def test_what_typing_refuses_is_refused():
    with pytest.raises(TypeError):
        class Bad(_records.NamedTuple):
            a: int = 1
            b: int
    with pytest.raises(AttributeError):
        class Worse(_records.NamedTuple):
            a: int

            def _replace(self, **changes):  # type: ignore[override]
                return self


def test_wire_frames_and_config_are_namedtuples_of_their_fields():
    item = wire.SqsItem("id-1", "r-1", 1, "https://sqs.us-east-1.amazonaws.com/1/q", "body")
    assert item.group_id is None and item.kind == "sqs" and item._replace(id="id-2").id == "id-2"
    assert wire.decode(wire.encode(item)[wire.HEADER.size:]) == item
    assert config.load({})._replace(mode="inline").mode == "inline"
