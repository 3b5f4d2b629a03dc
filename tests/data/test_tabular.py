"""TableSpec, TableEncoder and the table loaders (pure NumPy / pandas / scikit-learn; no backend needed)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from glu_zoo.data import Table, TableEncoder, TableSpec, list_tables, load_table, read_table

# The float32 encoding rounds a normal score z to 2^-24·|z| (≈ 6e-8 relative); the inverse quantile map multiplies
# that by its slope dx/dz, which is a fraction of the column's range. Measured on the four bundled tables: at most
# 5.8e-7·(|x| + range) (the float64 map alone inverts to 2e-15·range). Hence this tolerance for numerical columns.
RTOL = 1e-6


def assert_numbers_close(decoded, original, columns):
    for name in columns:
        x = original[name].to_numpy(dtype=np.float64, na_value=np.nan)
        y = decoded[name].to_numpy(dtype=np.float64, na_value=np.nan)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(x), err_msg=name)
        span = np.nanmax(x) - np.nanmin(x)
        ok = ~np.isnan(x)
        np.testing.assert_allclose(y[ok], x[ok], rtol=RTOL, atol=RTOL * span, err_msg=name)


def mixed_table(rng, n=240):
    """Every kind of column the encoder handles, in an order unlike the spec's."""
    income = rng.lognormal(10.0, 1.0, n)
    income[rng.random(n) < 0.1] = np.nan
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    colour[rng.random(n) < 0.15] = None
    return pd.DataFrame({
        "label": pd.Series(rng.choice(["no", "yes"], n), dtype="str"),
        "age": rng.integers(18, 90, n).astype(np.int64),
        "ratio": rng.normal(0.0, 1.0, n).astype(np.float32),
        "income": income,
        "colour": colour,
        "grade": pd.Series(rng.choice(["a", "b", "c"], n), dtype=pd.CategoricalDtype(["c", "b", "a", "d"])),
        "smoker": rng.random(n) < 0.3,
        "rooms": rng.integers(1, 6, n).astype(np.int32),
        "count": pd.Series(rng.integers(0, 50, n), dtype="Int64"),
    })


MIXED_SPEC = TableSpec(numerical=["age", "ratio", "income", "count"],
                       categorical=["colour", "grade", "smoker", "rooms"], target="label", task="classification",
                       missing=["income", "colour"])


@pytest.fixture
def mixed():
    rng = np.random.default_rng(0)
    df = mixed_table(rng)
    return df, TableEncoder(MIXED_SPEC).fit(df)


# --- TableSpec ----------------------------------------------------------------------------------------------------


def test_spec_blocks_follow_the_task():
    spec = TableSpec(numerical=["a", "b"], categorical=["c"], target="y", task="regression")
    assert spec.columns == ("a", "b", "c", "y")
    assert spec.numerical_columns == ("a", "b", "y") and spec.categorical_columns == ("c",)
    spec = TableSpec(numerical=["a"], categorical=["c"], target="y", task="classification")
    assert spec.numerical_columns == ("a",) and spec.categorical_columns == ("c", "y")
    assert TableSpec.from_config(json.loads(json.dumps(spec.get_config()))) == spec


@pytest.mark.parametrize("kwargs, match", [
    ({"numerical": "ab"}, "`numerical` must be a list"),
    ({"numerical": ["a"], "categorical": ["a"]}, "declared twice"),
    ({"numerical": ["a"], "target": "y"}, "`task` must be one of"),
    ({"numerical": ["a"], "task": "regression"}, "needs a `target`"),
    ({"numerical": ["a"], "missing": ["b"]}, "not declared"),
    ({}, "no columns declared"),
])
def test_spec_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TableSpec(**kwargs)


# --- TableEncoder: layout and values ---------------------------------------------------------------------------------


