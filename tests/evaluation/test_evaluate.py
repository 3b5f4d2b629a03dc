import json

import numpy as np
import pandas as pd
import pytest

from glu_zoo.data.tabular import TableSpec
from glu_zoo.evaluation import (
    alpha_precision_beta_recall,
    c2st,
    column_pair_trends,
    column_shapes,
    distance_to_closest_record,
    efficiency,
    evaluate,
)
from tests.evaluation.tables import SPEC, shuffle_columns, toy


def test_evaluate_returns_every_family_as_plain_json():
    rng = np.random.default_rng(0)
    train, test = toy(rng, 200), toy(rng, 60)
    result = evaluate(train, test, toy(rng, 200), SPEC, seed=0, n_estimators=20)
    assert set(result) == {"shapes", "trends", "detection", "efficiency", "fidelity", "privacy", "summary"}
    text = json.dumps(result, allow_nan=False)  # plain values, no NaN, no NumPy scalars
    assert json.loads(text) == result
    summary = result["summary"]
    assert summary["copied_share"] == 0.0 and abs(summary["c2st_auc"] - 0.5) < 0.15
    assert summary["shapes"] > 0.85 and summary["trends"] > 0.85 and summary["mle_synthetic"] > 0.85


def test_evaluate_separates_a_copy_a_fresh_sample_and_a_shuffled_table():
    rng = np.random.default_rng(1)
    train, test = toy(rng, 200), toy(rng, 60)
    copy = evaluate(train, test, train, SPEC, n_estimators=20)["summary"]
    shuffled = evaluate(train, test, shuffle_columns(train, rng), SPEC, n_estimators=20)["summary"]
    assert copy["copied_share"] == 1.0 and copy["shapes"] == 1.0 and copy["trends"] == pytest.approx(1.0)
    assert shuffled["shapes"] == 1.0 and shuffled["trends"] < 0.7 and shuffled["c2st_auc"] > 0.9
    assert shuffled["mle_synthetic"] < 0.6


def test_without_a_target_efficiency_is_none():
    rng = np.random.default_rng(2)
    spec = TableSpec(numerical=["x", "y"], categorical=["colour", "label"])
    train = toy(rng, 60)
    result = evaluate(train, toy(rng, 30), toy(rng, 60), spec, n_estimators=5)
    assert result["efficiency"] is None and result["summary"]["mle_synthetic"] is None


_METRICS = [(column_shapes, ("real", "synthetic")), (column_pair_trends, ("real", "synthetic")),
            (c2st, ("real", "synthetic")), (alpha_precision_beta_recall, ("real", "synthetic")),
            (efficiency, ("real_train", "real_test", "synthetic")),
            (distance_to_closest_record, ("real_train", "real_test", "synthetic")),
            (evaluate, ("real_train", "real_test", "synthetic"))]


@pytest.mark.parametrize("argument", ["real", "real_test", "synthetic"])
def test_bad_tables_are_named(argument):
    rng = np.random.default_rng(3)
    good = toy(rng, 20)
    cases = [
        (good.drop(columns=["y"]), r"missing: \['y'\], extra: \[\]"),
        (good.assign(z=1.0), r"missing: \[\], extra: \['z'\]"),
        (good.iloc[:0], "has no rows"),
        (good.assign(x=good["x"].where(good.index != 4)), r"column 'x' holds a missing value at row 4"),
        (good.assign(colour=good["colour"].where(good.index != 7)),
         r"column 'colour' holds a missing value at row 7"),
        (good.assign(x=good["x"].astype(str)), r"column 'x' is numerical in the spec but has dtype"),
        (good.assign(label=good["label"] > 0).assign(x=good["x"] > 0), r"column 'x' is numerical .* dtype bool"),
        (good.assign(x=np.where(good.index == 2, np.inf, good["x"])), r"column 'x' holds an infinite value at row 2"),
        (good.to_numpy(), "must be a pandas DataFrame"),
    ]
    checked = 0
    for fn, names in _METRICS:
        name = "real_train" if argument == "real" and "real_train" in names else argument
        if name not in names:
            continue
        for bad, message in cases:
            kwargs = {n: good for n in names}
            kwargs[name] = bad
            with pytest.raises(ValueError, match=rf"^{fn.__name__}: `{name}` .*{message}"):
                fn(spec=SPEC, **kwargs)
            checked += 1
    assert checked == len(cases) * {"real": 7, "real_test": 3, "synthetic": 7}[argument]


def test_bad_arguments():
    rng = np.random.default_rng(4)
    table = toy(rng, 20)
    with pytest.raises(ValueError, match="`spec` must be a TableSpec; got dict"):
        column_shapes(table, table, SPEC.get_config())
    with pytest.raises(ValueError, match="`seed` must be a non-negative integer; got -1"):
        c2st(table, table, SPEC, seed=-1)
    with pytest.raises(ValueError, match="`folds` must be an integer >= 2; got 1"):
        c2st(table, table, SPEC, folds=1)
    with pytest.raises(ValueError, match="`real` has 3 rows; at least `folds` = 5"):
        c2st(table.iloc[:3], table, SPEC)
    with pytest.raises(ValueError, match="`shuffle` must be True or False; got 0"):
        c2st(table, table, SPEC, shuffle=0)
    with pytest.raises(ValueError, match="`bins` must be an integer >= 1; got 0"):
        column_pair_trends(table, table, SPEC, bins=0)
    with pytest.raises(ValueError, match="`steps` must be an integer >= 2; got 1"):
        alpha_precision_beta_recall(table, table, SPEC, steps=1)
    with pytest.raises(ValueError, match="`atol` must be a finite number >= 0; got -1"):
        distance_to_closest_record(table, table, table, SPEC, atol=-1)
    with pytest.raises(ValueError, match="`n_estimators` must be an integer >= 1; got 0"):
        efficiency(table, table, table, SPEC, n_estimators=0)


def test_missing_values_where_the_spec_allows_them():
    rng = np.random.default_rng(5)
    spec = TableSpec(numerical=["x", "y"], categorical=["colour"], target="label", task="classification",
                     missing=["x", "colour"])
    train, test, synthetic = toy(rng, 300), toy(rng, 60), toy(rng, 300)
    for table in (train, synthetic):
        table.loc[rng.choice(len(table), 30, replace=False), "x"] = np.nan
        table.loc[rng.choice(len(table), 30, replace=False), "colour"] = None
    result = evaluate(train, test, synthetic, spec, n_estimators=10)
    json.dumps(result, allow_nan=False)
    assert result["privacy"]["copied_share"] == 0.0
    assert result["shapes"]["score"] > 0.8
    # the same rows, the same missing cells: a copy, found through the imputed values and indicators
    assert distance_to_closest_record(train, test, train, spec)["copied_share"] == 1.0
