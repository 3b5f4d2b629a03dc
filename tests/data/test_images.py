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


def _write_png(path, pixels):
    import tensorflow as tf

    tf.io.write_file(str(path), tf.io.encode_png(pixels))


@pytest.fixture
def image_folder(tmp_path):
    """Two classes of small PNGs: a/0.png ... a/4.png, b/0.png ... b/4.png."""
    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(7)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(5):
            _write_png(tmp_path / label / f"{i}.png", rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8))
    return tmp_path


def test_image_folder_loads_in_batches_of_the_right_shape(image_folder):
    train, val = data.load_image_folder(image_folder, image_size=(4, 4), batch_size=3, validation_split=0.2)
    shapes = [tuple(x.shape) for x, _ in train]
    assert shapes == [(3, 4, 4, 3), (3, 4, 4, 3), (2, 4, 4, 3)]
    assert set(np.concatenate([y.numpy() for _, y in train])) == {0, 1}
    assert [tuple(x.shape) for x, _ in val] == [(2, 4, 4, 3)]
    gray, none = data.load_image_folder(image_folder, image_size=(4, 4), batch_size=10, validation_split=0,
                                        color_mode="grayscale")
    assert none is None and [tuple(x.shape) for x, _ in gray] == [(10, 4, 4, 1)]


@pytest.mark.parametrize("corrupt", ["garbage", "truncated", "empty"])
def test_a_corrupt_image_is_named_before_the_datasets_are_returned(image_folder, corrupt):
    good = (image_folder / "a" / "0.png").read_bytes()
    content, reason = {"garbage": (b"not an image at all", r"Unknown image file format\. One of .*PNG.*"),
                       "truncated": (good[: len(good) // 2], r"Invalid PNG.*"),
                       "empty": (b"", r"Input is empty\.")}[corrupt]
    bad = image_folder / "b" / "sub" / "Broken.PNG"  # Keras reads sub-folders and any case of the extension
    bad.parent.mkdir()
    bad.write_bytes(content)
    for split in (0.2, 0):
        with pytest.raises(ValueError, match=rf"load_image_folder: .*b/sub/Broken\.PNG: not a readable image "
                                             rf"\({reason}\); remove or replace it\.$"):
            data.load_image_folder(image_folder, image_size=(4, 4), batch_size=4, validation_split=split)
    # unchecked, it loads, and training would fail on the first batch holding it, naming no file
    train, _ = data.load_image_folder(image_folder, image_size=(4, 4), batch_size=11, validation_split=0,
                                      check_images=False)
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError) as failure:
        list(train)
    assert "Broken" not in str(failure.value)


def test_files_keras_does_not_read_are_not_checked(image_folder):
    (image_folder / "a" / "notes.txt").write_bytes(b"not an image")
    (image_folder / ".hidden").mkdir()
    (image_folder / ".hidden" / "x.png").write_bytes(b"not an image")
    train, _ = data.load_image_folder(image_folder, image_size=(4, 4), batch_size=10, validation_split=0)
    assert sum(len(y) for _, y in train) == 10


def test_check_images_must_be_a_bool(image_folder):
    with pytest.raises(ValueError, match=r"load_image_folder: `check_images` must be True or False; got 'no'"):
        data.load_image_folder(image_folder, image_size=(4, 4), check_images="no")


def test_images_are_decoded_with_the_channels_keras_will_use(image_folder):
    import tensorflow as tf

    tf.io.write_file(str(image_folder / "a" / "photo.jpg"), tf.io.encode_jpeg(np.zeros((6, 5, 3), np.uint8)))
    train, _ = data.load_image_folder(image_folder, image_size=(4, 4), batch_size=11, validation_split=0)
    assert [tuple(x.shape) for x, _ in train] == [(11, 4, 4, 3)]
    with pytest.raises(ValueError, match=r"a/photo\.jpg: not a readable image \(JPEG does not support 4 channels"):
        data.load_image_folder(image_folder, image_size=(4, 4), color_mode="rgba")
