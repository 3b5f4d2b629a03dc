"""Tables as sequences of features (GRU-SVM): WDBC from scikit-learn, Kyoto 2013 CSV files the tests write."""

import numpy as np
import pytest

from glu_zoo import data
from glu_zoo.data.sequences import KYOTO_COLUMNS, KYOTO_FEATURES, load_kyoto, load_wdbc, read_kyoto

# --- WDBC ---------------------------------------------------------------------------------------------------------


def zscores(x):
    """Each column standardised over the rows given: the same for the same rows, whatever affine map they had."""
    return (x - x.mean(axis=0)) / x.std(axis=0)


def test_wdbc_splits_are_stratified_and_the_training_rows_are_standardised():
    splits = data.load("wdbc")
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits.train, splits.validation, splits.test
    assert (x_train.shape, x_val.shape, x_test.shape) == ((358, 30, 1), (40, 30, 1), (171, 30, 1))
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32 and splits.num_classes == 2
    malignant = 212 / 569  # class 0
    for y in (y_train, y_val, y_test):
        assert abs(np.mean(y == 0) - malignant) < 0.02
    # Statistics of the training rows alone: they are standardised exactly, the others are not.
    np.testing.assert_allclose(x_train[..., 0].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_train[..., 0].std(axis=0), 1.0, atol=1e-5)
    assert np.abs(x_test[..., 0].mean(axis=0)).max() > 0.01


def test_wdbc_test_split_is_fixed_and_independent_of_the_other_options():
    base = load_wdbc()
    other = load_wdbc(validation_size=0.25, seed=7)
    deciles = load_wdbc(layout="deciles", validation_size=0.0)
    np.testing.assert_array_equal(base.test[1], other.test[1])
    np.testing.assert_array_equal(base.test[1], deciles.test[1])
    # The same rows, in the same order (each standardised with its own training rows' statistics).
    np.testing.assert_allclose(zscores(base.test[0][..., 0]), zscores(other.test[0][..., 0]), atol=1e-4)
    assert not np.array_equal(base.validation[1], other.validation[1]) or len(other.validation[1]) != 40
    again = load_wdbc()
    for a, b in zip((*base.train, *base.validation, *base.test), (*again.train, *again.validation, *again.test)):
        np.testing.assert_array_equal(a, b)


def test_wdbc_deciles_are_one_hot_with_edges_from_the_training_rows():
    splits = load_wdbc(layout="deciles")
    x_train, x_test = splits.train[0], splits.test[0]
    assert x_train.shape == (358, 30, 10)
    np.testing.assert_array_equal(x_train.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(x_test.sum(axis=-1), 1.0)
    # On the training rows each bin holds about a tenth of each feature (ties aside).
    shares = x_train.mean(axis=0)  # (30, 10)
    assert np.median(np.abs(shares - 0.1)) < 0.01


@pytest.mark.parametrize("kwargs, match", [
    (dict(layout="onehot"), r"load_wdbc: unknown `layout` 'onehot'; allowed: values, deciles"),
    (dict(validation_size=1.0), r"load_wdbc: `validation_size` must be a number in \[0, 1\); got 1.0"),
    (dict(seed="0"), r"load_wdbc: `seed` must be an integer; got '0'"),
])
def test_wdbc_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_wdbc(**kwargs)


# --- Kyoto 2013 ---------------------------------------------------------------------------------------------------

SERVICES = ["other", "http", "smtp", "dns", "ssh", "ftp", "sip", "snmp", "rdp", "ssl", "ftp-data", "irc"]
FLAGS = ["S0", "SF", "SH", "REJ", "RSTO", "RSTR", "OTH", "S1"]


def kyoto_rows(rng, n, durations=None):
    """n rows of the 24 Kyoto 2013 columns, as strings; duration = `durations` if given."""
    rows = []
    for i in range(n):
        row = {
            "duration": f"{durations[i] if durations is not None else rng.exponential(5.0):.6f}",
            "service": rng.choice(SERVICES), "src_bytes": str(rng.integers(0, 5000)),
            "dest_bytes": str(rng.integers(0, 5000)), "count": str(rng.integers(0, 50)),
            "same_srv_rate": f"{rng.random():.2f}", "serror_rate": f"{rng.random():.2f}",
            "srv_serror_rate": f"{rng.random():.2f}", "dst_host_count": str(rng.integers(0, 100)),
            "dst_host_srv_count": str(rng.integers(0, 100)), "dst_host_same_src_port_rate": f"{rng.random():.2f}",
            "dst_host_serror_rate": f"{rng.random():.2f}", "dst_host_srv_serror_rate": f"{rng.random():.2f}",
            "flag": rng.choice(FLAGS), "ids_detection": rng.choice(["0", "0", "7000(1)"]),
            "malware_detection": rng.choice(["0", "0", "Trojan.Generic"]), "ashula_detection": rng.choice(["0", "1"]),
            "label": str(rng.choice([1, -1, -2])), "src_ip_add": f"fd75:41fb::{rng.integers(0, 99):x}",
            "src_port_num": str(rng.integers(0, 65536)), "dst_ip_add": f"fd75:41fb::{rng.integers(0, 99):x}",
            "dst_port_num": str(rng.integers(0, 65536)),
            "start_time": f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}",
            "protocol": rng.choice(["tcp", "udp", "icmp"]),
        }
        rows.append([row[c] for c in KYOTO_COLUMNS])
    return rows


