"""L2SVM and SquaredHinge (arXiv 1709.03082) against the NumPy reference, serialisation, bad labels."""

import json

import keras
import numpy as np
import pytest

from glu_zoo.layers import L2SVM, SquaredHinge, squared_hinge
from tests import reference as ref
from tests.conftest import BACKEND, to_numpy

K = 3
# Traced (jax.jit; a tf.function graph: XLA would only add compile time to these tiny steps); torch eager.
JIT = {"jit_compile": BACKEND == "jax"}


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype("float32")
    ids = np.array([0, 2, 1, 1, 0, 2])
    o = rng.normal(size=(6, K)).astype("float32")
    return x, ids, o


def codings(ids):
    """The same labels as class ids (batch,) and (batch, 1), one-hot, and ±1."""
    one_hot = np.eye(K, dtype="float32")[ids]
    return {"ids": ids, "column": ids[:, None], "one_hot": one_hot, "plus_minus": 2 * one_hot - 1}


def head_model(C=0.5):
    model = keras.Sequential([keras.Input((4,)), L2SVM(K, C=C, name="head")])
    layer = model.layers[0]
    rng = np.random.default_rng(1)
    layer.kernel.assign(rng.normal(size=(4, K)).astype("float32"))
    layer.bias.assign(rng.normal(size=(K,)).astype("float32"))
    return model, layer


def test_decision_values_and_the_penalty_match_numpy(batch):
    x, _, _ = batch
    model, layer = head_model()
    w, b = to_numpy(layer.kernel).astype("float64"), to_numpy(layer.bias).astype("float64")
    np.testing.assert_allclose(to_numpy(model(x)), x @ w + b, rtol=1e-5, atol=1e-5)
    (penalty,) = model.losses
    np.testing.assert_allclose(to_numpy(penalty), 0.5 * np.sum(w**2), rtol=1e-5)


@pytest.mark.parametrize("coding", ["ids", "column", "one_hot", "plus_minus"])
@pytest.mark.parametrize("reduction", ["sum", "sum_over_batch_size"])
def test_squared_hinge_matches_numpy_for_every_label_coding(batch, coding, reduction):
    _, ids, o = batch
    labels = codings(ids)[coding]
    per_example = ref.squared_hinge(ids, o, C=0.7)
    expected = per_example.sum() if reduction == "sum" else per_example.mean()
    loss = SquaredHinge(C=0.7, reduction=reduction)
    np.testing.assert_allclose(to_numpy(loss(labels, o)), expected, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(squared_hinge(labels, o, C=0.7)), per_example, rtol=1e-5)
    weights = np.linspace(0.0, 2.0, len(ids))
    np.testing.assert_allclose(to_numpy(SquaredHinge(C=0.7)(labels, o, sample_weight=weights)),
                               np.sum(weights * per_example), rtol=1e-5)


