import numpy as np
import pandas as pd
import pytest

from glu_zoo.evaluation import alpha_precision_beta_recall
from glu_zoo.evaluation.fidelity import precision_recall_curves
from tests.evaluation.tables import NUMERICAL, SPEC, toy


def _curves_by_loops(real, synthetic, alphas):
    """The definition, one row at a time with brute-force nearest neighbours."""
    centre = real.mean(axis=0)
    synthetic_centre = synthetic.mean(axis=0)
    real_distances = sorted(float(np.sqrt(((row - centre) ** 2).sum())) for row in real)
    precision, recall = [], []
    nearest = []
    for i, row in enumerate(real):
        others = [np.sqrt(((row - other) ** 2).sum()) for j, other in enumerate(real) if j != i]
        to_synthetic = [np.sqrt(((row - s) ** 2).sum()) for s in synthetic]
        k = int(np.argmin(to_synthetic))
        nearest.append((min(others), to_synthetic[k], np.sqrt(((synthetic[k] - synthetic_centre) ** 2).sum())))
    nearest_distances = sorted(d for _, _, d in nearest)
    for alpha in alphas:
        radius = np.quantile(real_distances, alpha)
        precision.append(np.mean([np.sqrt(((s - centre) ** 2).sum()) <= radius for s in synthetic]))
        s_alpha = np.quantile(nearest_distances, alpha)
        recall.append(np.mean([rs <= rr and d <= s_alpha for rr, rs, d in nearest]))
    return np.array(precision), np.array(recall)


def test_curves_match_the_definition():
    rng = np.random.default_rng(0)
    real, synthetic = rng.normal(size=(40, 3)), rng.normal(0.3, 1.3, size=(25, 3))
    alphas, precision, recall = precision_recall_curves(real, synthetic, steps=11)
    np.testing.assert_allclose(alphas, np.linspace(0, 1, 11))
    expected_precision, expected_recall = _curves_by_loops(real, synthetic, alphas)
    np.testing.assert_array_equal(precision, expected_precision)
    np.testing.assert_array_equal(recall, expected_recall)


def test_identical_tables_score_one_up_to_the_quantile_granularity():
    rng = np.random.default_rng(1)
    table = toy(rng, 300)
    result = alpha_precision_beta_recall(table, table.copy(), SPEC)
    assert result["alpha_precision"] > 0.99 and result["beta_recall"] > 0.99


def test_a_fresh_sample_scores_high_precision_and_the_usual_recall():
    rng = np.random.default_rng(2)
    result = alpha_precision_beta_recall(toy(rng, 300), toy(rng, 300), SPEC)
    assert result["alpha_precision"] > 0.9
    # a real row's nearest synthetic row beats its nearest other real row about half the time
    assert 0.35 < result["beta_recall"] < 0.7


def test_collapsed_and_distant_tables_score_low():
    rng = np.random.default_rng(3)
    real = toy(rng, 300)[["x", "y"]]
    centre = pd.DataFrame({"x": np.full(300, real["x"].mean()), "y": np.full(300, real["y"].mean())})
    collapsed = alpha_precision_beta_recall(real, centre, NUMERICAL)
    # every synthetic row inside every α-ball: P(α) = 1, precision = 1 − Σ(1 − α)/Σα = 0
    assert collapsed["alpha_precision"] == pytest.approx(0.0, abs=1e-12)
    assert collapsed["beta_recall"] < 0.05
    distant = alpha_precision_beta_recall(real, real + 100.0, NUMERICAL)
    assert distant == {"alpha_precision": pytest.approx(0.0, abs=1e-12), "beta_recall": pytest.approx(0.0, abs=1e-12)}
