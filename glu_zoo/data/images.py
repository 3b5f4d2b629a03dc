"""Any folder of images, one sub-folder per class; image augmentation."""

import numpy as np


def load_image_folder(directory, image_size, batch_size=64, validation_split=0.2, seed=0,
                      color_mode="rgb"):
    """(train, validation) `tf.data` datasets from `directory/<class>/<image>`,
    through `keras.utils.image_dataset_from_directory` (needs TensorFlow
    installed, whatever the backend). Pixels are float32 in [0, 255]."""
    import keras

    common = dict(
        image_size=tuple(image_size), batch_size=batch_size, seed=seed, color_mode=color_mode,
        validation_split=validation_split or None, label_mode="int",
    )
    if not validation_split:
        return keras.utils.image_dataset_from_directory(directory, **common), None
    return tuple(keras.utils.image_dataset_from_directory(directory, subset="both", **common))


def random_shift(images, max_shift, rng):
    """Each image of (N, H, W, C) moved by its own random whole-pixel offset
    (dy, dx), each uniform in [-max_shift, max_shift], filling with zeros.

    Args:
        images: a NumPy array (N, H, W, C).
        max_shift: a non-negative integer, less than H and W.
        rng: a `numpy.random.Generator` (the offsets are its draws alone).
    """
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ValueError(f"random_shift: `max_shift` must be a non-negative integer; got {max_shift!r}.")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"random_shift: `images` must be (N, H, W, C); got shape {images.shape}.")
    n, h, w, _ = images.shape
    if max_shift >= min(h, w):
        raise ValueError(f"random_shift: `max_shift` must be less than the image size {h}×{w}; got {max_shift}.")
    if max_shift == 0:
        return images
    s = max_shift
    padded = np.pad(images, ((0, 0), (s, s), (s, s), (0, 0)))
    top, left = rng.integers(0, 2 * s + 1, size=(2, n))  # the crop's corner: s - (dy, dx)
    rows = top[:, None] + np.arange(h)
    cols = left[:, None] + np.arange(w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
