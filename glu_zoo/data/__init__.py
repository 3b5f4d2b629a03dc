"""Bundled data sets and generators; nothing is downloaded at run time.

`load(name, **options)` returns a `Splits` of NumPy arrays.
"""

from glu_zoo.data.digits import Splits, load_digits
from glu_zoo.data.images import load_image_folder, random_shift
from glu_zoo.data.listops import load_listops

__all__ = ["Splits", "load", "load_digits", "load_listops", "load_image_folder", "list_datasets", "random_shift"]

_LOADERS = {"digits": load_digits, "listops": load_listops}


def list_datasets():
    return sorted(_LOADERS)


def load(name, **options):
    """The named data set's train / validation / test splits."""
    if name not in _LOADERS:
        raise ValueError(f"data.load: unknown data set {name!r}; known: {', '.join(list_datasets())}.")
    return _LOADERS[name](**options)
