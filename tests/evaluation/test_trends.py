import numpy as np
import pandas as pd
import pytest

from glu_zoo.data.tabular import TableSpec
from glu_zoo.evaluation import column_pair_trends, contingency_similarity, correlation_similarity
from tests.evaluation.tables import SPEC, shuffle_columns, toy


def test_identical_tables_score_one_on_every_pair():
    rng = np.random.default_rng(0)
    table = toy(rng, 200)
    result = column_pair_trends(table, table.copy(), SPEC)
    assert len(result["pairs"]) == 6  # 4 columns
    metrics = {tuple(p["columns"]): p["metric"] for p in result["pairs"]}
    assert metrics[("x", "y")] == "CorrelationSimilarity"
    assert metrics[("x", "colour")] == metrics[("colour", "label")] == "ContingencySimilarity"
    assert all(p["score"] == pytest.approx(1.0, abs=1e-12) for p in result["pairs"])
    assert result["score"] == pytest.approx(1.0, abs=1e-12)


def test_shuffled_columns_score_badly_on_trends():
    rng = np.random.default_rng(1)
    real = toy(rng, 400)
    result = column_pair_trends(real, shuffle_columns(real, rng), SPEC)
    pairs = {tuple(p["columns"]): p for p in result["pairs"]}
    assert pairs[("x", "y")]["real"] > 0.95 and abs(pairs[("x", "y")]["synthetic"]) < 0.15
    assert pairs[("x", "y")]["score"] < 0.56  # 1 − |0.99 − ~0| / 2
    assert pairs[("x", "label")]["score"] < 0.5  # label is a function of x; shuffled, the joint spreads out
    assert result["score"] < 0.7
    fresh = column_pair_trends(real, toy(rng, 400), SPEC)["score"]
    assert fresh > 0.9  # another sample of the same distribution keeps its trends


def test_hand_examples():
    score, rho_real, rho_syn = correlation_similarity([0, 1, 2], [0, 1, 2], [0, 1, 2], [2, 1, 0])
    assert (rho_real, rho_syn) == (pytest.approx(1.0), pytest.approx(-1.0)) and score == pytest.approx(0.0)
    assert correlation_similarity([0, 1, 2], [1, 1, 1], [0, 1, 2], [0, 1, 2])[0] is None  # constant: undefined
    # joint frequencies {(a,x): .5, (b,y): .5} against {(a,x): .5, (a,y): .25, (b,y): .25}: TV = .25
    assert contingency_similarity(["a", "b"], ["x", "y"], ["a", "a", "a", "b"], ["x", "x", "y", "y"]) \
        == pytest.approx(0.75)
    # a missing value is a category of its own
    assert contingency_similarity(["a", None], ["x", "y"], ["a", "a"], ["x", "y"]) == pytest.approx(0.5)
    codes = np.array([1.0, np.nan, np.nan])  # NaN != NaN: the missing cells must still count as one category
    assert contingency_similarity(codes, ["x", "y", "y"], codes.copy(), ["x", "y", "y"]) == pytest.approx(1.0)


def test_mixed_pairs_bin_both_tables_on_the_real_edges():
    """A synthetic numerical column moved past the real range falls in the last real bin: the
    contingency table differs. (Bins cut on each table's own edges would score this 1.)"""
    rng = np.random.default_rng(2)
    spec = TableSpec(numerical=["x"], categorical=["c"])
    x = rng.uniform(0.0, 1.0, 1000)
    real = pd.DataFrame({"x": x, "c": "a"})
    moved = pd.DataFrame({"x": x + 10.0, "c": "a"})
    result = column_pair_trends(real, moved, spec)
    assert result["pairs"][0]["metric"] == "ContingencySimilarity"
    last_bin = np.mean(x >= np.histogram_bin_edges(x, 10)[-2])
    assert result["score"] == pytest.approx(last_bin, abs=1e-12)  # 1 − ½(Σ_other bins p + (1 − p_last))
    assert result["score"] < 0.2


def test_no_pairs_give_none():
    spec = TableSpec(numerical=["x"])
    table = pd.DataFrame({"x": [0.0, 1.0]})
    assert column_pair_trends(table, table, spec) == {"pairs": [], "score": None}
