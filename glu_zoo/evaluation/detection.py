"""C2ST detection: can a classifier tell synthetic rows from real ones?

A classifier two-sample test (Lopez-Paz & Oquab, arXiv 1610.06545), as
sdmetrics' detection metrics and TabSyn (arXiv 2310.09656) use it: real rows
are labelled 0, synthetic rows 1, both encoded alike (numerical columns
standardised on the real table, categorical columns one-hot); a random forest
is scored by ROC AUC over stratified K-fold cross-validation. AUC 0.5: the
tables cannot be told apart; 1: every row is told apart.

The folds are **shuffled** (`StratifiedKFold(folds, shuffle=True,
random_state=seed)`): scikit-learn's bundled tables (wine, iris) hold their
rows sorted by class, and unshuffled folds then hold out one class of the real
rows while training on the synthetic rows of that class, which scores below
chance (an AUC well under 0.5) for a perfect generator.

Besides the mean AUC the result holds sdmetrics' detection score
1 − mean_k (2·max(AUC_k, 0.5) − 1) over folds k (1: undetectable).

An AUC well *below* 0.5 is a warning, not a success: a synthetic table that
copies the real rows scores near 0 (each held-out real row's twin was trained
on as synthetic, and vice versa; measured 0.01 on wine's training split), and
sdmetrics' score, which clips at 0.5, rates that copy as perfect. Read the C2ST
with the privacy module's `copied_share`.
"""

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from glu_zoo.evaluation._common import Encoding, check_positive_int, check_seed, check_spec, check_table

__all__ = ["c2st"]


def c2st(real, synthetic, spec, seed=0, folds=5, n_estimators=100, shuffle=True):
    """ROC AUC of a random forest telling `synthetic` rows from `real` ones.

    Args:
        real, synthetic: DataFrames with the spec's columns (any numbers of rows,
            each at least `folds`).
        spec: the TableSpec.
        seed: seeds the fold shuffle and the forest.
        folds: cross-validation folds (5).
        n_estimators: trees of the forest (100).
        shuffle: shuffle the rows before the folds are cut. Leave it True;
            False exists only to show the sorted-rows pitfall.

    Returns:
        {"auc": mean fold AUC, "auc_folds": [...], "score": sdmetrics' detection
        score, "classifier": "random_forest", "folds": folds} — plain values.
    """
    owner = "c2st"
    spec = check_spec(spec, owner)
    seed = check_seed(seed, owner)
    folds = check_positive_int("folds", folds, owner, minimum=2)
    n_estimators = check_positive_int("n_estimators", n_estimators, owner)
    if not isinstance(shuffle, bool):
        raise ValueError(f"{owner}: `shuffle` must be True or False; got {shuffle!r}.")
    real = check_table("real", real, spec, owner)
    synthetic = check_table("synthetic", synthetic, spec, owner)
    for name, table in (("real", real), ("synthetic", synthetic)):
        if len(table) < folds:
            raise ValueError(f"{owner}: `{name}` has {len(table)} rows; at least `folds` = {folds} are needed.")
    encoding = Encoding(spec, real, others=(synthetic,))
    x = np.concatenate([encoding.transform(real), encoding.transform(synthetic)])
    y = np.concatenate([np.zeros(len(real), np.int64), np.ones(len(synthetic), np.int64)])
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if shuffle else StratifiedKFold(folds)
    aucs = []
    for train, test in splitter.split(x, y):
        forest = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
        forest.fit(x[train], y[train])
        aucs.append(float(roc_auc_score(y[test], forest.predict_proba(x[test])[:, 1])))
    score = 1.0 - float(np.mean([2.0 * max(auc, 0.5) - 1.0 for auc in aucs]))
    return {"auc": float(np.mean(aucs)), "auc_folds": aucs, "score": score, "classifier": "random_forest",
            "folds": folds}

