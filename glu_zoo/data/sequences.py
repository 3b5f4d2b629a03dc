"""Tables read as sequences of features, as GRU-SVM does (Agarap 2017, arXiv 1709.03082).

- `load_wdbc`: scikit-learn's bundled Wisconsin diagnostic breast cancer
  table (569 rows, 30 features, malignant 0 / benign 1), each row a sequence
  of its 30 features: one standardised value per step (N, 30, 1), or each
  feature's decile one-hot (N, 30, 10).
- `load_kyoto`: Kyoto 2013 honeypot logs (CSV or the original tab-separated
  text, 24 columns, no header needed), each row a sequence of the paper's 21
  features, each decile-binned and one-hot to depth 10: (N, 21, 10).

    splits = load_wdbc()
    splits.train[0].shape   # (358, 30, 1)
    splits = load_kyoto("kyoto/train.csv", test="kyoto/test.csv")
    splits.test[0].shape    # (rows, 21, 10)

Every statistic (means, deviations, decile edges, category lists) comes
from the training rows alone; the test split never depends on the
validation options.
"""

import re

import numpy as np

from glu_zoo.data.digits import Splits

__all__ = ["KYOTO_COLUMNS", "KYOTO_FEATURES", "KyotoEncoder", "decile_codes", "decile_edges", "load_kyoto",
           "load_wdbc", "one_hot", "read_kyoto"]

DEPTH = 10  # deciles, one-hot to depth 10
TEST_SEED = 0
WDBC_TEST_SIZE = 0.3  # the official code's 70 / 30 split
WDBC_LAYOUTS = ("values", "deciles")


# --- deciles and one-hot ------------------------------------------------------------------------------------------

def decile_edges(column):
    """The distinct inner decile edges (the 10%, …, 90% quantiles) of a training column."""
    column = np.asarray(column, dtype="float64")
    return np.unique(np.quantile(column, np.arange(1, DEPTH) / DEPTH))


def decile_codes(values, edges):
    """The bin of each value, 0 … len(edges): bins are right-closed, (e_{i−1}, e_i]
    (as pandas.qcut's with its duplicate edges dropped); a value below the
    training range falls in the first bin, one above it in the last."""
    return np.searchsorted(edges, np.asarray(values, dtype="float64"), side="left").astype("int32")


def one_hot(codes, depth=DEPTH):
    """float32 one-hot of integer codes in [0, depth): shape (*codes.shape, depth)."""
    codes = np.asarray(codes)
    if codes.size and (codes.min() < 0 or codes.max() >= depth):
        raise ValueError(f"one_hot: codes must be in [0, {depth}); got values in [{codes.min()}, {codes.max()}].")
    return np.eye(depth, dtype="float32")[codes]


# --- WDBC ---------------------------------------------------------------------------------------------------------

def load_wdbc(layout="values", validation_size=0.1, seed=0):
    """The Wisconsin diagnostic breast cancer table as sequences of its 30 features.

    The test split is `train_test_split(test_size=0.3, stratify=y,
    random_state=0)` (171 rows; the official GRU-SVM code's 70/30 split);
    the validation split is carved from the training part the same way with
    `random_state=seed`. Neither depends on `layout`.

    Args:
        layout: "values": each feature standardised with the mean and
            deviation of the training rows, one value per step, (N, 30, 1);
            "deciles": each feature's decile (edges from the training rows)
            one-hot, (N, 30, 10), the paper's coding of Kyoto 2013. The
            official WDBC code casts the standardised values to uint8 before
            its one-hot of depth 10, which keeps the integer part of the
            positive values only (negative values wrap past 10 to all
            zeros); we do not reproduce that.
        validation_size: fraction of the training part held out (0 for none).
        seed: seed of the validation split.

    Labels: int32, 0 = malignant, 1 = benign (scikit-learn's target).
    """
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    owner = "load_wdbc"
    if layout not in WDBC_LAYOUTS:
        raise ValueError(f"{owner}: unknown `layout` {layout!r}; allowed: {', '.join(WDBC_LAYOUTS)}.")
    _check_fraction("validation_size", validation_size, owner)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{owner}: `seed` must be an integer; got {seed!r}.")
    table = load_breast_cancer()
    x, y = table.data.astype("float64"), table.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=WDBC_TEST_SIZE, stratify=y,
                                                        random_state=TEST_SEED)
    if validation_size:
        x_train, x_val, y_train, y_val = train_test_split(x_train, y_train, test_size=validation_size,
                                                          stratify=y_train, random_state=seed)
    else:
        x_val, y_val = x_train[:0], y_train[:0]
    if layout == "values":
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        std = np.where(std > 0, std, 1.0)

        def prep(a):
            return np.ascontiguousarray(((a - mean) / std)[..., None], dtype="float32")
    else:
        edges = [decile_edges(x_train[:, j]) for j in range(x.shape[1])]

        def prep(a):
            codes = np.stack([decile_codes(a[:, j], e) for j, e in enumerate(edges)], axis=1)
            return one_hot(codes)

    return Splits(
        train=(prep(x_train), y_train),
        validation=(prep(x_val), y_val),
        test=(prep(x_test), y_test),
        num_classes=2,
        description=(f"wdbc (scikit-learn's Wisconsin diagnostic breast cancer, 0 malignant / 1 benign) as sequences "
                     f"of its 30 features, layout {layout!r}: test = train_test_split(test_size={WDBC_TEST_SIZE}, "
                     f"stratify=y, random_state={TEST_SEED}), {len(x_test)} rows; validation {len(x_val)} rows "
                     f"(seed {seed}) carved from the training part; statistics from the {len(x_train)} training "
                     f"rows"),
    )