def test_layout(mixed):
    df, encoder = mixed
    x = encoder.transform(df)
    # numerical: age, ratio, income, count, then income's missing indicator
    assert encoder.numerical_width == 5
    # colour (blue, green, red, missing), grade (a, b, c: the values seen), smoker, rooms (1..5), label
    assert encoder.categories == {"colour": ["blue", "green", "red", None], "grade": ["a", "b", "c"],
                                  "smoker": [False, True], "rooms": [1, 2, 3, 4, 5], "label": ["no", "yes"]}
    assert encoder.category_slices == [("colour", 5, 9), ("grade", 9, 12), ("smoker", 12, 14), ("rooms", 14, 19),
                                       ("label", 19, 21)]
    assert encoder.width == 21 and x.shape == (len(df), 21) and x.dtype == np.float32
    assert encoder.target_slice == (19, 21) and encoder.classes == ["no", "yes"]
    assert encoder.columns == list(df.columns)


def test_one_hot_blocks_are_plus_minus_one_at_the_sorted_category(mixed):
    df, encoder = mixed
    x = encoder.transform(df)
    for name, start, stop in encoder.category_slices:
        block = x[:, start:stop]
        assert set(np.unique(block)) == {-1.0, 1.0}, name
        np.testing.assert_array_equal((block == 1).sum(axis=1), 1, err_msg=name)
        expected = [encoder.categories[name].index(None if pd.isna(v) else v) for v in df[name]]
        np.testing.assert_array_equal(block.argmax(axis=1), expected, err_msg=name)


def test_numerical_block_is_the_normal_quantile_map(mixed):
    df, encoder = mixed
    x = encoder.transform(df)
    ratio = df["ratio"].to_numpy(np.float64)
    # a continuous column of distinct values maps to the normal scores of its ranks (between quantile knots the map
    # is piecewise linear in the CDF, so the scores are close to, not equal to, Φ⁻¹ of the empirical CDF)
    assert np.all(np.diff(x[np.argsort(ratio), 1]) > 0)  # strictly monotone
    assert abs(x[:, 1].mean()) < 0.05 and abs(x[:, 1].std() - 1.0) < 0.1
    # the knots themselves land exactly on Φ⁻¹ of their reference probability (min and max at ±5.199, the
    # transformer's clip at 1e-7)
    np.testing.assert_allclose(x[np.argmin(ratio), 1], stats.norm.ppf(1e-7), rtol=1e-5)
    np.testing.assert_allclose(x[np.argmax(ratio), 1], -stats.norm.ppf(1e-7), rtol=1e-5)
    assert stats.kstest(x[:, 1], "norm").pvalue > 0.05


@pytest.mark.parametrize("n_rows, expected", [(5, 5), (100, 10), (299, 10), (620, 20), (3_000, 100),
                                              (45_000, 1000)])