def write(path, rows, delimiter=",", header=False):
    lines = ([delimiter.join(KYOTO_COLUMNS)] if header else []) + [delimiter.join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def kyoto(tmp_path):
    rng = np.random.default_rng(0)
    train = kyoto_rows(rng, 100, durations=rng.permutation(np.arange(1, 101)))
    test = kyoto_rows(rng, 6, durations=[0.5, 10.9, 11.0, 55.0, 100.0, 1000.0])
    return train, test, write(tmp_path / "train.csv", train), write(tmp_path / "test.csv", test)


def step(x, feature):
    """The code of each row at a feature's step (argmax of its one-hot)."""
    return np.argmax(x[:, KYOTO_FEATURES.index(feature)], axis=-1)


def test_kyoto_rows_are_21_steps_of_deciles_one_hot(kyoto):
    train, test, train_path, test_path = kyoto
    splits = data.load("kyoto", train=str(train_path), test=str(test_path), validation_size=0.0)
    (x_train, y_train), (x_test, y_test) = splits.train, splits.test
    assert len(KYOTO_FEATURES) == 21 and x_train.shape == (100, 21, 10) and x_test.shape == (6, 21, 10)
    np.testing.assert_array_equal(x_train.sum(axis=-1), 1.0)
    labels = {"1": 0, "-1": 1, "-2": 1}  # normal ↦ 0; known or unknown attack ↦ 1 (intrusion)
    column = KYOTO_COLUMNS.index("label")
    np.testing.assert_array_equal(y_train, [labels[r[column]] for r in train])
    np.testing.assert_array_equal(y_test, [labels[r[column]] for r in test])
    # Durations 1 … 100 in training: deciles of 10 values each, right-closed; the test's values go by those edges
    # (0.5 below the range, 10.9 the first edge itself, 1000 above the range).
    durations = np.array([float(r[0]) for r in train])
    np.testing.assert_array_equal(step(x_train, "duration"), (durations - 1) // 10)
    np.testing.assert_array_equal(step(x_test, "duration"), [0, 0, 1, 5, 9, 9])
    # Detections: "0" ↦ 0, any code ↦ 1; protocol: its index among the training rows' sorted protocols.
    for name in ("ids_detection", "malware_detection", "ashula_detection"):
        np.testing.assert_array_equal(step(x_train, name), [r[KYOTO_COLUMNS.index(name)] != "0" for r in train])
    protocols = sorted({"tcp", "udp", "icmp"})
    np.testing.assert_array_equal(step(x_train, "protocol"),
                                  [protocols.index(r[KYOTO_COLUMNS.index("protocol")]) for r in train])
    # Categories with more than ten values: their sorted index, binned by deciles, so in order of the index.
    services = np.array([sorted(SERVICES).index(r[1]) for r in train])
    codes = step(x_train, "service")
    assert np.all(np.diff(codes[np.argsort(services, kind="stable")]) >= 0) and codes.max() <= 9


def test_kyoto_reads_a_header_and_tab_separated_text(kyoto, tmp_path):
    train, _, train_path, test_path = kyoto
    expected = load_kyoto(train_path, test=test_path, validation_size=0.0)
    tabbed = write(tmp_path / "train.txt", train, delimiter="\t", header=True)
    got = load_kyoto(tabbed, test=test_path, validation_size=0.0)
    for a, b in zip((*expected.train, *expected.test), (*got.train, *got.test)):
        np.testing.assert_array_equal(a, b)
    frame = read_kyoto(tabbed)
    assert frame.index[0] == 2 and frame["start_time"].dtype == np.float64  # row 1 is the header


def test_kyoto_splits_from_one_file_are_fixed_and_stratified(kyoto):
    _, _, train_path, _ = kyoto
    a = load_kyoto(train_path, validation_size=0.2, seed=0)
    b = load_kyoto(train_path, validation_size=0.1, seed=3)
    assert len(a.test[1]) == 20 and len(a.validation[1]) == 16 and len(a.train[1]) == 64
    np.testing.assert_array_equal(a.test[1], b.test[1])  # the test rows do not depend on the validation split
    assert abs(a.train[1].mean() - a.test[1].mean()) < 0.1


def malformed(rows, row, column, value):
    rows = [list(r) for r in rows]
    rows[row - 1][KYOTO_COLUMNS.index(column)] = value
    return rows


@pytest.mark.parametrize("edit, match", [
    (lambda rows: malformed(rows, 3, "src_bytes", "abc"), r"row 3, column 'src_bytes': 'abc' is not a finite number"),
    (lambda rows: malformed(rows, 4, "duration", "nan"), r"row 4, column 'duration': 'nan' is not a finite number"),
    (lambda rows: malformed(rows, 2, "count", "inf"), r"row 2, column 'count': 'inf' is not a finite number"),
    (lambda rows: malformed(rows, 5, "dst_port_num", ""), r"row 5, column 'dst_port_num': the value is empty"),
    (lambda rows: malformed(rows, 6, "start_time", "25h"), r"row 6, column 'start_time': '25h' is not a time"),
    (lambda rows: malformed(rows, 7, "label", "2"), r"row 7, column 'label': '2' is not a label; allowed: 1 "),
    (lambda rows: malformed(rows, 8, "flag", ""), r"row 8, column 'flag': the value is empty"),
    (lambda rows: rows[:4] + [rows[4][:-1]] + rows[5:],
     r"row 5, column 'protocol': the row ends before this column \(23 of 24"),
    (lambda rows: [r[:-1] for r in rows], r"has 23 columns; a Kyoto 2013 log has 24 \(missing: protocol\)"),
    (lambda rows: rows[:6] + [rows[6] + ["x"]] + rows[7:],
     r"row 7, column 'protocol': the row goes on past this last column \(25 of 24 fields\)"),
])
def test_a_malformed_kyoto_file_names_the_column_and_the_row(tmp_path, edit, match):
    rows = kyoto_rows(np.random.default_rng(1), 10)
    path = write(tmp_path / "bad.csv", edit(rows))
    with pytest.raises(ValueError, match=rf"read_kyoto: .*bad.csv.*{match}"):
        load_kyoto(path, validation_size=0.0, test_size=0.5)


def test_a_protocol_the_training_rows_lack_is_named(kyoto, tmp_path):
    train, test, train_path, _ = kyoto
    test_path = write(tmp_path / "test.csv", malformed(test, 2, "protocol", "sctp"))
    with pytest.raises(ValueError, match=r"test.csv, row 2, column 'protocol': 'sctp' is not among the training rows' "
                                         r"categories \['icmp', 'tcp', 'udp'\]"):
        load_kyoto(train_path, test=test_path)


def test_kyoto_bad_options(kyoto, tmp_path):
    _, _, train_path, _ = kyoto
    with pytest.raises(ValueError, match=r"load_kyoto: `test_size` must be a number in \(0, 1\); got 0"):
        load_kyoto(train_path, test_size=0)
    rows = kyoto_rows(np.random.default_rng(2), 6)
    for r in rows:
        r[KYOTO_COLUMNS.index("label")] = "1"
    with pytest.raises(ValueError, match=r"a stratified split needs at least 2 rows of each class .* got "
                                         r"\{'normal': 6\}"):
        load_kyoto(write(tmp_path / "one.csv", rows))
    with pytest.raises(ValueError, match=r"read_kyoto: .*missing.csv"):
        load_kyoto(tmp_path / "missing.csv")
