"""α-precision and β-recall (Alaa et al. 2022, "How faithful is your synthetic
data?", arXiv 2102.08921), in the "naive" form that synthcity computes and
TabSyn (arXiv 2310.09656) reports.

Embedding: numerical columns min-max scaled to the real table's range,
categorical columns one-hot (0/1). With c the mean of the embedded real rows
and α_k = k / (K − 1), k = 0 … K − 1 (K = `steps` = 30):

- r_α: the α-quantile (linear interpolation) of ‖x − c‖ over real rows x;
  P(α) = the share of synthetic rows y with ‖y − c‖ ≤ r_α (the α-support of the
  real data, a ball around its centre, holds a share α of a faithful sample);
- for each real row x: d_rr(x) its distance to the nearest other real row,
  y(x) its nearest synthetic row at distance d_rs(x), d_s(x) = ‖y(x) − c_s‖
  with c_s the mean synthetic row, s_α the α-quantile of d_s over real rows;
  R(α) = the share of real rows with d_rs(x) ≤ d_rr(x) and d_s(x) ≤ s_α
  (real rows covered by the synthetic α-support);
- α-precision = 1 − Σ_k |α_k − P(α_k)| / Σ_k α_k, β-recall = 1 − Σ_k |α_k −
  R(α_k)| / Σ_k α_k.

Both are 1 (up to the quantiles' 1/n granularity) for a synthetic table equal
to the real one and fall as the synthetic rows leave (precision) or fail to
cover (recall) the real rows. Unlike synthcity the two tables may differ in
size. Distances are Euclidean.
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors

from glu_zoo.evaluation._common import Encoding, check_positive_int, check_spec, check_table

__all__ = ["alpha_precision_beta_recall", "precision_recall_curves"]


def precision_recall_curves(real, synthetic, steps=30):
    """(α_k, P(α_k), R(α_k)) of two embedded arrays (rows, features), as defined above."""
    real = np.asarray(real, np.float64)
    synthetic = np.asarray(synthetic, np.float64)
    alphas = np.linspace(0.0, 1.0, steps)
    centre = real.mean(axis=0)
    radii = np.quantile(np.linalg.norm(real - centre, axis=1), alphas)
    synthetic_to_centre = np.linalg.norm(synthetic - centre, axis=1)
    precision = np.array([np.mean(synthetic_to_centre <= r) for r in radii])

    real_to_real = NearestNeighbors(n_neighbors=2).fit(real).kneighbors(real)[0][:, 1]
    real_to_synthetic, nearest = NearestNeighbors(n_neighbors=1).fit(synthetic).kneighbors(real)
    real_to_synthetic, nearest = real_to_synthetic[:, 0], nearest[:, 0]
    nearest_to_centre = np.linalg.norm(synthetic[nearest] - synthetic.mean(axis=0), axis=1)
    synthetic_radii = np.quantile(nearest_to_centre, alphas)
    covered = real_to_synthetic <= real_to_real
    recall = np.array([np.mean(covered & (nearest_to_centre <= s)) for s in synthetic_radii])
    return alphas, precision, recall


def alpha_precision_beta_recall(real, synthetic, spec, steps=30):
    """α-precision and β-recall of `synthetic` against `real`.

    Args:
        real: DataFrame with the spec's columns, at least 2 rows.
        synthetic: DataFrame with the spec's columns.
        spec: the TableSpec.
        steps: the number K of α levels in [0, 1] (30, as synthcity).

    Returns:
        {"alpha_precision", "beta_recall"} — plain floats, 1 at best (they can
        fall below 0 for a table far from the real one).
    """
    owner = "alpha_precision_beta_recall"
    spec = check_spec(spec, owner)
    steps = check_positive_int("steps", steps, owner, minimum=2)
    real = check_table("real", real, spec, owner)
    synthetic = check_table("synthetic", synthetic, spec, owner)
    if len(real) < 2:
        raise ValueError(f"{owner}: `real` has {len(real)} row; at least 2 are needed (a nearest other real row).")
    encoding = Encoding(spec, real, others=(synthetic,), scale="minmax")
    alphas, precision, recall = precision_recall_curves(encoding.transform(real), encoding.transform(synthetic),
                                                        steps)
    total = alphas.sum()
    return {"alpha_precision": float(1.0 - np.abs(alphas - precision).sum() / total),
            "beta_recall": float(1.0 - np.abs(alphas - recall).sum() / total)}
