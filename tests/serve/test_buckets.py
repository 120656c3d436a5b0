"""Length buckets: the cut points minimise padded tokens plus a cost per forward call (hand-checked)."""

import pytest

from tailor.serve.buckets import length_buckets


def test_one_bucket_when_calls_are_dear_and_one_per_length_when_free():
    lengths = [5, 30, 6, 31]
    assert length_buckets(lengths, call_cost_tokens=1000) == [[0, 2, 1, 3]]
    assert length_buckets(lengths, call_cost_tokens=0) == [[0], [2], [1], [3]]


def test_cut_where_it_saves_more_padding_than_a_call_costs():
    # sorted 5, 6, 30, 31: one bucket = 4 * 31 + c = 124 + c; cut after 6 = 2 * 6 + 2 * 31 + 2c = 74 + 2c
    lengths = [5, 30, 6, 31]
    assert length_buckets(lengths, call_cost_tokens=49) == [[0, 2], [1, 3]]  # 74 + 98 = 172 < 124 + 49
    assert length_buckets(lengths, call_cost_tokens=51) == [[0, 2, 1, 3]]  # 124 + 51 = 175 < 74 + 102


def test_padding_to_a_multiple_counts_in_the_cost():
    # multiple 8: 5, 6 -> 8 and 9, 10 -> 16: one bucket 4 * 16 + c, two 2 * 8 + 2 * 16 + 2c = 48 + 2c
    assert length_buckets([9, 5, 10, 6], call_cost_tokens=15, multiple=8) == [[1, 3], [0, 2]]
    assert length_buckets([9, 5, 10, 6], call_cost_tokens=17, multiple=8) == [[1, 3, 0, 2]]


def test_bad_settings_and_empty_input():
    assert length_buckets([], 10) == []
    with pytest.raises(ValueError, match="multiple >= 1"):
        length_buckets([3], 10, multiple=0)
