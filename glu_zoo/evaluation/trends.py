"""Pair trends: how well the dependence between every two columns is reproduced.

As sdmetrics' quality report (ColumnPairTrends, which TabSyn, arXiv
2310.09656, reports as "trend"):

- two numerical columns: CorrelationSimilarity = 1 − |ρ_real − ρ_syn| / 2, ρ
  Pearson's correlation (rows with a missing value in the pair left out);
- two categorical columns: ContingencySimilarity = 1 − ½ Σ_ab |p_ab − q_ab|, p
  and q the joint frequencies of the value pairs (a missing value is a
  category of its own);
- a numerical and a categorical column: ContingencySimilarity after binning the
  numerical column into `bins` (10) bins. The bin edges are
  `numpy.histogram_bin_edges` of the **real** column with the outer two opened
  to ±∞, and both tables are binned with them (as sdmetrics'
  `discretize_column`; sdmetrics' quality report instead bins each table on
  its own edges, which scores a shifted synthetic column as perfect); a
  missing value is a bin of its own.

Every score lies in [0, 1], 1 for identical pair statistics.
"""

import collections
import itertools

import numpy as np
import pandas as pd

from glu_zoo.evaluation._common import check_positive_int, check_spec, check_table, mean_or_none

__all__ = ["column_pair_trends", "contingency_similarity", "correlation_similarity", "discretize"]

_NAN = object()  # a missing value, as one hashable category


def _pearson(a, b):
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    a, b = a - a.mean(), b - b.mean()
    return float(np.clip((a @ b) / np.sqrt((a @ a) * (b @ b)), -1.0, 1.0))


def correlation_similarity(real_a, real_b, synthetic_a, synthetic_b):
    """1 − |ρ_real − ρ_syn| / 2 for two numerical columns (Pearson).

    Returns (score, ρ_real, ρ_syn); all None when a correlation is undefined
    (fewer than two complete rows, or a constant column).
    """
    rho_real = _pearson(np.asarray(real_a, np.float64), np.asarray(real_b, np.float64))
    rho_syn = _pearson(np.asarray(synthetic_a, np.float64), np.asarray(synthetic_b, np.float64))
    if rho_real is None or rho_syn is None:
        return None, rho_real, rho_syn
    return 1.0 - abs(rho_real - rho_syn) / 2.0, rho_real, rho_syn


def _keys(values):
    return [_NAN if pd.isna(v) else v for v in values]


def contingency_similarity(real_a, real_b, synthetic_a, synthetic_b):
    """1 − ½ Σ_ab |p_ab − q_ab| for two categorical columns (a missing value is a category)."""
    p = collections.Counter(zip(_keys(real_a), _keys(real_b)))
    q = collections.Counter(zip(_keys(synthetic_a), _keys(synthetic_b)))
    n, m = sum(p.values()), sum(q.values())
    if n == 0 or m == 0:
        return None
    return float(1.0 - 0.5 * sum(abs(p[key] / n - q[key] / m) for key in p.keys() | q.keys()))


def discretize(real, synthetic, bins=10):
    """Bin indices of a numerical column on the real column's `bins` equal-width bins.

    The outer edges are opened to ±∞ so that a synthetic value outside the real
    range falls in the first or last bin; a missing value gets index `bins + 1`.
    """
    real = np.asarray(real, np.float64)
    synthetic = np.asarray(synthetic, np.float64)
    present = real[~np.isnan(real)]
    edges = np.histogram_bin_edges(present if len(present) else np.zeros(1), bins=bins)
    edges[0], edges[-1] = -np.inf, np.inf
    return np.digitize(real, edges), np.digitize(synthetic, edges)


def column_pair_trends(real, synthetic, spec, bins=10):
    """CorrelationSimilarity or ContingencySimilarity of every pair of columns.

    Args:
        real, synthetic: DataFrames with the spec's columns.
        spec: the TableSpec.
        bins: bins of a numerical column paired with a categorical one.

    Returns:
        {"pairs": [{"columns": [a, b], "metric": ..., "score": s, "real": ρ_r,
        "synthetic": ρ_s (correlations only)}], "score": the mean over pairs
        with a defined score (None when there is none)} — plain values.
    """
    owner = "column_pair_trends"
    spec = check_spec(spec, owner)
    bins = check_positive_int("bins", bins, owner)
    real = check_table("real", real, spec, owner)
    synthetic = check_table("synthetic", synthetic, spec, owner)
    numerical = set(spec.numerical_columns)
    pairs = []
    for a, b in itertools.combinations(spec.columns, 2):
        if a in numerical and b in numerical:
            score, rho_real, rho_syn = correlation_similarity(real[a], real[b], synthetic[a], synthetic[b])
            pairs.append({"columns": [a, b], "metric": "CorrelationSimilarity", "score": score,
                          "real": rho_real, "synthetic": rho_syn})
            continue
        columns = {}
        for name in (a, b):
            if name in numerical:
                columns[name] = discretize(real[name], synthetic[name], bins)
            else:
                columns[name] = (real[name].to_numpy(), synthetic[name].to_numpy())
        score = contingency_similarity(columns[a][0], columns[b][0], columns[a][1], columns[b][1])
        pairs.append({"columns": [a, b], "metric": "ContingencySimilarity", "score": score})
    return {"pairs": pairs, "score": mean_or_none([p["score"] for p in pairs])}