# --- Kyoto 2013 ---------------------------------------------------------------------------------------------------

# The 24 columns of a Kyoto 2013 honeypot log, in file order (Song et al.; the official GRU-SVM code's names).
KYOTO_COLUMNS = (
    "duration", "service", "src_bytes", "dest_bytes", "count", "same_srv_rate", "serror_rate", "srv_serror_rate",
    "dst_host_count", "dst_host_srv_count", "dst_host_same_src_port_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "flag", "ids_detection", "malware_detection", "ashula_detection", "label",
    "src_ip_add", "src_port_num", "dst_ip_add", "dst_port_num", "start_time", "protocol",
)
# The paper's 21 features: every column but the label and the two (anonymised) addresses, in file order.
KYOTO_FEATURES = tuple(c for c in KYOTO_COLUMNS if c not in ("label", "src_ip_add", "dst_ip_add"))
# Numbers (start_time is HH:MM:SS, read as hours), decile-binned.
KYOTO_NUMERIC = (
    "duration", "src_bytes", "dest_bytes", "count", "same_srv_rate", "serror_rate", "srv_serror_rate",
    "dst_host_count", "dst_host_srv_count", "dst_host_same_src_port_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "src_port_num", "dst_port_num", "start_time",
)
# Categories indexed in sorted order, then the index decile-binned (as the official code).
KYOTO_BINNED_CATEGORIES = ("service", "flag")
# Categories indexed in sorted order (fewer than 10: tcp, udp, icmp).
KYOTO_CATEGORIES = ("protocol",)
# Detection codes: "0" (nothing detected) ↦ 0, any other code ↦ 1.
KYOTO_DETECTIONS = ("ids_detection", "malware_detection", "ashula_detection")
# The label: 1 normal ↦ class 0; -1 known attack, -2 unknown attack ↦ class 1 (intrusion).
KYOTO_LABELS = {1: 0, -1: 1, -2: 1}
KYOTO_CLASSES = ("normal", "intrusion")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*$")


