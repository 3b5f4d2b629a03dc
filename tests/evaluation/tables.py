"""Small seeded toy tables for the evaluation tests."""

import numpy as np
import pandas as pd

from glu_zoo.data.tabular import TableSpec

SPEC = TableSpec(numerical=["x", "y"], categorical=["colour"], target="label", task="classification")
NUMERICAL = TableSpec(numerical=["x", "y"])


def toy(rng, n, shift=0.0):
    """x ~ N(shift, 1); y = 2x + small noise (ρ ≈ 0.99); colour depends on x; label = which third of x."""
    x = rng.normal(shift, 1.0, n)
    y = 2.0 * x + rng.normal(0.0, 0.3, n)
    colour = np.where(x + rng.normal(0.0, 0.3, n) > 0, "red", "blue")
    label = np.digitize(x, [-0.43, 0.43])  # thirds of N(0, 1)
    return pd.DataFrame({"x": x, "y": y, "colour": colour, "label": label})


def shuffle_columns(table, rng):
    """Every column permuted on its own: the marginals stay, every dependence goes."""
    return pd.DataFrame({c: rng.permutation(table[c].to_numpy()) for c in table.columns})
