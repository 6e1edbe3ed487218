"""The fault proxy's quota bucket (tests/support/fault_proxy.TokenBucket), on a clock of its own."""

from __future__ import annotations

import pytest

from tests.support.fault_proxy import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_passes_a_burst_then_refuses_until_it_refills() -> None:
    clock = Clock()
    bucket = TokenBucket(10, clock=clock)  # 10 a second, a burst of 10
    assert all(bucket.take() for _ in range(10))
    assert not bucket.take()
    clock.now += 0.25  # 2.5 tokens back
    assert bucket.take(2) and not bucket.take(1)


def test_a_sustained_rate_is_held_to_the_quota() -> None:
    clock = Clock()
    bucket = TokenBucket(200, clock=clock)
    admitted = 0
    for _ in range(1000):  # 10 entries every 10 ms: 1,000 entries a second offered for 10 s
        admitted += 10 * bucket.take(10)
        clock.now += 0.01
    assert 200 * 10 <= admitted <= 200 * 10 + 200  # the quota, plus the first second's burst


def test_it_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(5, burst=20, clock=clock)
    clock.now += 3600
    assert bucket.take(20) and not bucket.take(1)


def test_a_cost_above_the_burst_passes_on_a_full_bucket_only() -> None:
    clock = Clock()
    bucket = TokenBucket(5, clock=clock)
    assert bucket.take(10)  # a 10-entry batch against a 5/s bucket: cut to the burst
    assert not bucket.take(10)
    clock.now += 1
    assert bucket.take(10)


def test_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