def read_kyoto(path, delimiter=None):
    """A Kyoto 2013 log (CSV, or the original tab-separated text) as a DataFrame of the 24 columns, parsed.

    Numbers as float64 (start_time in hours), detections as 0/1, the label as
    the class (0 normal, 1 intrusion), other columns as strings. A first row
    that holds the column names is a header; otherwise there is none. Blank
    lines are skipped; the rows' index is their row in the file (its line,
    from 1).

    Anything malformed is a ValueError that names the file, the row and the
    column: a row with fewer or more than 24 fields, a value that is not a
    number (NaN and infinity included), a time that is not HH:MM:SS, a label
    other than 1, -1, -2, an empty category or detection.

    Args:
        path: a file path, or an open text file.
        delimiter: None (a tab if the first line holds one, else a comma) or
            the delimiter. Fields are not quoted in this format.
    """
    import io

    import pandas as pd

    source = str(getattr(path, "name", path))
    text = _read_text(path, source)
    numbered = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    if not numbered:
        raise ValueError(f"read_kyoto: {source} holds no rows.")
    if delimiter is None:
        delimiter = "\t" if "\t" in numbered[0][1] else ","
    if [v.strip().lower() for v in numbered[0][1].split(delimiter)] == list(KYOTO_COLUMNS):
        numbered = numbered[1:]  # a header
    if not numbered:
        raise ValueError(f"read_kyoto: {source} holds no rows.")
    lines = np.array([n for n, _ in numbered])
    fields = np.array([line.count(delimiter) + 1 for _, line in numbered])
    wrong = fields != len(KYOTO_COLUMNS)
    if wrong.all() and len(set(fields)) == 1:
        count = int(fields[0])
        detail = f"missing: {', '.join(KYOTO_COLUMNS[count:])}" if count < len(KYOTO_COLUMNS) else "too many"
        raise ValueError(f"read_kyoto: {source} has {count} columns; a Kyoto 2013 log has {len(KYOTO_COLUMNS)} "
                         f"({detail}).")
    if wrong.any():
        count = int(fields[np.argmax(wrong)])
        if count < len(KYOTO_COLUMNS):
            raise _malformed(source, lines, wrong, KYOTO_COLUMNS[count],
                             f"the row ends before this column ({count} of {len(KYOTO_COLUMNS)} fields)")
        raise _malformed(source, lines, wrong, KYOTO_COLUMNS[-1],
                         f"the row goes on past this last column ({count} of {len(KYOTO_COLUMNS)} fields)")
    raw = pd.read_csv(io.StringIO("\n".join(line for _, line in numbered)), header=None, names=list(KYOTO_COLUMNS),
                      dtype=str, keep_default_na=False, sep=delimiter, engine="c", quoting=3)
    frame = pd.DataFrame(index=raw.index)
    for name in KYOTO_COLUMNS:
        text = raw[name].str.strip()
        if name == "start_time":
            parts = text.str.extract(_TIME)
            bad = parts.isna().any(axis=1).to_numpy()
            if bad.any():
                raise _malformed(source, lines, bad, name, f"{text[np.argmax(bad)]!r} is not a time HH:MM:SS")
            parts = parts.astype("float64")
            frame[name] = parts[0] + parts[1] / 60.0 + parts[2] / 3600.0
        elif name in KYOTO_NUMERIC or name == "label":
            values = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
            bad = ~np.isfinite(values)
            if bad.any():
                shown = text[np.argmax(bad)]
                why = f"{shown!r} is not a finite number" if shown else "the value is empty"
                raise _malformed(source, lines, bad, name, why)
            if name == "label":
                bad = ~np.isin(values, list(KYOTO_LABELS))
                if bad.any():
                    raise _malformed(source, lines, bad, name, f"{text[np.argmax(bad)]!r} is not a label; allowed: "
                                     f"1 (normal), -1 (known attack), -2 (unknown attack)")
                frame[name] = np.where(values == 1, 0, 1).astype("int32")
            else:
                frame[name] = values
        elif name in KYOTO_DETECTIONS:
            bad = (text == "").to_numpy()
            if bad.any():
                raise _malformed(source, lines, bad, name, "the value is empty (a detection code, 0 for none)")
            frame[name] = (text != "0").to_numpy().astype("int32")
        else:
            frame[name] = text.to_numpy(dtype=object)
    for name in KYOTO_BINNED_CATEGORIES + KYOTO_CATEGORIES:
        bad = (frame[name] == "").to_numpy()
        if bad.any():
            raise _malformed(source, lines, bad, name, "the value is empty")
    frame.index = pd.Index(lines, name="row")  # the file's line of each row, kept through splits
    frame.attrs["source"] = source
    return frame


def _read_text(path, source):
    if hasattr(path, "read"):
        return path.read()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as error:
        raise ValueError(f"read_kyoto: cannot read {source}: {error.strerror or error}.") from None


def _malformed(source, lines, bad, column, why):
    row = int(lines[int(np.argmax(bad))])
    count = int(np.sum(bad))
    more = f" ({count - 1} more rows like it)" if count > 1 else ""
    return ValueError(f"read_kyoto: {source}, row {row}, column {column!r}: {why}{more}.")


