import numpy as np
import pandas as pd
import pytest

from glu_zoo.data.tabular import TableSpec
from glu_zoo.evaluation import column_shapes, ks_complement, tv_complement
from tests.evaluation.tables import SPEC, shuffle_columns, toy


def _ecdf_sup(a, b):
    """sup_x |F_a(x) − F_b(x)| evaluated at every sample point (the ECDFs only jump there)."""
    points = np.concatenate([a, b])
    fa = np.array([np.mean(a <= p) for p in points])
    fb = np.array([np.mean(b <= p) for p in points])
    return np.abs(fa - fb).max()


def test_identical_tables_score_one_per_column_and_in_the_mean():
    rng = np.random.default_rng(0)
    table = toy(rng, 200)
    result = column_shapes(table, table.copy(), SPEC)
    assert result["score"] == 1.0
    assert {name: c["metric"] for name, c in result["columns"].items()} == {
        "x": "KSComplement", "y": "KSComplement", "colour": "TVComplement", "label": "TVComplement"}
    assert all(c["score"] == 1.0 for c in result["columns"].values())


def test_hand_examples():
    # ECDFs of {1, 2, 3} and {2, 3, 4} differ by 1/3 at most; frequencies (.5, .25, .25, 0) vs (.25, .5, 0, .25)
    assert ks_complement([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]) == pytest.approx(2 / 3)
    assert tv_complement(["a", "a", "b", "c"], ["a", "b", "b", "d"]) == pytest.approx(0.5)
    assert tv_complement(["a"], ["b"]) == 0.0
    assert ks_complement([0.0, 1.0], [5.0, 6.0]) == 0.0


def test_ks_complement_is_one_minus_the_largest_ecdf_gap():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=57), rng.normal(0.3, 1.2, size=43)
    assert ks_complement(a, b) == pytest.approx(1.0 - _ecdf_sup(a, b), abs=1e-12)


def test_a_shifted_column_scores_lower_and_a_shuffled_table_keeps_its_shapes():
    rng = np.random.default_rng(2)
    real = toy(rng, 300)
    assert column_shapes(real, shuffle_columns(real, rng), SPEC)["score"] == 1.0
    shifted = column_shapes(real, toy(rng, 300, shift=1.0), SPEC)
    assert shifted["columns"]["x"]["score"] < 0.7
    assert shifted["score"] < 0.8


def test_missing_values_are_left_out_where_the_spec_allows_them():
    spec = TableSpec(numerical=["x"], categorical=["c"], missing=["x", "c"])
    real = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "b"]})
    synthetic = pd.DataFrame({"x": [1.0, np.nan, 2.0, 3.0], "c": ["a", None, "b", "b"]})
    result = column_shapes(real, synthetic, spec)
    assert result["columns"]["x"]["score"] == 1.0 and result["columns"]["c"]["score"] == 1.0
