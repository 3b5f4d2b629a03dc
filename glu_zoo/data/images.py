"""Any folder of images, one sub-folder per class; image augmentation."""

import re

import numpy as np

from glu_zoo.layers.checks import check_bool

_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


def load_image_folder(directory, image_size, batch_size=64, validation_split=0.2, seed=0,
                      color_mode="rgb", check_images=True):
    """(train, validation) `tf.data` datasets from `directory/<class>/<image>`,
    through `keras.utils.image_dataset_from_directory` (needs TensorFlow
    installed, whatever the backend). Pixels are float32 in [0, 255].

    Args:
        directory: one sub-folder per class; Keras reads the files ending in
            .bmp, .gif, .jpeg, .jpg or .png below each (any case).
        image_size: (height, width) every image is resized to.
        batch_size, seed, color_mode: as in `image_dataset_from_directory`.
        validation_split: the fraction held out for validation (0 or None:
            no validation set, and None in its place).
        check_images: decode every file the datasets will read, once, before
            they are returned, as Keras will (`tf.io.decode_image` with the
            channels of `color_mode`, first frame of an animation); a file
            that does not decode raises a ValueError naming it, instead of
            TensorFlow's "Invalid PNG data" without a file name in the middle
            of training. About 0.15 ms per small PNG (1,000 of 32×32: 0.12-0.19 s
            on two CPU cores); False skips it (a huge folder you trust).
    """
    import keras

    check_bool("check_images", check_images, "load_image_folder")
    common = dict(
        image_size=tuple(image_size), batch_size=batch_size, seed=seed, color_mode=color_mode,
        validation_split=validation_split or None, label_mode="int",
    )
    if not validation_split:
        datasets = keras.utils.image_dataset_from_directory(directory, **common), None
    else:
        datasets = tuple(keras.utils.image_dataset_from_directory(directory, subset="both", **common))
    if check_images:  # Keras reads no file until iterated: its own lists of paths
        check_image_files(sorted(p for d in datasets if d is not None for p in d.file_paths), _CHANNELS[color_mode])
    return datasets


def check_image_files(paths, channels):
    """A ValueError naming the first file of `paths` that TensorFlow cannot
    read or decode as `image_dataset_from_directory` does."""
    import tensorflow as tf

    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        except tf.errors.OpError as e:
            # TensorFlow's message without its op names: "{{function_node ...}} Invalid PNG. ... [Op:...]"
            reason = re.sub(r"\{\{.*?\}\}", "", e.message).split("[Op:")[0].strip() or type(e).__name__
            raise ValueError(f"load_image_folder: {path}: not a readable image ({reason}); "
                             f"remove or replace it.") from None


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
