"""Mixed-type tables: the declared column types, their encoding, and loaders.

`TableSpec` declares which columns are numerical and which categorical, the
target column (it joins the categorical block for classification, the
numerical block for regression) and which columns may hold missing values.
`TableEncoder` turns such a table into the float32 matrix a generative model
learns (quantile-to-normal numbers, one-hot categories in {−1, 1}) and turns
the model's output back into a table with the training names and dtypes.
`load_table` splits scikit-learn's bundled tables; `read_table` a CSV file or
DataFrame with declared column types.
"""

import dataclasses

import numpy as np

__all__ = ["TASKS", "Table", "TableEncoder", "TableSpec", "list_tables", "load_table", "read_table"]

TASKS = ("classification", "regression")


def _names(field, value, owner):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{owner}: `{field}` must be a list of column names; got {value!r}.")
    for name in value:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{owner}: `{field}` must hold non-empty strings (column names); got {name!r}.")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """The column types of a table.

    Args:
        numerical: names of the numerical feature columns.
        categorical: names of the categorical feature columns.
        target: the target column's name, or None (a table with no target).
        task: "classification" (the target is categorical) or "regression"
            (numerical); required with a target, None without one.
        missing: the columns that may hold missing values (NaN / None); a
            missing value anywhere else is an error.

    `columns` is the table's column order: numerical, categorical, then the
    target. Every name appears once.
    """

    numerical: tuple = ()
    categorical: tuple = ()
    target: str = None
    task: str = None
    missing: tuple = ()

    def __post_init__(self):
        owner = "TableSpec"
        for field in ("numerical", "categorical", "missing"):
            object.__setattr__(self, field, _names(field, getattr(self, field), owner))
        if self.target is not None and (not isinstance(self.target, str) or not self.target):
            raise ValueError(f"{owner}: `target` must be a column name or None; got {self.target!r}.")
        if self.target is None and self.task is not None:
            raise ValueError(f"{owner}: `task` {self.task!r} needs a `target` column; got target=None.")
        if self.target is not None and self.task not in TASKS:
            raise ValueError(f"{owner}: `task` must be one of {', '.join(TASKS)} for target {self.target!r}; "
                             f"got {self.task!r}.")
        seen = set()
        for name in self.columns:
            if name in seen:
                raise ValueError(f"{owner}: column {name!r} is declared twice; each column has one type.")
            seen.add(name)
        if not self.columns:
            raise ValueError(f"{owner}: no columns declared; give `numerical`, `categorical` or `target`.")
        unknown = [name for name in self.missing if name not in seen]
        if unknown:
            raise ValueError(f"{owner}: `missing` names {unknown!r}, which are not declared columns; declared: "
                             f"{', '.join(self.columns)}.")

    @property
    def columns(self):
        """All columns in order: numerical, categorical, target."""
        return self.numerical + self.categorical + ((self.target,) if self.target is not None else ())

    @property
    def numerical_columns(self):
        """The columns encoded as numbers: the numerical features, then a regression target."""
        return self.numerical + ((self.target,) if self.task == "regression" else ())

    @property
    def categorical_columns(self):
        """The columns encoded one-hot: the categorical features, then a classification target."""
        return self.categorical + ((self.target,) if self.task == "classification" else ())

    def get_config(self):
        """Plain lists and strings (JSON), for a model's config and a preset."""
        return {"numerical": list(self.numerical), "categorical": list(self.categorical), "target": self.target,
                "task": self.task, "missing": list(self.missing)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# ---------------------------------------------------------------------------------------------------------------------
# TableEncoder: a table to a float32 matrix for a generative model, and back.

_OWNER = "TableEncoder"
_JSON_SCALARS = (str, bool, int, float)
_MAX_LISTED = 20


def _pandas():
    try:
        import pandas
    except ImportError as error:  # pragma: no cover - installed with scikit-learn's data sets
        raise ImportError("glu_zoo.data.tabular needs pandas: pip install pandas") from error
    return pandas


def _listed(values):
    """Up to _MAX_LISTED values, for an error message."""
    values = list(values)
    shown = ", ".join(map(repr, values[:_MAX_LISTED]))
    return shown + (f", … ({len(values)} in all)" if len(values) > _MAX_LISTED else "")


def _paper_n_quantiles(n_rows):
    """RecTable's rule (arXiv 2503.20731, after TabDDPM): max(min(N // 30, 1000), 10)."""
    return max(min(n_rows // 30, 1000), 10)


def _python(value):
    """A NumPy scalar as the Python scalar JSON writes."""
    return value.item() if hasattr(value, "item") and not isinstance(value, _JSON_SCALARS) else value


def _sorted_categories(values):
    try:
        return sorted(values)
    except TypeError:  # mixed types in one object column: group by type, then by value
        return sorted(values, key=lambda v: (type(v).__name__, str(v)))


def _is_numeric(dtype):
    """int / unsigned / float dtypes, NumPy or pandas nullable; not bool, not complex."""
    return getattr(dtype, "kind", None) in ("i", "u", "f")


def _dtype_config(dtype):
    if isinstance(dtype, _pandas().CategoricalDtype):
        return {"name": "category", "categories": [_python(v) for v in dtype.categories],
                "ordered": bool(dtype.ordered)}
    return {"name": str(dtype)}


def _dtype_from_config(config):
    pd = _pandas()
    if config["name"] == "category":
        return pd.CategoricalDtype(config["categories"], ordered=config["ordered"])
    return pd.api.types.pandas_dtype(config["name"])


def _restore(series, dtype):
    """`series` (missing as NaN / None) in the training dtype; a NumPy integer or bool dtype, which cannot hold a
    missing value, becomes pandas's nullable one (Int64, UInt8, boolean, …) when a value is missing."""
    if isinstance(dtype, np.dtype) and dtype.kind in "iub" and series.isna().any():
        dtype = "boolean" if dtype.kind == "b" else f"{'U' if dtype.kind == 'u' else ''}Int{8 * dtype.itemsize}"
    return series.astype(dtype)


def check_frame(df, spec, owner, name="df", drop=()):
    """`df` a DataFrame holding exactly the columns `spec` declares (plus the names in `drop`), each once."""
    pd = _pandas()
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{owner}: `{name}` must be a pandas DataFrame; got {type(df).__name__}.")
    present = [str(c) for c in df.columns]
    duplicated = sorted({c for c in present if present.count(c) > 1})
    if duplicated:
        raise ValueError(f"{owner}: `{name}` holds the columns {_listed(duplicated)} more than once.")
    absent = [c for c in spec.columns if c not in df.columns]
    if absent:
        raise ValueError(f"{owner}: `{name}` lacks the declared column(s) {_listed(absent)}; its columns: "
                         f"{_listed(present)}.")
    extra = [c for c in df.columns if c not in spec.columns and c not in drop]
    if extra:
        raise ValueError(f"{owner}: `{name}` holds the undeclared column(s) {_listed(extra)}; declare them in the "
                         f"TableSpec or drop them. Declared: {_listed(spec.columns)}.")


def _first(mask, df):
    """The index label and position of the first True of `mask`."""
    position = int(np.flatnonzero(mask)[0])
    return f"row {df.index[position]!r} (position {position})"


class TableEncoder:
    """Encodes a mixed-type table as a float32 matrix for a generative model, and decodes it exactly.

    Numerical columns (`spec.numerical_columns`: the numerical features, then a
    regression target) go through scikit-learn's `QuantileTransformer` to a
    standard normal, with the RecTable / TabDDPM rule for the number of
    quantiles (arXiv 2503.20731, 2209.15421): n_quantiles = max(min(N // 30,
    1000), 10) for N training rows (never more than N), every row used, no
    subsampling. Categorical columns (`spec.categorical_columns`: the
    categorical features, then a classification target) are one-hot with the
    sorted values seen in training as categories, scaled to {−1, 1}:
    e = 2·onehot − 1.

    Missing values are allowed only in the columns of `spec.missing`. A
    numerical one is imputed by the column's training median before the
    quantile map, and an indicator column (+1 missing, −1 present) joins the
    numerical block; a categorical one is a category of its own (the last of
    the block, `None` in `categories`). A declared column gets its indicator
    or its missing category even when training shows no missing value, so
    the layout depends on the spec and the categories only.

    Layout of `transform(df)` (float32, N × `width`): the numerical block
    (`spec.numerical_columns` in order, then the missing indicators in the
    same order; `numerical_width` columns), then the one-hot blocks in
    `spec.categorical_columns` order (`category_slices`).

    `inverse_transform(array)` returns a DataFrame with the training table's
    column names, order and dtypes: numerical values clipped to the training
    range (integer columns rounded), a category by arg-max over its block (a
    row always gets a class), a missing value where an indicator is > 0.

    Args:
        spec: a `TableSpec` (or its config).
        n_quantiles: the number of quantiles; None for the paper's rule.

    `get_config()` is plain JSON (spec, quantiles, categories, dtypes,
    medians, column order); `TableEncoder.from_config` rebuilds an encoder
    that encodes and decodes identically.
    """

    def __init__(self, spec, n_quantiles=None):
        if isinstance(spec, dict):
            spec = TableSpec.from_config(spec)
        if not isinstance(spec, TableSpec):
            raise ValueError(f"{_OWNER}: `spec` must be a TableSpec or its config; got {type(spec).__name__}.")
        if n_quantiles is not None and (isinstance(n_quantiles, bool) or not isinstance(n_quantiles, int)
                                        or n_quantiles < 2):
            raise ValueError(f"{_OWNER}: `n_quantiles` must be None (the paper's rule) or an integer ≥ 2; "
                             f"got {n_quantiles!r}.")
        self.spec = spec
        self.n_quantiles = n_quantiles
        self._state = None

    # --- fitting -----------------------------------------------------------------------------------------------

    def fit(self, df):
        """Learns the quantiles, medians, ranges, categories and dtypes of the training table `df`."""
        owner = f"{_OWNER}.fit"
        self._check(df, owner)
        n_rows = len(df)
        if n_rows < 2:
            raise ValueError(f"{owner}: `df` must hold at least 2 rows; got {n_rows}.")
        spec = self.spec
        state = {
            "columns": [str(c) for c in df.columns],
            "dtypes": {c: _dtype_config(df[c].dtype) for c in df.columns},
            "n_rows": n_rows,
        }
        medians, ranges = {}, {}
        for name in spec.numerical_columns:
            values = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
            present = values[~np.isnan(values)]
            if present.size == 0:
                raise ValueError(f"{owner}: numerical column {name!r} holds no value (all missing).")
            medians[name] = float(np.median(present))
            ranges[name] = [float(present.min()), float(present.max())]
        state["medians"], state["ranges"] = medians, ranges
        if spec.numerical_columns:
            rule = _paper_n_quantiles(n_rows) if self.n_quantiles is None else self.n_quantiles
            transformer = self._quantile_transformer(min(rule, n_rows), n_rows)
            transformer.fit(self._numbers(df, medians))
            state["n_quantiles"] = int(transformer.n_quantiles_)
            state["quantiles"] = transformer.quantiles_.T.tolist()  # one list per column
            state["references"] = transformer.references_.tolist()
        categories = {}
        for name in spec.categorical_columns:
            column = df[name]
            seen = {_python(v) for v in column[column.notna()].unique()}
            bad = [v for v in seen if not isinstance(v, _JSON_SCALARS)]
            if bad:
                raise ValueError(f"{owner}: categorical column {name!r} holds {bad[0]!r} of type "
                                 f"{type(bad[0]).__name__}; allowed: strings, integers, floats, booleans.")
            categories[name] = _sorted_categories(seen) + ([None] if name in spec.missing else [])
            if not categories[name]:
                raise ValueError(f"{owner}: categorical column {name!r} holds no value (all missing).")
        state["categories"] = categories
        self._set_state(state)
        return self

    def fit_transform(self, df):
        return self.fit(df).transform(df)

    def _quantile_transformer(self, n_quantiles, subsample):
        from sklearn.preprocessing import QuantileTransformer

        return QuantileTransformer(n_quantiles=n_quantiles, output_distribution="normal", subsample=subsample,
                                   random_state=0)

    def _set_state(self, state):
        """Derived attributes and the scikit-learn transformer from the plain `state`."""
        spec = self.spec
        self._state = state
        self._transformer = None
        if spec.numerical_columns:
            transformer = self._quantile_transformer(state["n_quantiles"], state["n_rows"])
            transformer.n_quantiles_ = state["n_quantiles"]
            transformer.references_ = np.asarray(state["references"], dtype=np.float64)
            transformer.quantiles_ = np.asarray(state["quantiles"], dtype=np.float64).T.reshape(
                state["n_quantiles"], len(spec.numerical_columns))
            transformer.n_features_in_ = len(spec.numerical_columns)
            self._transformer = transformer
        self._indicated = [c for c in spec.numerical_columns if c in spec.missing]
        start = len(spec.numerical_columns) + len(self._indicated)
        self._numerical_width = start
        slices = []
        for name in spec.categorical_columns:
            stop = start + len(state["categories"][name])
            slices.append((name, start, stop))
            start = stop
        self._slices = slices
        self._width = start
        self._index = {}
        pd = _pandas()
        for name in spec.categorical_columns:
            known = [v for v in state["categories"][name] if v is not None]
            self._index[name] = pd.Index(known, dtype=object)

    # --- attributes ----------------------------------------------------------------------------------------------

    def _fitted(self, what):
        if self._state is None:
            raise ValueError(f"{_OWNER}.{what}: the encoder is not fitted; call fit(df) with the training table "
                             "first.")
        return self._state

    @property
    def fitted(self):
        return self._state is not None

    @property
    def width(self):
        """Columns of the encoded array."""
        self._fitted("width")
        return self._width

    @property
    def numerical_width(self):
        """Columns of the numerical block: the quantile-normal values, then the missing indicators."""
        self._fitted("numerical_width")
        return self._numerical_width

    @property
    def category_slices(self):
        """(name, start, stop) of each one-hot block of the encoded array, in `spec.categorical_columns` order."""
        self._fitted("category_slices")
        return list(self._slices)

    @property
    def categories(self):
        """name → the categories of each categorical column, in block order (None: the missing category)."""
        return {name: list(values) for name, values in self._fitted("categories")["categories"].items()}

    @property
    def columns(self):
        """The training table's column order."""
        return list(self._fitted("columns")["columns"])

    @property
    def n_quantiles_(self):
        """The number of quantiles the fit used (None without numerical columns)."""
        return self._fitted("n_quantiles_").get("n_quantiles")

    @property
    def target_slice(self):
        """(start, stop) of the target in the encoded array (its one-hot block, or its one numerical column);
        None without a target."""
        self._fitted("target_slice")
        spec = self.spec
        if spec.task == "classification":
            return next((start, stop) for name, start, stop in self._slices if name == spec.target)
        if spec.task == "regression":
            index = spec.numerical_columns.index(spec.target)
            return (index, index + 1)
        return None

    @property
    def classes(self):
        """The target's class values in block order (classification), else None."""
        state = self._fitted("classes")
        if self.spec.task != "classification":
            return None
        return list(state["categories"][self.spec.target])

    # --- encoding ------------------------------------------------------------------------------------------------

    def _check(self, df, owner, name="df"):
        """Columns as declared, numeric dtypes in numerical columns, missing values only where declared."""
        spec = self.spec
        check_frame(df, spec, owner, name)
        for name in spec.numerical_columns:
            dtype = df[name].dtype
            if not _is_numeric(dtype):
                raise ValueError(f"{owner}: numerical column {name!r} must have an integer or float dtype; got "
                                 f"{dtype}. Declare it categorical, or convert it.")
            values = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
            infinite = np.isinf(values)
            if infinite.any():
                raise ValueError(f"{owner}: numerical column {name!r} holds {values[infinite][0]} at "
                                 f"{_first(infinite, df)}; values must be finite.")
        for name in spec.columns:
            if name in spec.missing:
                continue
            missing = df[name].isna().to_numpy()
            if missing.any():
                raise ValueError(f"{owner}: column {name!r} holds a missing value at {_first(missing, df)}, but "
                                 f"the spec does not allow it there; columns that may be missing: "
                                 f"{_listed(spec.missing) or 'none'}.")

    def _numbers(self, df, medians):
        """The numerical columns as float64, missing values imputed by the training `medians`."""
        columns = []
        for name in self.spec.numerical_columns:
            values = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
            columns.append(np.where(np.isnan(values), medians[name], values))
        return np.stack(columns, axis=1)

    def transform(self, df):
        """`df` (the training columns, any order) → float32 array (len(df), width)."""
        owner = f"{_OWNER}.transform"
        state = self._fitted("transform")
        self._check(df, owner)
        from sklearn.preprocessing import OneHotEncoder

        blocks = []
        if self._transformer is not None:
            blocks.append(self._transformer.transform(self._numbers(df, state["medians"])))
            for name in self._indicated:
                blocks.append(np.where(df[name].isna().to_numpy(), 1.0, -1.0)[:, None])
        codes, sizes = [], []
        for name in self.spec.categorical_columns:
            column = df[name]
            missing = column.isna().to_numpy()
            values = np.asarray(column.to_numpy(dtype=object, na_value=None), dtype=object)
            index = self._index[name]
            code = np.full(len(df), len(index), dtype=np.int64)  # the missing category is the last
            code[~missing] = index.get_indexer(values[~missing])
            unseen = code < 0
            if unseen.any():
                raise ValueError(f"{owner}: categorical column {name!r} holds {values[unseen][0]!r} at "
                                 f"{_first(unseen, df)}, a category not seen in training; known: "
                                 f"{_listed(state['categories'][name])}.")
            codes.append(code)
            sizes.append(len(state["categories"][name]))
        if codes:
            one_hot = OneHotEncoder(categories=[np.arange(size) for size in sizes], sparse_output=False,
                                    dtype=np.float64)
            blocks.append(2.0 * one_hot.fit_transform(np.stack(codes, axis=1)) - 1.0)
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def inverse_transform(self, array):
        """An encoded array (N, width) → DataFrame with the training columns, order and dtypes."""
        owner = f"{_OWNER}.inverse_transform"
        state = self._fitted("inverse_transform")
        pd = _pandas()
        try:
            values = np.asarray(array, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{owner}: `array` must be a numeric array; got {type(array).__name__}.") from error
        if values.ndim != 2 or values.shape[1] != self._width:
            raise ValueError(f"{owner}: `array` must have shape (rows, {self._width}); got {values.shape}.")
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
            raise ValueError(f"{owner}: `array` must be finite; row {row} holds NaN or infinity.")
        spec = self.spec
        decoded = {}
        if self._transformer is not None:
            n_num = len(spec.numerical_columns)
            numbers = self._transformer.inverse_transform(values[:, :n_num].copy())
            for i, name in enumerate(spec.numerical_columns):
                low, high = state["ranges"][name]
                column = np.clip(numbers[:, i], low, high)
                dtype = _dtype_from_config(state["dtypes"][name])
                if dtype.kind in "iu":
                    column = np.round(column)
                if name in self._indicated:
                    column = np.where(values[:, n_num + self._indicated.index(name)] > 0, np.nan, column)
                decoded[name] = _restore(pd.Series(column), dtype)
        for name, start, stop in self._slices:
            known = np.asarray(state["categories"][name], dtype=object)
            picked = known[np.argmax(values[:, start:stop], axis=1)]
            decoded[name] = _restore(pd.Series(picked, dtype=object), _dtype_from_config(state["dtypes"][name]))
        return pd.DataFrame({name: decoded[name] for name in state["columns"]})

    # --- config --------------------------------------------------------------------------------------------------

    def get_config(self):
        """Plain JSON: the spec, `n_quantiles`, and the fitted state (None before fit)."""
        return {"spec": self.spec.get_config(), "n_quantiles": self.n_quantiles,
                "state": None if self._state is None else _copy_json(self._state)}

    @classmethod
    def from_config(cls, config):
        encoder = cls(config["spec"], n_quantiles=config.get("n_quantiles"))
        if config.get("state") is not None:
            encoder._set_state(_copy_json(config["state"]))
        return encoder


def _copy_json(value):
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_json(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------------------------------
# Loaders: scikit-learn's bundled tables (nothing is downloaded) and any CSV / DataFrame with declared column types.


@dataclasses.dataclass(frozen=True)
class Table:
    """A table split for training a generator and scoring it: `train` and `test` DataFrames (fresh 0-based
    indexes, the same columns), the `spec` of their columns, and a one-paragraph `description`."""

    train: object
    test: object
    spec: TableSpec
    description: str


def _sklearn_table(loader, categorical=(), task="classification", **options):
    """A bundled scikit-learn table as (frame, spec); a classification target holds the class name."""
    bunch = loader(as_frame=True, **options)
    frame = bunch.frame.copy()
    if task == "classification":
        names = np.asarray(bunch.target_names, dtype=object)
        frame["target"] = _pandas().Series([str(v) for v in names[frame["target"].to_numpy()]], dtype="str")
    features = [c for c in frame.columns if c != "target"]
    spec = TableSpec(numerical=[c for c in features if c not in categorical], categorical=list(categorical),
                     target="target", task=task)
    return frame, spec


def _wine():
    from sklearn.datasets import load_wine

    return _sklearn_table(load_wine), ("UCI wine recognition (scikit-learn's bundled copy): 13 chemical measurements "
                                       "of wines from three cultivars; rows sorted by class in the source.")


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    return _sklearn_table(load_breast_cancer), ("Wisconsin diagnostic breast cancer (scikit-learn's bundled copy): "
                                                "30 measurements of cell nuclei; malignant or benign.")


def _iris():
    from sklearn.datasets import load_iris

    return _sklearn_table(load_iris), ("Fisher's iris (scikit-learn's bundled copy): 4 measurements of flowers of "
                                       "three species.")


def _diabetes():
    from sklearn.datasets import load_diabetes

    table = _sklearn_table(load_diabetes, categorical=("sex",), task="regression", scaled=False)
    return table, ("Efron et al.'s diabetes table (scikit-learn's bundled copy, unscaled): age, sex (categorical, "
                   "1.0 / 2.0), body-mass index, blood pressure and six blood serum measurements; the target is a "
                   "measure of disease progression one year later (regression).")


_TABLES = {"breast_cancer": _breast_cancer, "diabetes": _diabetes, "iris": _iris, "wine": _wine}


def list_tables():
    """The names `load_table` knows."""
    return sorted(_TABLES)


def _check_split(test_size, seed, owner):
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0.0 <= test_size < 1.0:
        raise ValueError(f"{owner}: `test_size` must be a number in [0, 1) (0: no test split); got {test_size!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{owner}: `seed` must be a non-negative integer; got {seed!r}.")


def _split(frame, spec, test_size, seed, owner):
    """A shuffled split, stratified by the target for classification; fresh 0-based indexes."""
    from sklearn.model_selection import train_test_split

    frame = frame.reset_index(drop=True)
    if test_size == 0:
        return frame, frame.iloc[:0].copy()
    stratify = frame[spec.target] if spec.task == "classification" else None
    if stratify is not None:
        counts = stratify.value_counts()
        if counts.min() < 2:
            raise ValueError(f"{owner}: class {counts.idxmin()!r} of target {spec.target!r} has "
                             f"{counts.min()} row; a stratified split needs at least 2 rows per class.")
    try:
        train, test = train_test_split(frame, test_size=test_size, random_state=seed, shuffle=True,
                                       stratify=stratify)
    except ValueError as error:
        raise ValueError(f"{owner}: cannot split {len(frame)} rows with test_size={test_size}: {error}") from error
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _describe(name, summary, spec, train, test):
    target = ""
    if spec.task == "classification":
        classes = sorted(train[spec.target].unique())
        target = f"; target {spec.target!r}: the class name, {len(classes)} classes ({', '.join(map(str, classes))})"
    elif spec.task == "regression":
        target = f"; target {spec.target!r}: numerical (regression)"
    return (f"{name}: {summary} {len(train) + len(test)} rows ({len(train)} train, {len(test)} test), "
            f"{len(spec.numerical)} numerical and {len(spec.categorical)} categorical feature columns{target}.")


def load_table(name, test_size=0.2, seed=0):
    """A scikit-learn bundled table as a `Table`, split train / test (shuffled with `seed`, stratified by class).

    "wine", "breast_cancer", "iris": classification; the column "target" holds
    the class *name* as a string (e.g. "class_0", "malignant"), so a decoded
    synthetic table reads as the real one. "diabetes": regression
    (`load_diabetes(scaled=False)`), "sex" categorical. Nothing is downloaded.
    """
    owner = "load_table"
    if name not in _TABLES:
        raise ValueError(f"{owner}: unknown table {name!r}; known: {', '.join(list_tables())}.")
    _check_split(test_size, seed, owner)
    (frame, spec), summary = _TABLES[name]()
    train, test = _split(frame, spec, test_size, seed, owner)
    return Table(train=train, test=test, spec=spec, description=_describe(name, summary, spec, train, test))


def read_table(source, spec, test_size=0.2, seed=0, drop=()):
    """A CSV file (read by pandas) or a DataFrame with declared column types, as a `Table`.

    Args:
        source: a path to a CSV file with a header row, or a pandas DataFrame.
        spec: the `TableSpec` of its columns (or its config). Every declared
            column must be present; a column not declared is an error unless
            named in `drop`.
        test_size: the share of rows held out (0: none), stratified by the
            target for classification.
        seed: the shuffle's seed.
        drop: columns to drop before checking.

    The table is checked as `TableEncoder` checks it (numeric dtypes in
    numerical columns, missing values only where `spec.missing` allows).
    """
    import os

    pd = _pandas()
    owner = "read_table"
    if isinstance(spec, dict):
        spec = TableSpec.from_config(spec)
    if not isinstance(spec, TableSpec):
        raise ValueError(f"{owner}: `spec` must be a TableSpec or its config; got {type(spec).__name__}.")
    drop = _names("drop", drop, owner)
    _check_split(test_size, seed, owner)
    if isinstance(source, pd.DataFrame):
        frame, name = source.copy(), "DataFrame"
    elif isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise ValueError(f"{owner}: `source` {os.fspath(source)!r} is not a file.")
        frame, name = pd.read_csv(source), os.path.basename(os.fspath(source))
    else:
        raise ValueError(f"{owner}: `source` must be a CSV path or a pandas DataFrame; got {type(source).__name__}.")
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise ValueError(f"{owner}: `drop` names {_listed(unknown)}, which are not columns of `source`; its "
                         f"columns: {_listed(map(str, frame.columns))}.")
    check_frame(frame, spec, owner, "source", drop=drop)
    frame = frame.drop(columns=list(drop))
    TableEncoder(spec)._check(frame, owner, "source")
    train, test = _split(frame, spec, test_size, seed, owner)
    return Table(train=train, test=test, spec=spec,
                 description=_describe(name, "a user table.", spec, train, test))
