import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_digits
from sklearn.model_selection import train_test_split

from glu_zoo import data


def test_test_split_is_the_reference_split():
    splits = data.load("digits", normalize=None, validation_size=0.1)
    digits = sk_digits()
    _, x_test, _, y_test = train_test_split(digits.images, digits.target, test_size=0.2,
                                            stratify=digits.target, random_state=0)
    np.testing.assert_array_equal(splits.test[0][..., 0], x_test)
    np.testing.assert_array_equal(splits.test[1], y_test)
    assert len(splits.test[0]) == 360
    n = len(splits.train[0]) + len(splits.validation[0]) + len(splits.test[0])
    assert n == 1797 and len(splits.validation[0]) == 144
    assert np.bincount(splits.validation[1]).min() >= 13  # stratified: every class held out


def test_no_image_is_in_two_splits():
    s = data.load_digits()
    keys = [{a.tobytes() for a in split[0]} for split in (s.train, s.validation, s.test)]
    # digits has a few duplicate images; splits must not share more than those
    dup = len(keys[0] & keys[2]) + len(keys[1] & keys[2])
    assert dup <= 2


@pytest.mark.parametrize("normalize", ["unit", "standard", None])
def test_normalisation(normalize):
    x = data.load_digits(normalize=normalize).train[0]
    assert x.dtype == np.float32 and x.shape[1:] == (8, 8, 1)
    if normalize == "unit":
        assert x.min() == 0.0 and x.max() == 1.0
    elif normalize == "standard":
        assert abs(x.mean()) < 1e-5 and abs(x.std() - 1) < 1e-4
    else:
        assert x.max() == 16.0


def test_upsampling_repeats_pixels():
    small = data.load_digits().test[0]
    big = data.load_digits(upsample=2).test[0]
    assert big.shape[1:] == (16, 16, 1)
    np.testing.assert_array_equal(big[:, ::2, ::2], small)
    np.testing.assert_array_equal(big[:, 1::2, 1::2], small)


def test_deterministic():
    a, b = data.load_digits(seed=3), data.load_digits(seed=3)
    np.testing.assert_array_equal(a.train[0], b.train[0])
    assert not np.array_equal(a.validation[1], data.load_digits(seed=4).validation[1])


@pytest.mark.parametrize("kwargs, match", [
    ({"upsample": 0}, r"`upsample` must be a positive integer; got 0"),
    ({"normalize": "minmax"}, r"`normalize` must be 'unit', 'standard' or None; got 'minmax'"),
    ({"validation_size": 1.0}, r"`validation_size` must be in \[0, 1\); got 1.0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_digits(**kwargs)


def test_unknown_dataset_lists_known():
    with pytest.raises(ValueError, match=r"unknown data set 'mnist'; known: digits"):
        data.load("mnist")


def test_image_folder(tmp_path):
    pytest.importorskip("tensorflow")
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(4):
            Image.fromarray(np.full((5, 5, 3), 40 * i, np.uint8)).save(tmp_path / label / f"{i}.png")
    train, val = data.load_image_folder(tmp_path, image_size=(4, 4), batch_size=2, validation_split=0.25)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in train])
    assert np.concatenate(xs).shape == (6, 4, 4, 3)
    assert set(np.concatenate(ys)) <= {0, 1}
    assert sum(len(y) for _, y in val) == 2