def test_n_quantiles_rule(n_rows, expected):
    """max(min(N // 30, 1000), 10), never more than N rows."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"v": rng.normal(size=n_rows)})
    encoder = TableEncoder(TableSpec(numerical=["v"])).fit(df)
    assert encoder.n_quantiles_ == expected
    assert len(encoder.get_config()["state"]["quantiles"][0]) == expected


def test_n_quantiles_given():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"v": rng.normal(size=500)})
    assert TableEncoder(TableSpec(numerical=["v"]), n_quantiles=77).fit(df).n_quantiles_ == 77


def test_every_row_is_used():
    """No subsampling: the extreme knots are the training minimum and maximum even for a large table."""
    rng = np.random.default_rng(3)
    v = rng.normal(size=20_000)
    encoder = TableEncoder(TableSpec(numerical=["v"])).fit(pd.DataFrame({"v": v}))
    knots = encoder.get_config()["state"]["quantiles"][0]
    assert knots[0] == v.min() and knots[-1] == v.max()


# --- round trip --------------------------------------------------------------------------------------------------


def test_round_trip_mixed(mixed):
    df, encoder = mixed
    back = encoder.inverse_transform(encoder.transform(df))
    assert list(back.columns) == list(df.columns)
    assert back.dtypes.to_dict() == df.dtypes.to_dict()
    for name in MIXED_SPEC.categorical_columns:
        pd.testing.assert_series_equal(back[name], df[name], check_names=True)
    for name in ("age", "rooms", "count"):  # integers come back exactly (rounded)
        pd.testing.assert_series_equal(back[name], df[name])
    assert_numbers_close(back, df, MIXED_SPEC.numerical_columns)
    assert back["income"].isna().sum() > 0


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "iris", "diabetes"])
def test_round_trip_bundled(name):
    table = load_table(name)
    encoder = TableEncoder(table.spec).fit(table.train)
    back = encoder.inverse_transform(encoder.transform(table.train))
    assert list(back.columns) == list(table.train.columns)
    assert back.dtypes.to_dict() == table.train.dtypes.to_dict()
    for column in table.spec.categorical_columns:
        pd.testing.assert_series_equal(back[column], table.train[column])
    assert_numbers_close(back, table.train, table.spec.numerical_columns)


def test_decoding_is_arg_max_and_clipped(mixed):
    """Any model output decodes: every row gets a class (arg-max, even when no output is positive), numbers stay
    in the training range, integers are integers."""
    df, encoder = mixed
    rng = np.random.default_rng(4)
    out = rng.normal(0.0, 3.0, (500, encoder.width))
    for _, start, stop in encoder.category_slices:
        out[:250, start:stop] = -np.abs(out[:250, start:stop]) - 0.1  # no positive output at all
    back = encoder.inverse_transform(out)
    for name, start, stop in encoder.category_slices:
        known = encoder.categories[name]
        expected = [known[i] for i in out[:, start:stop].argmax(axis=1)]
        got = [None if pd.isna(v) else v for v in back[name]]
        assert got == expected, name
        if None not in known:
            assert back[name].notna().all(), name
    for name in MIXED_SPEC.numerical_columns:
        values = back[name].dropna().to_numpy(np.float64)
        assert values.min() >= df[name].min() and values.max() <= df[name].max(), name
    extreme = encoder.inverse_transform(np.full((2, encoder.width), 40.0) * np.array([[1.0], [-1.0]]))
    assert extreme["age"].tolist() == [df["age"].max(), df["age"].min()]
    assert back["age"].dtype == np.int64 and back["rooms"].dtype == np.int32


def test_inverse_of_a_float32_tensor_like(mixed):
    df, encoder = mixed
    x = encoder.transform(df)
    pd.testing.assert_frame_equal(encoder.inverse_transform(x), encoder.inverse_transform(x.astype(np.float64)))


# --- missing values ------------------------------------------------------------------------------------------------


def test_missing_numerical_is_median_imputed_with_an_indicator(mixed):
    df, encoder = mixed
    x = encoder.transform(df)
    missing = df["income"].isna().to_numpy()
    np.testing.assert_array_equal(x[:, 4], np.where(missing, 1.0, -1.0))
    median = np.median(df["income"].dropna())
    at_median = encoder.transform(df.assign(income=median))[:, 2]
    np.testing.assert_array_equal(x[missing, 2], at_median[missing])
    assert abs(at_median[0]) < 0.05  # the median maps to about 0


def test_missing_categorical_is_its_own_category(mixed):
    df, encoder = mixed
    x = encoder.transform(df)
    missing = df["colour"].isna().to_numpy()
    np.testing.assert_array_equal(x[:, 8], np.where(missing, 1.0, -1.0))  # the last of colour's block
    back = encoder.inverse_transform(x)
    np.testing.assert_array_equal(back["colour"].isna().to_numpy(), missing)


def test_declared_missing_gets_its_column_without_missing_in_training():
    """The layout depends on the spec: an int column declared missing comes back as pandas's nullable Int64 when a
    generated row is missing; a bool categorical as nullable boolean."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"n": rng.integers(0, 9, 50), "b": rng.random(50) < 0.5})
    encoder = TableEncoder(TableSpec(numerical=["n"], categorical=["b"], missing=["n", "b"])).fit(df)
    assert encoder.numerical_width == 2 and encoder.categories["b"] == [False, True, None]
    x = encoder.transform(df)
    assert (x[:, 1] == -1).all() and (x[:, 4] == -1).all()
    x[:3, 1] = 1.0  # the indicator says missing
    x[:3, 2:5] = [-1, -1, 1]  # the missing category
    back = encoder.inverse_transform(x)
    assert str(back["n"].dtype) == "Int64" and back["n"].isna().tolist()[:4] == [True, True, True, False]
    assert str(back["b"].dtype) == "boolean" and back["b"].isna().sum() == 3
    assert back["n"][3:].astype(np.int64).tolist() == df["n"][3:].tolist()
    assert back["b"][3:].astype(bool).tolist() == df["b"][3:].tolist()