def test_the_training_loss_is_the_papers_objective_and_its_gradient(batch):
    """compile(loss=layer.loss()): evaluate gives ½‖W‖² + C·Σ_i Σ_k max(0, 1 − y·o)² of the batch, and one
    SGD step moves W and b by the objective's gradient (the penalty is part of what is trained)."""
    x, ids, _ = batch
    model, layer = head_model(C=0.5)
    w, b = to_numpy(layer.kernel).astype("float64"), to_numpy(layer.bias).astype("float64")
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=layer.loss(), **JIT)
    loss = model.evaluate(x, ids, batch_size=len(x), verbose=0)
    np.testing.assert_allclose(loss, ref.l2svm_objective(ids, x @ w + b, w, C=0.5), rtol=1e-5)
    grad_w, grad_b = ref.l2svm_objective_grad(x, ids, w, b, C=0.5)
    model.fit(x, ids, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(to_numpy(layer.kernel), w - 0.01 * grad_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(layer.bias), b - 0.01 * grad_b, rtol=1e-5, atol=1e-6)


def test_fit_and_accuracy_are_the_same_for_every_label_coding(batch):
    """Traced labels are coded by sign, so a fit step gives the same weights with each coding; the
    "accuracy" metric is argmax of the decision values against the class."""
    x, ids, _ = batch
    results = []
    for labels in codings(ids).values():
        model, layer = head_model()
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss=layer.loss(), metrics=["accuracy"], **JIT)
        model.fit(x, labels, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        _, accuracy = model.evaluate(x, labels, batch_size=len(x), verbose=0)
        argmax = np.mean(np.argmax(to_numpy(model(x)), axis=-1) == ids)
        assert accuracy == pytest.approx(argmax)
        results.append(to_numpy(layer.kernel))
    for kernel in results[1:]:
        np.testing.assert_allclose(kernel, results[0], rtol=1e-6, atol=1e-6)


def test_config_and_keras_round_trips_keep_the_penalty_and_the_loss(batch, tmp_path):
    x, ids, _ = batch
    model, layer = head_model(C=2.0)
    clone = L2SVM.from_config(json.loads(json.dumps(layer.get_config())))
    assert (clone.num_classes, clone.C) == (K, 2.0)
    model.compile(optimizer="adam", loss=layer.loss())
    model.optimizer.build(model.trainable_variables)
    path = tmp_path / "svm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(loaded.losses[0]), to_numpy(model.losses[0]), rtol=1e-6)
    assert isinstance(loaded.loss, SquaredHinge) and loaded.loss.C == 2.0 and loaded.loss.reduction == "sum"
    assert loaded.evaluate(x, ids, batch_size=len(x), verbose=0) == pytest.approx(
        model.evaluate(x, ids, batch_size=len(x), verbose=0), rel=1e-6)
    again = keras.losses.deserialize(keras.losses.serialize(SquaredHinge(C=3.0, reduction="sum_over_batch_size")))
    assert isinstance(again, SquaredHinge) and (again.C, again.reduction) == (3.0, "sum_over_batch_size")


@pytest.mark.parametrize("labels, match", [
    (np.array([0, 3]), r"`y_true` holds the value 3 \(at index 1\); allowed: class ids .* integers in \[0, 3\)"),
    (np.array([-1, 0]), r"`y_true` holds the value -1 \(at index 0\)"),
    (np.array([0.5, 1.0]), r"`y_true` holds the value 0.5"),
    (np.array([[0, 1, 0], [0, -1, 1]]), r"`y_true` of shape \(2, 3\) holds the values \{-1, 0, 1\}; allowed:"),
    (np.array([[0, 2, 0], [0, 1, 0]]), r"holds the values \{0, 1, 2\}"),
    (np.array([[1, 1, 0], [0, 1, 0]]), r"`y_true` row 0 is \[1.0, 1.0, 0.0\], with 2 classes"),
    (np.array([[-1, -1, -1], [1, -1, -1]]), r"`y_true` row 0 .* with 0 classes"),
    (np.array([[0, np.nan, 1], [1, 0, 0]]), r"holds the values \{0, 1, nan\}"),
    (np.zeros((2, 2)), r"`y_true` has shape \(2, 2\); allowed: class ids of shape \(batch,\) or \(batch, 1\)"),
    (np.zeros((2, 3, 1)), r"`y_true` has shape \(2, 3, 1\)"),
    (np.array([0, 1, 1]), r"`y_true` holds 3 labels for 2 examples"),
])
def test_bad_labels_are_named(labels, match):
    o = np.zeros((2, K), "float32")
    with pytest.raises(ValueError, match=match):
        SquaredHinge()(labels, o)
    with pytest.raises(ValueError, match=match):
        squared_hinge(labels, o)
    with pytest.raises(ValueError, match=match):  # an eager backend tensor is checked as well
        SquaredHinge()(keras.ops.convert_to_tensor(labels), o)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"L2SVM: `num_classes` must be at least 2 .* got 1"):
        L2SVM(1)
    with pytest.raises(ValueError, match=r"L2SVM: `num_classes` must be a positive integer; got 2.0"):
        L2SVM(2.0)
    with pytest.raises(ValueError, match=r"L2SVM: `C` must be a number in \(0.0, inf\); got 0"):
        L2SVM(2, C=0)
    with pytest.raises(ValueError, match=r"SquaredHinge: `C` must be a number in \(0.0, inf\); got -1"):
        SquaredHinge(C=-1)
    with pytest.raises(ValueError, match=r"`y_pred` \(the decision values\) must have shape \(batch, K\) with K ≥ 2 "
                                         r"classes; got shape \(2, 1\)"):
        SquaredHinge()(np.array([0, 1]), np.zeros((2, 1), "float32"))
