"""Input checks and the numeric encoding that the evaluation metrics share.

The metrics encode tables with scikit-learn directly (one-hot categorical
columns, scaled numerical columns) so that a score never depends on the
encoder of the model being scored.
"""

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from glu_zoo.data.tabular import TableSpec

MISSING = "<missing>"  # the category a missing categorical value becomes in the encoding


def check_spec(spec, owner):
    if not isinstance(spec, TableSpec):
        raise ValueError(f"{owner}: `spec` must be a TableSpec; got {type(spec).__name__}.")
    return spec


def check_positive_int(name, value, owner, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: `{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_seed(seed, owner):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{owner}: `seed` must be a non-negative integer; got {seed!r}.")
    return int(seed)


def check_table(name, table, spec, owner):
    """`table` as a DataFrame holding exactly the spec's columns, in the spec's order.

    Raises ValueError naming the argument for: not a DataFrame, missing or
    extra columns (both named), no rows, a non-numeric or infinite numerical
    column, and a missing value in a column the spec does not let be missing
    (the column and the first bad row are named).
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{owner}: `{name}` must be a pandas DataFrame; got {type(table).__name__}.")
    columns = list(spec.columns)
    absent = [c for c in columns if c not in table.columns]
    extra = [c for c in table.columns if c not in columns]
    if absent or extra:
        raise ValueError(f"{owner}: `{name}` must hold exactly the spec's columns ({', '.join(columns)}); "
                         f"missing: {absent}, extra: {extra}.")
    if table.columns.duplicated().any():
        raise ValueError(f"{owner}: `{name}` names a column twice: "
                         f"{sorted(set(table.columns[table.columns.duplicated()]))}.")
    if len(table) == 0:
        raise ValueError(f"{owner}: `{name}` has no rows; at least one is needed.")
    table = table[columns]
    for column in spec.numerical_columns:
        values = table[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise ValueError(f"{owner}: `{name}` column {column!r} is numerical in the spec but has dtype "
                             f"{values.dtype}; allowed: integer or floating dtypes.")
        infinite = np.isinf(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if infinite.any():
            raise ValueError(f"{owner}: `{name}` column {column!r} holds an infinite value at row "
                             f"{table.index[np.argmax(infinite)]!r}; allowed: finite numbers.")
    for column in columns:
        if column in spec.missing:
            continue
        missing = table[column].isna().to_numpy()
        if missing.any():
            raise ValueError(f"{owner}: `{name}` column {column!r} holds a missing value at row "
                             f"{table.index[np.argmax(missing)]!r}; the spec allows missing values only in "
                             f"{list(spec.missing)}.")
    return table


def categorical_strings(values):
    """A categorical column as strings, a missing value as its own category."""
    return np.array([MISSING if pd.isna(v) else str(v) for v in values], dtype=object)


class Encoding:
    """One-hot categorical columns and scaled numerical columns, with scikit-learn.

    Numerical columns (with a missing value imputed by the reference median and
    a 0/1 indicator appended for the columns the spec lets be missing) are
    scaled by statistics of `reference` alone: `scale="standard"` (zero mean,
    unit variance) or `"minmax"` (the reference range mapped to [0, 1]).
    Categorical columns become 0/1 one-hot blocks whose categories are the
    sorted union of the values seen in `reference` and `others` (compared as
    strings), so that a category only the synthetic table holds still gets a
    column of its own.

    Args:
        spec: the TableSpec.
        reference: the checked DataFrame that fixes medians and scale.
        others: further checked DataFrames that add categories.
        columns: the columns to encode (default: all of the spec's).
        scale: "standard" or "minmax".
    """

    def __init__(self, spec, reference, others=(), columns=None, scale="standard"):
        columns = list(spec.columns if columns is None else columns)
        self.numerical = [c for c in spec.numerical_columns if c in columns]
        self.categorical = [c for c in spec.categorical_columns if c in columns]
        self.indicators = [c for c in self.numerical if c in spec.missing]
        self.medians = {c: float(reference[c].median()) if reference[c].notna().any() else 0.0
                        for c in self.numerical}
        self.scaler = None
        if self.numerical:
            self.scaler = (StandardScaler() if scale == "standard" else MinMaxScaler()).fit(
                self._numbers(reference))
        self.onehot = None
        if self.categorical:
            tables = (reference, *others)
            categories = [sorted(set(np.concatenate([categorical_strings(t[c]) for t in tables])))
                          for c in self.categorical]
            self.onehot = OneHotEncoder(categories=categories, sparse_output=False, dtype=np.float64,
                                        handle_unknown="ignore")
            self.onehot.fit(self._strings(reference))

    def _numbers(self, table):
        return np.stack([table[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in self.numerical], axis=1)

    def _strings(self, table):
        return np.stack([categorical_strings(table[c]) for c in self.categorical], axis=1)

    def transform(self, table):
        """The table as a float64 array (rows, width)."""
        parts = []
        if self.numerical:
            numbers = self._numbers(table)
            missing = np.isnan(numbers)
            numbers = np.where(missing, np.array([self.medians[c] for c in self.numerical]), numbers)
            parts.append(self.scaler.transform(numbers))
            if self.indicators:
                parts.append(missing[:, [self.numerical.index(c) for c in self.indicators]].astype(np.float64))
        if self.categorical:
            parts.append(self.onehot.transform(self._strings(table)))
        if not parts:
            return np.zeros((len(table), 0))
        return np.concatenate(parts, axis=1)


def mean_or_none(values):
    """The mean of the finite values, or None when there are none (JSON has no NaN)."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None