# --- config ------------------------------------------------------------------------------------------------------


def test_config_round_trip(mixed):
    df, encoder = mixed
    config = json.loads(json.dumps(encoder.get_config(), allow_nan=False))  # plain JSON: no arrays, no NaN
    rebuilt = TableEncoder.from_config(config)
    rng = np.random.default_rng(6)
    other = mixed_table(rng, n=60)
    other["rooms"] = other["rooms"].clip(1, 5)
    np.testing.assert_array_equal(rebuilt.transform(other), encoder.transform(other))
    out = rng.normal(size=(80, encoder.width))
    pd.testing.assert_frame_equal(rebuilt.inverse_transform(out), encoder.inverse_transform(out))
    for attribute in ("width", "numerical_width", "category_slices", "categories", "target_slice", "classes",
                      "columns"):
        assert getattr(rebuilt, attribute) == getattr(encoder, attribute), attribute
    assert rebuilt.get_config() == config


def test_refit_forgets_the_first_table(mixed):
    df, encoder = mixed
    rng = np.random.default_rng(9)
    other = mixed_table(rng, n=90)
    other["income"] = other["income"] * 10.0
    encoder.fit(other)
    np.testing.assert_array_equal(encoder.transform(other), TableEncoder(MIXED_SPEC).fit(other).transform(other))


def test_config_before_fit():
    encoder = TableEncoder.from_config(TableEncoder(MIXED_SPEC, n_quantiles=50).get_config())
    assert encoder.spec == MIXED_SPEC and encoder.n_quantiles == 50 and not encoder.fitted


def test_regression_target_is_a_numerical_column():
    table = load_table("diabetes")
    encoder = TableEncoder(table.spec).fit(table.train)
    start, stop = encoder.target_slice
    assert (start, stop) == (9, 10) and encoder.classes is None
    x = encoder.transform(table.train)
    order = np.argsort(table.train["target"].to_numpy())
    assert np.all(np.diff(x[order, start]) >= 0)
    assert TableEncoder(TableSpec(numerical=["a"])).fit(pd.DataFrame({"a": [1.0, 2.0]})).target_slice is None


# --- errors --------------------------------------------------------------------------------------------------------


def test_errors_of_the_columns(mixed):
    df, encoder = mixed
    with pytest.raises(ValueError, match=r"undeclared column\(s\) 'extra'"):
        encoder.transform(df.assign(extra=1.0))
    with pytest.raises(ValueError, match=r"lacks the declared column\(s\) 'ratio'; its columns: 'label'"):
        encoder.transform(df.drop(columns="ratio"))
    with pytest.raises(ValueError, match=r"numerical column 'age' must have an integer or float dtype; got str"):
        TableEncoder(MIXED_SPEC).fit(df.assign(age=df["age"].astype("str")))
    with pytest.raises(ValueError, match=r"numerical column 'age' must have an integer or float dtype; got bool"):
        encoder.transform(df.assign(age=df["age"] > 40))
    with pytest.raises(ValueError, match="must be a pandas DataFrame; got ndarray"):
        encoder.transform(encoder.transform(df))
    with pytest.raises(ValueError, match="more than once"):
        encoder.transform(pd.concat([df, df[["age"]]], axis=1))


def test_errors_of_the_values(mixed):
    df, encoder = mixed
    bad = df.copy()
    bad.index = bad.index + 100
    bad.loc[107, "ratio"] = np.nan
    bad.loc[109, "ratio"] = np.nan
    with pytest.raises(ValueError, match=r"column 'ratio' holds a missing value at row 107 \(position 7\).*"
                                         r"may be missing: 'income', 'colour'"):
        encoder.transform(bad)
    with pytest.raises(ValueError, match="column 'grade' holds a missing value at row 3"):
        encoder.transform(df.assign(grade=df["grade"].where(df.index != 3)))
    with pytest.raises(ValueError, match=r"'ratio' holds inf at row 2 \(position 2\); values must be finite"):
        encoder.fit(df.assign(ratio=df["ratio"].where(df.index != 2, np.inf)))
    other = df.copy()
    other.loc[5, "rooms"] = 9
    with pytest.raises(ValueError, match=r"'rooms' holds 9 at row 5 .*not seen in training; known: 1, 2, 3, 4, 5"):
        encoder.transform(other)
    with pytest.raises(ValueError, match="'label' holds 'maybe' at row 0"):
        encoder.transform(df.assign(label=["maybe"] + df["label"].tolist()[1:]))


