"""bench/serving.py's figures: one percentile definition (nearest-rank), and ratios as a median and a range."""

import random

import numpy as np
import pytest

from bench.serving import Spread, percentile


def test_percentiles_are_nearest_rank():
    assert percentile([1, 2, 3, 4], 50) == 2  # the ceil(0.5 * 4) = 2nd smallest
    assert percentile([4, 1, 3, 2], 75) == 3 and percentile([1, 2, 3, 4], 76) == 4
    assert percentile([1, 2, 3, 4], 0) == 1 and percentile([1, 2, 3, 4], 100) == 4
    assert percentile([7.5], 99) == 7.5
    assert percentile([], 50) != percentile([], 50)  # nan
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_nearest_rank_is_numpys_inverted_cdf_and_always_an_observed_value():
    rng = random.Random(0)
    for _ in range(200):
        values = [rng.lognormvariate(1, 0.5) for _ in range(rng.randint(1, 300))]
        for p in (1, 50, 90, 95, 99, 99.9, 100):
            assert percentile(values, p) == np.percentile(values, p, method="inverted_cdf")
            assert percentile(values, p) in values


def test_a_spread_is_the_median_and_the_range():
    spread = Spread.of([0.9, 1.1, 0.95, 1.0, 2.0])
    assert (spread.median, spread.low, spread.high) == (1.0, 0.9, 2.0)
    assert spread.show(2, "x") == "1.00x [0.90-2.00]"
