"""Machine-learning efficiency: train on synthetic, test on real (TSTR).

As TabSyn (arXiv 2310.09656) and RecTable (arXiv 2503.20731) report it: a
model is fitted to predict the target from the other columns of the synthetic
table and scored on the real test split; the same model fitted on the real
training split (TRTR) is the reference. A faithful generator scores close to
the reference.

The model is a scikit-learn random forest (`model="forest"`, the default:
`RandomForestClassifier` / `RandomForestRegressor`, `n_estimators` trees,
`random_state=seed`) or a linear one (`model="linear"`: `LogisticRegression`
/ `Ridge`) — TabSyn tunes XGBoost instead, which this package does not depend
on. Features: numerical columns standardised on the real training split,
categorical columns one-hot. Classification reports accuracy and macro F1;
regression reports R² and RMSE.
"""

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score

from glu_zoo.evaluation._common import Encoding, check_positive_int, check_seed, check_spec, check_table

__all__ = ["MODELS", "efficiency"]

MODELS = ("forest", "linear")


def _model(task, model, seed, n_estimators):
    if task == "classification":
        if model == "forest":
            return RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
        return LogisticRegression(max_iter=2000)
    if model == "forest":
        return RandomForestRegressor(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    return Ridge(alpha=1.0)


def _scores(task, truth, predicted):
    if task == "classification":
        return {"accuracy": float(accuracy_score(truth, predicted)),
                "macro_f1": float(f1_score(truth, predicted, average="macro"))}
    return {"r2": float(r2_score(truth, predicted)),
            "rmse": float(np.sqrt(mean_squared_error(truth, predicted)))}


def efficiency(real_train, real_test, synthetic, spec, seed=0, model="forest", n_estimators=100):
    """Train-on-synthetic / test-on-real scores against train-on-real / test-on-real.

    Args:
        real_train: the real training split (what the generator was fitted on).
        real_test: the real test split, never seen by the generator.
        synthetic: the synthetic table.
        spec: the TableSpec; it must declare a target and its task.
        seed: seeds the model.
        model: "forest" or "linear".
        n_estimators: trees of the forest.

    Returns:
        {"task", "model", "synthetic": scores, "real": scores, "score": the
        synthetic accuracy (classification) or R² (regression)} — plain values.
    """
    owner = "efficiency"
    spec = check_spec(spec, owner)
    if spec.target is None:
        raise ValueError(f"{owner}: `spec` declares no target; machine-learning efficiency needs one "
                         f"(TableSpec(target=..., task=...)).")
    if len(spec.columns) < 2:
        raise ValueError(f"{owner}: `spec` declares only the target {spec.target!r}; efficiency needs feature "
                         f"columns to predict it from.")
    seed = check_seed(seed, owner)
    if model not in MODELS:
        raise ValueError(f"{owner}: unknown `model` {model!r}; allowed: {', '.join(MODELS)}.")
    n_estimators = check_positive_int("n_estimators", n_estimators, owner)
    real_train = check_table("real_train", real_train, spec, owner)
    real_test = check_table("real_test", real_test, spec, owner)
    synthetic = check_table("synthetic", synthetic, spec, owner)
    features = [c for c in spec.columns if c != spec.target]
    if spec.target in spec.missing:
        for name, table in (("real_train", real_train), ("real_test", real_test), ("synthetic", synthetic)):
            if table[spec.target].isna().any():
                raise ValueError(f"{owner}: `{name}` has a missing target {spec.target!r}; "
                                 f"rows without a target cannot train or score a model.")
    if spec.task == "classification":
        for name, table in (("real_train", real_train), ("synthetic", synthetic)):
            if model == "linear" and table[spec.target].nunique() < 2:
                raise ValueError(f"{owner}: `{name}` holds one class of {spec.target!r} only; a linear "
                                 f"classifier needs two or more.")
    encoding = Encoding(spec, real_train, others=(real_test, synthetic), columns=features)
    x_test = encoding.transform(real_test)
    y_test = real_test[spec.target].to_numpy()
    result = {"task": spec.task, "model": model}
    for name, table in (("synthetic", synthetic), ("real", real_train)):
        estimator = _model(spec.task, model, seed, n_estimators)
        estimator.fit(encoding.transform(table), table[spec.target].to_numpy())
        result[name] = _scores(spec.task, y_test, estimator.predict(x_test))
    result["score"] = result["synthetic"]["accuracy" if spec.task == "classification" else "r2"]
    return result
