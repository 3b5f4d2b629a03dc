import itertools

import numpy as np
import pytest

from glu_zoo import data
from tests import reference


def _offset(original, shifted, max_shift):
    """The one (dy, dx) within max_shift that maps original to shifted, or None."""
    found = [(dy, dx) for dy, dx in itertools.product(range(-max_shift, max_shift + 1), repeat=2)
             if np.array_equal(reference.shift_image(original, dy, dx), shifted)]
    return found[0] if len(found) == 1 else None


@pytest.mark.parametrize("max_shift", [1, 2])
def test_random_shift_moves_each_image_by_its_own_offset_within_the_bound(max_shift):
    images = np.random.default_rng(0).uniform(1.0, 2.0, size=(300, 6, 7, 2)).astype("float32")
    shifted = data.random_shift(images, max_shift, np.random.default_rng(1))
    assert shifted.shape == images.shape and shifted.dtype == images.dtype
    offsets = [_offset(a, b, max_shift) for a, b in zip(images, shifted)]
    assert None not in offsets
    # every offset of the square occurs (300 draws of 9 or 25 outcomes)
    assert set(offsets) == set(itertools.product(range(-max_shift, max_shift + 1), repeat=2))


def test_random_shift_depends_on_the_generator_alone():
    images = np.random.default_rng(0).uniform(size=(50, 8, 8, 1))
    a = data.random_shift(images, 1, np.random.default_rng([3, 4, 5]))
    b = data.random_shift(images, 1, np.random.default_rng([3, 4, 5]))
    c = data.random_shift(images, 1, np.random.default_rng([3, 4, 6]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(data.random_shift(images, 0, np.random.default_rng(0)), images)


@pytest.mark.parametrize("max_shift, images, message", [
    (-1, np.zeros((2, 8, 8, 1)), r"`max_shift` must be a non-negative integer; got -1"),
    (1.0, np.zeros((2, 8, 8, 1)), r"`max_shift` must be a non-negative integer; got 1.0"),
    (True, np.zeros((2, 8, 8, 1)), r"`max_shift` must be a non-negative integer; got True"),
    (8, np.zeros((2, 8, 8, 1)), r"less than the image size 8×8; got 8"),
    (1, np.zeros((8, 8, 1)), r"`images` must be \(N, H, W, C\); got shape \(8, 8, 1\)"),
])
def test_random_shift_rejects_bad_arguments(max_shift, images, message):
    with pytest.raises(ValueError, match=message):
        data.random_shift(images, max_shift, np.random.default_rng(0))