def test_errors_of_the_array(mixed):
    df, encoder = mixed
    with pytest.raises(ValueError, match=r"`array` must have shape \(rows, 21\); got \(4, 20\)"):
        encoder.inverse_transform(np.zeros((4, 20)))
    with pytest.raises(ValueError, match=r"`array` must have shape \(rows, 21\); got \(21,\)"):
        encoder.inverse_transform(np.zeros(21))
    out = np.zeros((4, 21))
    out[2, 3] = np.nan
    with pytest.raises(ValueError, match="`array` must be finite; row 2 holds NaN"):
        encoder.inverse_transform(out)
    with pytest.raises(ValueError, match="`array` must be a numeric array"):
        encoder.inverse_transform([["a"] * 21])


def test_errors_before_fit_and_of_the_arguments(mixed):
    df, _ = mixed
    encoder = TableEncoder(MIXED_SPEC)
    with pytest.raises(ValueError, match=r"TableEncoder.transform: the encoder is not fitted; call fit\(df\)"):
        encoder.transform(df)
    with pytest.raises(ValueError, match="TableEncoder.inverse_transform: the encoder is not fitted"):
        encoder.inverse_transform(np.zeros((2, 21)))
    with pytest.raises(ValueError, match="TableEncoder.width: the encoder is not fitted"):
        encoder.width
    with pytest.raises(ValueError, match="`spec` must be a TableSpec or its config; got list"):
        TableEncoder(["a"])
    for value in (1, True, 2.5, "10"):
        with pytest.raises(ValueError, match=r"`n_quantiles` must be None \(the paper's rule\) or an integer ≥ 2"):
            TableEncoder(MIXED_SPEC, n_quantiles=value)
    with pytest.raises(ValueError, match="at least 2 rows; got 1"):
        encoder.fit(df.iloc[:1])
    with pytest.raises(ValueError, match="'income' holds no value"):
        encoder.fit(df.assign(income=np.nan))
    with pytest.raises(ValueError, match="holds .* of type Timestamp; allowed: strings"):
        TableEncoder(TableSpec(categorical=["d"])).fit(pd.DataFrame({"d": pd.to_datetime(["2020-01-01"] * 3)}))


# --- loaders ---------------------------------------------------------------------------------------------------------

SIZES = {"wine": (178, 14, 3), "breast_cancer": (569, 31, 2), "iris": (150, 5, 3), "diabetes": (442, 11, None)}


def test_list_tables():
    assert list_tables() == ["breast_cancer", "diabetes", "iris", "wine"]


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "iris", "diabetes"])
def test_load_table(name):
    rows, columns, n_classes = SIZES[name]
    table = load_table(name)
    assert isinstance(table, Table) and name in table.description
    assert len(table.train) + len(table.test) == rows and len(table.test) == int(np.ceil(0.2 * rows))
    assert table.train.shape[1] == table.test.shape[1] == columns
    assert list(table.train.columns) == list(table.test.columns) and set(table.train.columns) == set(table.spec.columns)
    assert table.train.index.equals(pd.RangeIndex(len(table.train)))
    # a partition of the source rows: train and test together are the whole table, each row once
    both = pd.concat([table.train, table.test], ignore_index=True)
    full = pd.concat([load_table(name, test_size=0.0).train], ignore_index=True)
    key = list(both.columns)
    pd.testing.assert_frame_equal(both.sort_values(key, ignore_index=True), full.sort_values(key, ignore_index=True))
    if n_classes is not None:
        assert table.spec.task == "classification" and table.train["target"].dtype == "str"
        counts_full = full["target"].value_counts()
        counts_test = table.test["target"].value_counts()
        assert len(counts_test) == n_classes
        # stratified: each class's test share within one row of 20 %
        assert (np.abs(counts_test - 0.2 * counts_full) <= 1).all()
    else:
        assert table.spec.task == "regression" and table.spec.categorical == ("sex",)


