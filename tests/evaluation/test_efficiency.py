import numpy as np
import pytest

from glu_zoo.data.tabular import TableSpec
from glu_zoo.evaluation import efficiency
from tests.evaluation.tables import SPEC, toy

REGRESSION = TableSpec(numerical=["x"], categorical=["colour", "label"], target="y", task="regression")


def test_a_faithful_table_trains_as_well_as_the_real_one():
    rng = np.random.default_rng(0)
    train, test, synthetic = toy(rng, 300), toy(rng, 200), toy(rng, 300)
    result = efficiency(train, test, synthetic, SPEC, seed=0, n_estimators=30)
    assert result["task"] == "classification" and result["model"] == "forest"
    assert result["real"]["accuracy"] > 0.9  # label is a function of x
    assert result["synthetic"]["accuracy"] > 0.9
    assert abs(result["synthetic"]["accuracy"] - result["real"]["accuracy"]) < 0.05
    assert result["score"] == result["synthetic"]["accuracy"]
    assert 0.85 < result["synthetic"]["macro_f1"] <= 1.0


def test_labels_unrelated_to_the_features_score_near_chance():
    rng = np.random.default_rng(1)
    train, test, synthetic = toy(rng, 300), toy(rng, 300), toy(rng, 300)
    synthetic["label"] = rng.permutation(synthetic["label"].to_numpy())
    for model in ("forest", "linear"):
        result = efficiency(train, test, synthetic, SPEC, seed=0, model=model, n_estimators=30)
        # 3 classes, chance 1/3; a near-flat linear model's arg-max can still side with x by chance
        # (0.17-0.51 over four seeds), so the bound is loose; the real table scores > 0.9
        assert result["synthetic"]["accuracy"] < 0.6
        assert result["real"]["accuracy"] > 0.9


def test_regression_scores_r2_and_rmse():
    rng = np.random.default_rng(2)
    train, test, synthetic = toy(rng, 300), toy(rng, 200), toy(rng, 300)
    result = efficiency(train, test, synthetic, REGRESSION, seed=0, model="linear")
    truth = test["y"].to_numpy()
    # y = 2x + N(0, 0.3²): a linear fit leaves the noise, RMSE ≈ 0.3 and R² ≈ 1 − 0.09 / var(y)
    assert result["synthetic"]["rmse"] == pytest.approx(0.3, rel=0.15)
    assert result["synthetic"]["r2"] == pytest.approx(1 - result["synthetic"]["rmse"] ** 2 / truth.var(), abs=1e-9)
    assert result["score"] == result["synthetic"]["r2"] > 0.97
    flat = synthetic.assign(y=rng.permutation(synthetic["y"].to_numpy()))
    assert efficiency(train, test, flat, REGRESSION, seed=0, model="linear")["synthetic"]["r2"] < 0.1


def test_needs_a_target():
    rng = np.random.default_rng(3)
    spec = TableSpec(numerical=["x", "y"], categorical=["colour", "label"])
    table = toy(rng, 20)
    with pytest.raises(ValueError, match="no target"):
        efficiency(table, table, table, spec)
    with pytest.raises(ValueError, match="unknown `model` 'boost'"):
        efficiency(table, table, table, SPEC, model="boost")
    one_class = table.assign(label=0)
    with pytest.raises(ValueError, match="one class"):
        efficiency(table, table, one_class, SPEC, model="linear")
