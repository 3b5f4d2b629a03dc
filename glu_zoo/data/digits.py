"""scikit-learn's bundled handwritten digits (1,797 images, 8×8, 10 classes)."""

import dataclasses

import numpy as np

TEST_SIZE = 0.2
TEST_SEED = 0


@dataclasses.dataclass(frozen=True)
class Splits:
    """Train, validation and test arrays: each a pair (x, y)."""

    train: tuple
    validation: tuple
    test: tuple
    num_classes: int
    description: str = ""

    @property
    def image_shape(self):
        return tuple(self.train[0].shape[1:])


def load_digits(upsample=1, normalize="unit", validation_size=0.1, seed=0):
    """Digits as float32 images (N, 8·upsample, 8·upsample, 1) and int32 labels.

    The test split is `train_test_split(test_size=0.2, stratify=y,
    random_state=0)` (360 images), the split of the reference figures; the
    validation split is carved from the training part the same way with
    `random_state=seed`.

    Args:
        upsample: integer factor of nearest-neighbour up-sampling.
        normalize: "unit" (pixels / 16, in [0, 1]), "standard" (zero mean,
            unit variance over the training split) or None (raw 0..16).
        validation_size: fraction of the training part held out (0 for none).
        seed: seed of the validation split.
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    if isinstance(upsample, bool) or not isinstance(upsample, int) or upsample < 1:
        raise ValueError(f"load_digits: `upsample` must be a positive integer; got {upsample!r}.")
    if normalize not in ("unit", "standard", None):
        raise ValueError(f"load_digits: `normalize` must be 'unit', 'standard' or None; got {normalize!r}.")
    if not 0.0 <= validation_size < 1.0:
        raise ValueError(f"load_digits: `validation_size` must be in [0, 1); got {validation_size!r}.")
    digits = sk_digits()
    x = digits.images.astype("float32")[..., None]
    y = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, stratify=y, random_state=TEST_SEED
    )
    if validation_size:
        x_train, x_val, y_train, y_val = train_test_split(
            x_train, y_train, test_size=validation_size, stratify=y_train, random_state=seed
        )
    else:
        x_val, y_val = x_train[:0], y_train[:0]
    if normalize == "unit":
        scale = lambda a: a / 16.0  # noqa: E731
    elif normalize == "standard":
        mean, std = x_train.mean(), x_train.std()
        scale = lambda a: (a - mean) / std  # noqa: E731
    else:
        scale = lambda a: a  # noqa: E731
    if upsample > 1:
        grow = lambda a: np.repeat(np.repeat(a, upsample, axis=1), upsample, axis=2)  # noqa: E731
    else:
        grow = lambda a: a  # noqa: E731

    def prep(a):
        return np.ascontiguousarray(grow(scale(a)).astype("float32"))

    return Splits(
        train=(prep(x_train), y_train),
        validation=(prep(x_val), y_val),
        test=(prep(x_test), y_test),
        num_classes=10,
        description=f"digits: test = train_test_split(test_size={TEST_SIZE}, stratify=y, random_state={TEST_SEED}), "
                    f"{len(x_test)} images; validation {len(x_val)} carved from the training part",
    )
