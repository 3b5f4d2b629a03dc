"""Column shapes: how well each column's marginal distribution is reproduced.

As sdmetrics' quality report (and TabSyn, arXiv 2310.09656, which reports it):
numerical columns score KSComplement = 1 − D, D the two-sample
Kolmogorov–Smirnov statistic sup_x |F_real(x) − F_syn(x)| of the empirical
CDFs; categorical columns score TVComplement = 1 − ½ Σ_c |p_c − q_c|, p and q
the category frequencies of the real and synthetic column. Both lie in [0, 1],
1 for identical marginals. Missing values are left out of both, as sdmetrics
does.
"""

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from glu_zoo.evaluation._common import check_spec, check_table, mean_or_none

__all__ = ["column_shapes", "ks_complement", "tv_complement"]


def ks_complement(real, synthetic):
    """1 − the Kolmogorov–Smirnov statistic of two numerical samples (NaN left out).

    Returns None when either sample has no value left.
    """
    real = pd.Series(real, dtype=np.float64).dropna().to_numpy()
    synthetic = pd.Series(synthetic, dtype=np.float64).dropna().to_numpy()
    if len(real) == 0 or len(synthetic) == 0:
        return None
    return float(1.0 - ks_2samp(real, synthetic).statistic)


def tv_complement(real, synthetic):
    """1 − the total variation distance ½ Σ_c |p_c − q_c| of two categorical samples (NaN left out).

    Categories are compared as values (pandas equality); a category only one
    side holds counts with frequency 0 on the other. None when either sample
    has no value left.
    """
    real = pd.Series(real).dropna()
    synthetic = pd.Series(synthetic).dropna()
    if len(real) == 0 or len(synthetic) == 0:
        return None
    p = real.value_counts(normalize=True)
    q = synthetic.value_counts(normalize=True)
    union = p.index.union(q.index)
    p, q = p.reindex(union, fill_value=0.0), q.reindex(union, fill_value=0.0)
    return float(1.0 - 0.5 * np.abs(p.to_numpy() - q.to_numpy()).sum())


def column_shapes(real, synthetic, spec):
    """KSComplement of every numerical column, TVComplement of every categorical one.

    Args:
        real, synthetic: DataFrames with the spec's columns.
        spec: the TableSpec (a classification target counts as categorical, a
            regression target as numerical).

    Returns:
        {"columns": {name: {"metric": "KSComplement" | "TVComplement", "score": s}},
         "score": the mean over columns} — plain floats (None where a column has
        no value left).
    """
    owner = "column_shapes"
    spec = check_spec(spec, owner)
    real = check_table("real", real, spec, owner)
    synthetic = check_table("synthetic", synthetic, spec, owner)
    columns = {}
    for name in spec.columns:
        if name in spec.numerical_columns:
            columns[name] = {"metric": "KSComplement", "score": ks_complement(real[name], synthetic[name])}
        else:
            columns[name] = {"metric": "TVComplement", "score": tv_complement(real[name], synthetic[name])}
    return {"columns": columns, "score": mean_or_none([c["score"] for c in columns.values()])}
