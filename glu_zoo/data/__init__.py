"""Bundled data sets and generators; nothing is downloaded at run time.

`load(name, **options)` returns a `Splits` of NumPy arrays.
"""

from glu_zoo.data.digits import Splits, load_digits
from glu_zoo.data.images import load_image_folder, random_shift
from glu_zoo.data.listops import load_listops
from glu_zoo.data.moving_digits import load_moving_digits
from glu_zoo.data.sequences import load_kyoto, load_wdbc, read_kyoto
from glu_zoo.data.tabular import Table, TableEncoder, TableSpec, list_tables, load_table, read_table
from glu_zoo.data.text import (ByteTokenizer, MaskedLMDataset, SpanCorruptionDataset, load_masked_lm,
                               load_span_corruption, load_text)

__all__ = ["Splits", "load", "load_digits", "load_listops", "load_moving_digits", "load_image_folder", "list_datasets",
           "random_shift", "Table", "TableEncoder", "TableSpec", "list_tables", "load_table", "read_table",
           "load_wdbc", "load_kyoto", "read_kyoto"]
__all__ += ["ByteTokenizer", "MaskedLMDataset", "SpanCorruptionDataset", "load_text", "load_span_corruption",
            "load_masked_lm"]

_LOADERS = {"digits": load_digits, "listops": load_listops, "moving_digits": load_moving_digits, "wdbc": load_wdbc,
            "kyoto": load_kyoto, "span_corruption": load_span_corruption, "masked_lm": load_masked_lm}


def list_datasets():
    return sorted(_LOADERS)


def load(name, **options):
    """The named data set's train / validation / test splits."""
    if name not in _LOADERS:
        raise ValueError(f"data.load: unknown data set {name!r}; known: {', '.join(list_datasets())}.")
    return _LOADERS[name](**options)
