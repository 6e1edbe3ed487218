"""Round-4 attacks at the call site of defer.sfn: what no request can carry is a ValueError
where it entered, as every other bad name or ARN is, and nothing is queued."""

from __future__ import annotations

import pytest

from handler_lib import defer
from handler_lib.testing import capture

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"


@pytest.mark.parametrize("call", [
    lambda: defer.sfn(ARN, {"n": 1}, name="order-\ud800"),
    lambda: defer.sfn(ARN + "\udfff", {"n": 1}),
    lambda: defer.sfn(ARN + ":live\ud800", {"n": 1}),
], ids=["name", "arn", "alias"])
def test_r4_a_lone_surrogate_in_a_step_functions_name_or_arn_is_a_value_error(call):
    with capture() as deferred:
        with pytest.raises(ValueError, match="name must be|is not a state machine ARN"):
            call()
    assert list(deferred) == []
