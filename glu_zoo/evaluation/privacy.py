"""Distance to the closest record (DCR): does the generator copy training rows?

Rows are embedded as TabSyn (arXiv 2310.09656) does for its DCR test:
numerical columns min-max scaled by the real training split's range,
categorical columns one-hot (0/1); distances are L1 (Manhattan), so a row that
differs in one category is 2 away and one that differs by the whole range of
one numerical column is 1 away.

- DCR of a synthetic row: its distance to the nearest real training row.
- `copied_share`: the share of synthetic rows whose DCR is ≤ `atol` (1e-8), i.e.
  that repeat a training row; it must be 0 for a generator that does not copy.
- `holdout_dcr_median`: the median distance of the real **test** rows to their
  nearest training row: how close fresh real data lies. `dcr_ratio` = median
  synthetic DCR / that; well under 1 means the synthetic rows hug the training
  rows more closely than new real rows do.
- `closer_to_train_share`: TabSyn's DCR score, the share of synthetic rows
  strictly nearer to the training split than to the test split. For splits of
  equal size a generator that does not memorise scores about 0.5; with an
  80/20 split any generator scores more (rows lie nearer the bigger split), so
  compare generators on the same split.
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors

from glu_zoo.evaluation._common import Encoding, check_spec, check_table

__all__ = ["distance_to_closest_record"]


def _nearest(reference, rows):
    return NearestNeighbors(n_neighbors=1, metric="manhattan").fit(reference).kneighbors(rows)[0][:, 0]


def distance_to_closest_record(real_train, real_test, synthetic, spec, atol=1e-8):
    """DCR statistics of `synthetic` against the real training and test splits.

    Args:
        real_train: the real training split (what the generator saw).
        real_test: the real test split (fresh real rows).
        synthetic: the synthetic table.
        spec: the TableSpec.
        atol: a distance at most this counts as a copy (in min-max units).

    Returns:
        {"copied_share", "dcr_median", "dcr_min", "holdout_dcr_median",
        "holdout_copied_share" (test rows that repeat a training row: duplicates
        in the real data itself), "dcr_ratio" (None when the holdout median is
        0), "closer_to_train_share"} — plain floats.
    """
    owner = "distance_to_closest_record"
    spec = check_spec(spec, owner)
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not 0 <= atol < np.inf:
        raise ValueError(f"{owner}: `atol` must be a finite number >= 0; got {atol!r}.")
    real_train = check_table("real_train", real_train, spec, owner)
    real_test = check_table("real_test", real_test, spec, owner)
    synthetic = check_table("synthetic", synthetic, spec, owner)
    encoding = Encoding(spec, real_train, others=(real_test, synthetic), scale="minmax")
    train, test, rows = (encoding.transform(t) for t in (real_train, real_test, synthetic))
    to_train = _nearest(train, rows)
    to_test = _nearest(test, rows)
    holdout = _nearest(train, test)
    holdout_median = float(np.median(holdout))
    median = float(np.median(to_train))
    return {"copied_share": float(np.mean(to_train <= atol)),
            "dcr_median": median,
            "dcr_min": float(to_train.min()),
            "holdout_dcr_median": holdout_median,
            "holdout_copied_share": float(np.mean(holdout <= atol)),
            "dcr_ratio": median / holdout_median if holdout_median > 0 else None,
            "closer_to_train_share": float(np.mean(to_train < to_test))}
