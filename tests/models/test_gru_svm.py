"""GRUSVM (arXiv 1709.03082): against the NumPy reference, both GRUs and both heads, its own loss and
accuracy, round trips, named sizes, training through glu_zoo.training, bad inputs (tiny sizes)."""

import dataclasses

import keras
import numpy as np
import pytest

import glu_zoo.models
from glu_zoo import presets, recipes, training
from glu_zoo.layers import SquaredHinge
from glu_zoo.models import GRUSVM
from tests import reference as ref
from tests.conftest import BACKEND, to_numpy
from tests.models import (
    check_config_round_trip,
    check_dtype_policy_round_trip,
    check_keras_round_trip,
    randomise,
    weights_of,
)

SMALL = dict(sequence_length=7, input_dim=3, num_classes=3, units=5)
# Traced (jax.jit; a tf.function graph: XLA would only add compile time to these tiny steps); torch eager.
JIT = {"jit_compile": BACKEND == "jax"}


def sequences(seed, batch=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, SMALL["sequence_length"], SMALL["input_dim"])).astype("float32")


def parallel_gru_available():
    try:
        from glu_zoo.layers import ParallelGRU  # noqa: F401
    except ImportError:
        return False
    return True


def reference_weights(model):
    """The model's weights keyed as the reference reads them (keras's GRU keeps them in its cell)."""
    return {path.replace("gru/gru_cell/", "gru/"): w for path, w in weights_of(model).items()}


@pytest.mark.parametrize("head", ["svm", "softmax"])
def test_gru_svm_matches_numpy_reference(head):
    model = GRUSVM(**SMALL, head=head)
    randomise(model, np.random.default_rng(1))
    x = sequences(2)
    np.testing.assert_allclose(to_numpy(model(x)), ref.gru_svm(x, reference_weights(model)), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not parallel_gru_available(), reason="glu_zoo.layers.ParallelGRU is not there")
@pytest.mark.parametrize("method", ["auto", "deer"])
def test_the_parallel_gru_gives_the_keras_grus_outputs_with_its_weights(method):
    keras_gru = GRUSVM(**SMALL)
    randomise(keras_gru, np.random.default_rng(3))
    parallel = GRUSVM(**SMALL, recurrent="parallel", method=method)
    parallel.set_weights(keras_gru.get_weights())
    x = sequences(4)
    np.testing.assert_allclose(to_numpy(parallel(x)), to_numpy(keras_gru(x)), rtol=1e-4, atol=1e-4)
    assert parallel.get_layer("gru").method == method


@pytest.mark.parametrize("head", ["svm", "softmax"])
def test_the_model_brings_its_loss_and_accuracy_is_argmax(head):
    """classification_loss(): the squared hinge with C (the ½‖W‖² in model.losses) or cross-entropy from
    logits; a fit step moves every weight; "accuracy" is argmax of the outputs against the class."""
    model = GRUSVM(**SMALL, head=head, C=0.25)
    loss = model.classification_loss()
    if head == "svm":
        assert isinstance(loss, SquaredHinge) and loss.C == 0.25 and len(model.losses) == 1
    else:
        assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy) and loss.get_config()["from_logits"]
        assert not model.losses
    x, y = sequences(5, batch=8), np.array([0, 1, 2, 0, 1, 2, 0, 1])
    training._compile(model, keras.optimizers.Adam(1e-2))
    assert type(model.loss) is type(loss) and model.loss.get_config() == loss.get_config()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=model.classification_loss(), metrics=["accuracy"], **JIT)
    before = [to_numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.array_equal(b, to_numpy(w)) for b, w in zip(before, model.trainable_weights))
    _, accuracy = model.evaluate(x, y, batch_size=8, verbose=0)
    assert accuracy == pytest.approx(np.mean(model.predict_classes(x) == y))


def test_the_objective_of_the_svm_head_is_the_papers():
    """evaluate's loss: ½‖W‖² + C·Σ_i Σ_k max(0, 1 − y·o)² over the batch, from the NumPy reference."""
    model = GRUSVM(**SMALL, C=0.5)
    randomise(model, np.random.default_rng(6))
    x, y = sequences(7), np.array([2, 0, 1, 1])
    w = reference_weights(model)
    expected = ref.l2svm_objective(y, ref.gru_svm(x, w), w["head/kernel"], C=0.5)
    model.compile(loss=model.classification_loss(), **JIT)
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=4, verbose=0), expected, rtol=1e-5)


@pytest.mark.parametrize("head, recurrent", [
    ("svm", "keras"),
    ("softmax", "keras"),
    pytest.param("svm", "parallel", marks=pytest.mark.skipif(not parallel_gru_available(), reason="no ParallelGRU")),
])
def test_round_trips(head, recurrent, tmp_path):
    model = GRUSVM(**SMALL, head=head, recurrent=recurrent, C=2.0, dropout=0.1)
    randomise(model, np.random.default_rng(8))
    x = sequences(9)
    check_keras_round_trip(model, x, tmp_path)
    check_config_round_trip(model, x)
    assert keras.saving.load_model(tmp_path / "model.keras").classification_loss().get_config() == \
        model.classification_loss().get_config()


def test_dtype_policy_round_trip(tmp_path):
    check_dtype_policy_round_trip(lambda **kw: GRUSVM(**SMALL, **kw), sequences(10), tmp_path)


def test_preset_round_trip(tmp_path):
    model = GRUSVM(**SMALL)
    randomise(model, np.random.default_rng(11))
    model.save_to_preset(tmp_path / "preset")
    loaded = GRUSVM.from_preset(tmp_path / "preset")
    assert loaded.get_config() == model.get_config()
    assert presets.expected_output_error(loaded, presets.get_metadata(tmp_path / "preset")) < 1e-6