class KyotoEncoder:
    """The paper's coding of Kyoto 2013 rows, fitted on the training rows:
    each of the 21 features an integer code in [0, 10), one-hot to depth 10.

    Numbers: their decile (edges from the training rows; standardising first,
    as the official code does, is monotone and leaves the deciles as they are).
    service, flag: the category's index in the training rows' sorted
    categories, then that index's decile (as the official code); a category
    the training rows lack gets the index past the last, so the last bin.
    protocol: the index (at most 10 categories; an unknown one is a
    ValueError naming the row). Detections: 0 or 1.

        encoder = KyotoEncoder().fit(read_kyoto("train.csv"))
        x = encoder.transform(read_kyoto("test.csv"))   # (rows, 21, 10) float32
    """

    def __init__(self):
        self.edges = None
        self.categories = None

    def fit(self, frame):
        self.categories = {}
        for name in KYOTO_BINNED_CATEGORIES + KYOTO_CATEGORIES:
            self.categories[name] = sorted(set(frame[name]))
        if len(self.categories["protocol"]) > DEPTH:
            raise ValueError(f"KyotoEncoder: column 'protocol' holds {len(self.categories['protocol'])} categories "
                             f"in the training rows; at most {DEPTH} are coded (one-hot to depth {DEPTH}).")
        self.edges = {}
        for name in KYOTO_NUMERIC:
            self.edges[name] = decile_edges(frame[name].to_numpy())
        for name in KYOTO_BINNED_CATEGORIES:
            self.edges[name] = decile_edges(self._index(frame, name))
        return self

    def _index(self, frame, name):
        known = {c: i for i, c in enumerate(self.categories[name])}
        return np.array([known.get(c, len(known)) for c in frame[name]], dtype="int64")

    def codes(self, frame):
        """int32 codes (rows, 21) in [0, 10), one per feature in KYOTO_FEATURES order."""
        if self.edges is None:
            raise ValueError("KyotoEncoder: call fit(training rows) before codes or transform.")
        columns = []
        for name in KYOTO_FEATURES:
            if name in self.edges:
                values = self._index(frame, name) if name in KYOTO_BINNED_CATEGORIES else frame[name].to_numpy()
                columns.append(decile_codes(values, self.edges[name]))
            elif name in KYOTO_CATEGORIES:
                index = self._index(frame, name)
                unknown = index >= len(self.categories[name])
                if unknown.any():
                    raise _malformed(frame.attrs.get("source", "rows"), frame.index, unknown, name,
                                     f"{frame[name].iloc[int(np.argmax(unknown))]!r} is not among the training "
                                     f"rows' categories {self.categories[name]}")
                columns.append(index.astype("int32"))
            else:
                columns.append(frame[name].to_numpy().astype("int32"))
        return np.stack(columns, axis=1)

    def transform(self, frame):
        """float32 (rows, 21, 10): each feature's code one-hot."""
        return one_hot(self.codes(frame))


def load_kyoto(train, test=None, validation_size=0.1, test_size=0.2, seed=0, delimiter=None):
    """Kyoto 2013 logs as sequences of the paper's 21 features, each deciles one-hot: (N, 21, 10) float32.

    Labels int32: 0 normal, 1 intrusion (the label -1 or -2).

    Args:
        train: the training log (a path); the encoder is fitted on its
            training rows.
        test: the test log, or None to carve the test split from `train`
            (`test_size`, stratified, random_state=0: the same whatever the
            validation options).
        validation_size: fraction of the training rows held out (stratified,
            `random_state=seed`); 0 for none.
        delimiter: as `read_kyoto`.
    """
    from sklearn.model_selection import train_test_split

    owner = "load_kyoto"
    _check_fraction("validation_size", validation_size, owner)
    train_rows = read_kyoto(train, delimiter)
    if test is None:
        _check_fraction("test_size", test_size, owner, zero=False)
        _check_stratifiable(train_rows, owner, train)
        train_rows, test_rows = train_test_split(train_rows, test_size=test_size, stratify=train_rows["label"],
                                                 random_state=TEST_SEED)
    else:
        test_rows = read_kyoto(test, delimiter)
    if validation_size:
        _check_stratifiable(train_rows, owner, train)
        train_rows, val_rows = train_test_split(train_rows, test_size=validation_size, stratify=train_rows["label"],
                                                random_state=seed)
    else:
        val_rows = train_rows.iloc[:0]
    encoder = KyotoEncoder().fit(train_rows)

    def prep(rows):
        return encoder.transform(rows), rows["label"].to_numpy().astype("int32")

    return Splits(
        train=prep(train_rows),
        validation=prep(val_rows),
        test=prep(test_rows),
        num_classes=2,
        description=(f"kyoto 2013 ({train}{', test ' + str(test) if test is not None else ''}): 21 features, "
                     f"deciles one-hot; {len(train_rows)} training, {len(val_rows)} validation (seed {seed}), "
                     f"{len(test_rows)} test rows"
                     + ("" if test is not None else f" (test_size={test_size}, random_state={TEST_SEED})")),
    )


def _check_fraction(name, value, owner, zero=True):
    """A number in [0, 1) (`zero`) or (0, 1)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and 0.0 <= value < 1.0
    if not ok or (not zero and value == 0):
        raise ValueError(f"{owner}: `{name}` must be a number in {'[0, 1)' if zero else '(0, 1)'}; got {value!r}.")


def _check_stratifiable(rows, owner, source):
    counts = rows["label"].value_counts()
    if len(counts) < 2 or counts.min() < 2:
        found = {KYOTO_CLASSES[k]: int(v) for k, v in counts.items()}
        raise ValueError(f"{owner}: {source}: a stratified split needs at least 2 rows of each class "
                         f"({', '.join(KYOTO_CLASSES)}); got {found}.")
