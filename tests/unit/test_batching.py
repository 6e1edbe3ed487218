"""Batch splitting by count and bytes, checked as properties."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handler_lib.engine.batching import group_by, split_batches


@given(sizes=st.lists(st.integers(1, 300), max_size=60), max_entries=st.integers(1, 10),
       max_bytes=st.integers(1, 1000))
def test_batches_keep_order_and_respect_both_limits(sizes, max_entries, max_bytes):
    items = list(enumerate(sizes))
    batches = split_batches(items, max_entries, max_bytes, lambda item: item[1])
    assert [i for batch in batches for i in batch] == items  # nothing lost, nothing reordered
    for batch in batches:
        assert 1 <= len(batch) <= max_entries
        assert sum(s for _, s in batch) <= max_bytes or len(batch) == 1  # oversize travels alone
    for first, second in zip(batches, batches[1:]):  # greedy: a batch closed only when it had to
        assert len(first) == max_entries or sum(s for _, s in first) + second[0][1] > max_bytes


def test_ten_entries_per_call_for_a_thousand_small_items():
    batches = split_batches(range(1000), 10, 262_144, lambda _: 100)
    assert len(batches) == 100


@pytest.mark.parametrize("entries, size", [(0, 10), (10, 0)])
def test_limits_must_be_positive(entries, size):
    with pytest.raises(ValueError):
        split_batches([1], entries, size, lambda _: 1)


def test_group_by_keeps_first_seen_order():
    assert group_by(["a1", "b1", "a2", "c1", "b2"], lambda s: s[0]) == [["a1", "a2"], ["b1", "b2"], ["c1"]]
