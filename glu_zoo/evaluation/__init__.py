"""How faithful, useful and private a synthetic table is: the metrics that
tabular generation papers (TabSyn, arXiv 2310.09656; RecTable, arXiv
2503.20731) report, one module per family.

- `shapes`: column shapes (KSComplement, TVComplement);
- `trends`: pair trends (CorrelationSimilarity, ContingencySimilarity);
- `detection`: C2ST, the AUC of a random forest telling synthetic from real;
- `efficiency`: machine-learning efficiency (train on synthetic, test on real);
- `fidelity`: α-precision and β-recall;
- `privacy`: distance to the closest record and the share of copied rows;
- `plots`: real against synthetic marginals and correlation matrices (PNG).

Every metric takes pandas DataFrames holding the columns of a `TableSpec`
(glu_zoo.data.tabular) and returns plain Python values (JSON-able).
`evaluate` runs them all.
"""

from glu_zoo.evaluation._common import check_seed, check_spec, check_table
from glu_zoo.evaluation.detection import c2st
from glu_zoo.evaluation.efficiency import efficiency
from glu_zoo.evaluation.fidelity import alpha_precision_beta_recall
from glu_zoo.evaluation.plots import plot_correlations, plot_marginals
from glu_zoo.evaluation.privacy import distance_to_closest_record
from glu_zoo.evaluation.shapes import column_shapes, ks_complement, tv_complement
from glu_zoo.evaluation.trends import column_pair_trends, contingency_similarity, correlation_similarity

__all__ = [
    "alpha_precision_beta_recall",
    "c2st",
    "column_pair_trends",
    "column_shapes",
    "contingency_similarity",
    "correlation_similarity",
    "distance_to_closest_record",
    "efficiency",
    "evaluate",
    "ks_complement",
    "plot_correlations",
    "plot_marginals",
    "summary",
    "tv_complement",
]


def evaluate(real_train, real_test, synthetic, spec, seed=0, n_estimators=100):
    """Every metric of this package for one synthetic table.

    The distribution metrics (shapes, trends, C2ST, α-precision / β-recall)
    compare `synthetic` with `real_train`, the table the generator was fitted
    on, as TabSyn does; machine-learning efficiency tests on `real_test`
    (skipped when the spec has no target); the DCR uses both splits.

    Args:
        real_train, real_test, synthetic: DataFrames with the spec's columns.
        spec: the TableSpec.
        seed: seeds the C2ST folds and forests and the efficiency model.
        n_estimators: trees of the C2ST and efficiency forests.

    Returns:
        {"shapes", "trends", "detection", "efficiency" (None without a target),
        "fidelity", "privacy", "summary"}; `summary` holds the headline numbers
        (see `summary`). Plain values only.
    """
    owner = "evaluate"
    spec = check_spec(spec, owner)
    seed = check_seed(seed, owner)
    real_train = check_table("real_train", real_train, spec, owner)
    real_test = check_table("real_test", real_test, spec, owner)
    synthetic = check_table("synthetic", synthetic, spec, owner)
    result = {
        "shapes": column_shapes(real_train, synthetic, spec),
        "trends": column_pair_trends(real_train, synthetic, spec),
        "detection": c2st(real_train, synthetic, spec, seed=seed, n_estimators=n_estimators),
        "efficiency": (efficiency(real_train, real_test, synthetic, spec, seed=seed, n_estimators=n_estimators)
                       if spec.target is not None else None),
        "fidelity": alpha_precision_beta_recall(real_train, synthetic, spec),
        "privacy": distance_to_closest_record(real_train, real_test, synthetic, spec),
    }
    result["summary"] = summary(result)
    return result


def summary(result):
    """The headline numbers of an `evaluate` result, one flat dict of floats (None where undefined)."""
    efficiency_ = result["efficiency"]
    return {
        "shapes": result["shapes"]["score"],
        "trends": result["trends"]["score"],
        "c2st_auc": result["detection"]["auc"],
        "detection_score": result["detection"]["score"],
        "mle_synthetic": efficiency_["score"] if efficiency_ else None,
        "mle_real": (efficiency_["real"]["accuracy" if efficiency_["task"] == "classification" else "r2"]
                     if efficiency_ else None),
        "alpha_precision": result["fidelity"]["alpha_precision"],
        "beta_recall": result["fidelity"]["beta_recall"],
        "copied_share": result["privacy"]["copied_share"],
        "dcr_ratio": result["privacy"]["dcr_ratio"],
    }