def test_named_architectures():
    from glu_zoo.models.gru_svm import ARCHITECTURES

    assert set(ARCHITECTURES) <= set(glu_zoo.models.list_architectures())
    # The paper's size on Kyoto 2013 (not built here: GRU(256) is slow to trace).
    cls, paper = ARCHITECTURES["gru_svm"]
    assert cls is GRUSVM and {k: paper[k] for k in ("units", "sequence_length", "input_dim", "C", "head")} == dict(
        units=256, sequence_length=21, input_dim=10, C=0.5, head="svm")
    softmax = ARCHITECTURES["gru_softmax"][1]
    assert softmax["head"] == "softmax" and {k: v for k, v in softmax.items() if k != "head"} == {
        k: v for k, v in paper.items() if k not in ("head", "C")}
    model = glu_zoo.models.build("gru_softmax_wdbc", units=3)
    assert (model.head, model.sequence_length, model.input_dim, model.units) == ("softmax", 30, 1, 3)


@pytest.mark.slow
def test_the_recipe_trains_into_a_preset_that_evaluate_scores(tmp_path):
    recipe = dataclasses.replace(recipes.get("gru_svm_wdbc"), epochs=1, model_overrides={"units": 4})
    result = training.train(recipe, out=tmp_path, verbose=0)
    assert 0.0 <= result["metrics"]["accuracy"] <= 1.0 and np.isfinite(result["metrics"]["loss"])
    evaluated = training.evaluate(tmp_path / "preset")
    assert evaluated["expected_output_error"] < 1e-5 and evaluated["examples"] == 171
    assert evaluated["metrics"]["accuracy"] == pytest.approx(result["metrics"]["accuracy"], abs=1e-6)
    assert "wdbc" in presets.get_metadata(tmp_path / "preset")["data_split"]


def test_nan_and_wrong_inputs_are_named():
    model = GRUSVM(**SMALL)
    x = sequences(12)
    x[1, 4, 2] = np.nan
    for fn in (model, model.predict, lambda a: model.fit(a, np.zeros(4, "int32"), verbose=0)):
        with pytest.raises(ValueError, match=r"GRUSVM 'gru_svm': the inputs must be finite; got NaN or infinity at "
                                             r"index \(1, 4, 2\) \(example 1, step 4, feature 2\)"):
            fn(x)
    with pytest.raises(ValueError, match=r"inputs must be finite"):
        model(keras.ops.convert_to_tensor(x))
    with pytest.raises(ValueError, match=r"expected inputs of shape \(None, 7, 3\); got shape \(4, 7, 2\)"):
        model(sequences(13)[..., :2])
    with pytest.raises(ValueError, match=r"`inputs` must be floating point; got dtype int32"):
        model(np.zeros((2, 7, 3), "int32"))
    assert model.predict(sequences(14), verbose=0).shape == (4, 3)  # it still works


def test_labels_the_head_cannot_take_are_named_before_fit_or_evaluate_starts():
    x = sequences(15)
    svm, softmax = GRUSVM(**SMALL), GRUSVM(**SMALL, head="softmax")
    for model in (svm, softmax):
        model.compile(optimizer="adam", loss=model.classification_loss(), **JIT)
    ids = np.array([0, 2, 1, 3])
    with pytest.raises(ValueError, match=r"GRUSVM 'gru_svm', training labels: `y` holds the value 3 \(at index 3\); "
                                         r"allowed: class ids .* integers in \[0, 3\); one-hot"):
        svm.fit(x, ids, verbose=0)
    with pytest.raises(ValueError, match=r"GRUSVM 'gru_softmax', validation labels: `y` holds the value 3"):
        softmax.fit(x, ids % 3, validation_data=(x, ids), verbose=0)
    with pytest.raises(ValueError, match=r"GRUSVM 'gru_softmax', labels: `y` has shape \(4, 3\); allowed: class ids "
                                         r"of shape \(batch,\) or \(batch, 1\), integers in \[0, 3\)\.$"):
        softmax.evaluate(x, np.eye(3)[ids % 3], verbose=0)  # the softmax head takes class ids only
    with pytest.raises(ValueError, match=r"`y` row 0 is \[1.0, 1.0, -1.0\], with 2 classes"):
        svm.evaluate(x, np.array([[1, 1, -1]] * 4), verbose=0)
    plus_minus = 2 * np.eye(3)[ids % 3] - 1
    assert np.isfinite(svm.fit(x, plus_minus, verbose=0).history["loss"][0])  # the SVM head takes ±1 labels


@pytest.mark.parametrize("kwargs, match", [
    (dict(recurrent="cudnn"), r"unknown `recurrent` 'cudnn'; allowed: keras, parallel"),
    (dict(head="hinge"), r"unknown `head` 'hinge'; allowed: svm, softmax"),
    (dict(C=0.0), r"`C` must be a number in \(0.0, inf\); got 0.0"),
    (dict(num_classes=1), r"`num_classes` must be at least 2"),
    (dict(units=0), r"`units` must be a positive integer; got 0"),
    (dict(dropout=1.0), r"`dropout` must be a number in \[0, 1\); got 1.0"),
    (dict(method="deer"), r"`method` 'deer' is ParallelGRU's; with recurrent='keras' it must be 'auto'"),
    (dict(sequence_length=None), r"`sequence_length` must be a positive integer; got None"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=rf"GRUSVM: {match}"):
        GRUSVM(**{**SMALL, **kwargs})


@pytest.mark.skipif(not parallel_gru_available(), reason="glu_zoo.layers.ParallelGRU is not there")
def test_an_unknown_parallel_method_is_named():
    with pytest.raises(ValueError, match=r"`method` 'newton'"):
        GRUSVM(**SMALL, recurrent="parallel", method="newton")
