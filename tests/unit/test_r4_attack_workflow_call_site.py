"""defer.sfn's execution name: a lone surrogate (which no request can carry, and Step Functions
refuses) or a non-character is refused at the call with the name's own ValueError; it used to
come out of the wire codec as a TypeError about msgpack."""

from __future__ import annotations

import pytest

from handler_lib import defer
from handler_lib.testing import capture

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"


@pytest.mark.parametrize("name", ["order-\ud800", "\udfff", "a\ufffe", "a\uffff"])
def test_an_execution_name_that_is_not_text_is_refused_at_the_call(name):
    with capture() as deferred, pytest.raises(ValueError, match="name must be"):
        defer.sfn(ARN, {"a": 1}, name=name)
    assert deferred.executions == []


def test_a_name_of_other_unicode_letters_is_still_taken():
    with capture() as deferred:
        defer.sfn(ARN, {"a": 1}, name="commande-été-注文")
    assert [e.name for e in deferred.executions] == ["commande-été-注文"]