def test_wine_classes_are_the_names_in_source_order():
    full = load_table("wine", test_size=0.0).train
    assert full["target"].tolist() == ["class_0"] * 59 + ["class_1"] * 71 + ["class_2"] * 48


def test_load_table_seed():
    a, b, c = load_table("wine", seed=3), load_table("wine", seed=3), load_table("wine", seed=4)
    pd.testing.assert_frame_equal(a.train, b.train)
    pd.testing.assert_frame_equal(a.test, b.test)
    assert not a.test.equals(c.test)
    # shuffled: the training rows are not in class order
    assert not a.train["target"].is_monotonic_increasing


def test_load_table_errors():
    with pytest.raises(ValueError, match="unknown table 'adult'; known: breast_cancer, diabetes, iris, wine"):
        load_table("adult")
    for value in (1.0, -0.1, "0.2", True):
        with pytest.raises(ValueError, match=r"`test_size` must be a number in \[0, 1\)"):
            load_table("iris", test_size=value)
    with pytest.raises(ValueError, match="`seed` must be a non-negative integer"):
        load_table("iris", seed=-1)


def csv_frame(rng, n=60):
    return pd.DataFrame({"x": rng.normal(size=n), "k": rng.integers(0, 4, n), "city": rng.choice(["a", "b"], n),
                         "y": rng.choice(["u", "v"], n), "note": ["free text"] * n})


CSV_SPEC = TableSpec(numerical=["x", "k"], categorical=["city"], target="y", task="classification")


def test_read_table_csv(tmp_path):
    rng = np.random.default_rng(7)
    df = csv_frame(rng)
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    table = read_table(path, CSV_SPEC, drop=["note"], seed=1)
    assert list(table.train.columns) == ["x", "k", "city", "y"]  # the file's order, `note` dropped
    assert len(table.train) == 48 and len(table.test) == 12
    assert table.train["k"].dtype == np.int64 and "t.csv" in table.description
    both = pd.concat([table.train, table.test]).sort_values(["x"], ignore_index=True)
    np.testing.assert_allclose(both["x"], np.sort(df["x"]))
    same = read_table(df.drop(columns="note"), CSV_SPEC.get_config(), seed=1)
    pd.testing.assert_frame_equal(same.test.drop(columns="x"), table.test.drop(columns="x"))


def test_read_table_errors(tmp_path):
    rng = np.random.default_rng(8)
    df = csv_frame(rng)
    path = tmp_path / "t.csv"
    df.drop(columns="city").to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"lacks the declared column\(s\) 'city'; its columns: 'x', 'k', 'y', 'note'"):
        read_table(path, CSV_SPEC, drop=["note"])
    with pytest.raises(ValueError, match=r"undeclared column\(s\) 'note'; declare them in the TableSpec or drop"):
        read_table(df, CSV_SPEC)
    with pytest.raises(ValueError, match="`drop` names 'nothing', which are not columns"):
        read_table(df, CSV_SPEC, drop=["nothing"])
    with pytest.raises(ValueError, match="numerical column 'x' must have an integer or float dtype; got str"):
        read_table(df.assign(x=df["city"]), CSV_SPEC, drop=["note"])
    with pytest.raises(ValueError, match=r"column 'y' holds a missing value at row 4"):
        read_table(df.assign(y=df["y"].where(df.index != 4)), CSV_SPEC, drop=["note"])
    with pytest.raises(ValueError, match="is not a file"):
        read_table(tmp_path / "none.csv", CSV_SPEC)
    with pytest.raises(ValueError, match="class 'w' of target 'y' has 1 row"):
        read_table(df.assign(y=["w"] + df["y"].tolist()[1:]), CSV_SPEC, drop=["note"])
    with pytest.raises(ValueError, match="`source` must be a CSV path or a pandas DataFrame; got dict"):
        read_table({"x": [1]}, CSV_SPEC)
