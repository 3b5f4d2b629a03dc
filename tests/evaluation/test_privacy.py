import numpy as np
import pandas as pd
import pytest

from glu_zoo.data.tabular import TableSpec
from glu_zoo.evaluation import distance_to_closest_record
from tests.evaluation.tables import SPEC, toy


def test_a_copy_of_the_training_table_is_all_copied():
    rng = np.random.default_rng(0)
    train, test = toy(rng, 200), toy(rng, 50)
    result = distance_to_closest_record(train, test, train.sample(frac=1.0, random_state=1), SPEC)
    assert result["copied_share"] == 1.0 and result["dcr_median"] == 0.0 and result["dcr_ratio"] == 0.0
    assert result["holdout_copied_share"] == 0.0 and result["holdout_dcr_median"] > 0


def test_one_copied_row_is_found():
    rng = np.random.default_rng(1)
    train, test, synthetic = toy(rng, 200), toy(rng, 50), toy(rng, 100)
    assert distance_to_closest_record(train, test, synthetic, SPEC)["copied_share"] == 0.0
    synthetic.iloc[37] = train.iloc[123]
    result = distance_to_closest_record(train, test, synthetic, SPEC)
    assert result["copied_share"] == pytest.approx(1 / 100) and result["dcr_min"] == 0.0


def test_a_fresh_sample_lies_as_close_as_fresh_real_rows():
    rng = np.random.default_rng(2)
    real = toy(rng, 400)
    result = distance_to_closest_record(real[:320], real[320:], toy(rng, 300), SPEC)
    assert result["copied_share"] == 0.0
    assert 0.7 < result["dcr_ratio"] < 1.4
    assert 0.65 < result["closer_to_train_share"] < 0.95  # 80/20 split: nearer the bigger split


def test_distances_are_l1_on_the_training_range_and_one_hot():
    spec = TableSpec(numerical=["a"], categorical=["c"])
    train = pd.DataFrame({"a": [0.0, 10.0], "c": ["p", "q"]})
    test = pd.DataFrame({"a": [5.0], "c": ["p"]})
    # nearest training row of (2.5, q): (0, p) at 0.25 + 2, (10, q) at 0.75 + 0 -> 0.75
    synthetic = pd.DataFrame({"a": [2.5, 0.0, 1e-6], "c": ["q", "q", "p"]})
    result = distance_to_closest_record(train, test, synthetic, spec)
    assert result["dcr_median"] == pytest.approx(0.75)  # distances 0.75, 1.0 (2 − 1), 1e-7
    assert result["dcr_min"] == pytest.approx(1e-7)
    assert result["copied_share"] == 0.0  # 1e-7 of the range is no copy at atol 1e-8
    assert result["holdout_dcr_median"] == pytest.approx(0.5)
    assert result["dcr_ratio"] == pytest.approx(1.5)
