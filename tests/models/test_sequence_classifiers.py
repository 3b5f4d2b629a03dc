"""LRUClassifier and its attention baseline, TransformerClassifier."""

import keras
import numpy as np
import pytest

import glu_zoo.models
from glu_zoo.models import LRUClassifier, TransformerClassifier
from glu_zoo.models.base import SequenceClassifier
from tests import reference as ref
from tests.conftest import BACKEND, to_numpy
from tests.models import (
    check_config_round_trip,
    check_dtype_policy_round_trip,
    check_fit_step,
    check_keras_round_trip,
    randomise,
    weights_of,
)

V, L = 9, 20
LRU_SMALL = dict(vocabulary_size=V, sequence_length=L, num_classes=3, hidden_dim=8, state_dim=6, num_layers=2,
                 dropout=0.1)
TRANSFORMER_SMALL = dict(vocabulary_size=V, sequence_length=L, num_classes=3, hidden_dim=8, num_layers=2,
                         num_heads=2, mlp_dim=12, dropout=0.1)
MODELS = {"lru": (LRUClassifier, LRU_SMALL), "transformer": (TransformerClassifier, TRANSFORMER_SMALL)}


def tokens(seed, batch=4, length=L, lengths=(20, 13, 5, 1)):
    x = np.random.default_rng(seed).integers(1, V, size=(batch, length)).astype("int32")
    for row, n in enumerate(lengths[:batch]):
        x[row, n:] = 0
    return x


X = tokens(11)
Y = np.array([0, 1, 2, 1])


@pytest.mark.parametrize("norm_first", [False, True])
def test_lru_classifier_matches_numpy_reference(norm_first):
    model = LRUClassifier(**{**LRU_SMALL, "norm_first": norm_first, "r_min": 0.5, "r_max": 0.95})
    rng = np.random.default_rng(4)
    for w in model.weights:  # random values, the recurrence's parameters as initialised
        if w.name not in ("nu_log", "theta_log", "gamma_log"):
            w.assign((rng.normal(size=w.shape) * 0.5).astype("float32"))
    expected = ref.lru_classifier(X, weights_of(model), model.num_layers, norm_first)
    np.testing.assert_allclose(to_numpy(model(X)), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mlp", ["gelu", "swiglu"])
def test_transformer_classifier_matches_numpy_reference(mlp):
    model = TransformerClassifier(**{**TRANSFORMER_SMALL, "mlp": mlp})
    randomise(model, np.random.default_rng(5))
    expected = ref.transformer_classifier(X, weights_of(model), model.num_layers, mlp)
    np.testing.assert_allclose(to_numpy(model(X)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", list(MODELS))
def test_padding_is_ignored(kind):
    """The padding embedding (id 0) does not reach the logits: attention masks
    it, the LRUs carry their state over it, the pooling leaves it out."""
    cls, config = MODELS[kind]
    model = cls(**config)
    before = to_numpy(model(X))
    table = model.get_layer("token_embedding").embeddings
    pad = np.random.default_rng(6).normal(size=(1, 8)) * 10
    table.assign(np.concatenate([pad, to_numpy(table)[1:]]).astype("float32"))
    np.testing.assert_allclose(to_numpy(model(X)), before, rtol=1e-5, atol=1e-5)


def test_lru_classifier_of_any_length_ignores_extra_padding():
    model = LRUClassifier(**{**LRU_SMALL, "sequence_length": None})
    longer = np.concatenate([X, np.zeros((4, 7), "int32")], axis=1)
    np.testing.assert_allclose(to_numpy(model(longer)), to_numpy(model(X)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", list(MODELS))
def test_an_all_padding_sequence_pools_to_zeros_not_nan(kind):
    cls, kwargs = MODELS[kind]
    model = cls(**kwargs)
    randomise(model, np.random.default_rng(6))
    x = tokens(12, lengths=(20, 0, 5, 0))
    bias = to_numpy(model.get_layer("head").bias)
    for logits in (to_numpy(model(x)), model.predict(x, verbose=0)):
        assert np.isfinite(logits).all()
        np.testing.assert_allclose(logits[[1, 3]], np.stack([bias, bias]), rtol=1e-6, atol=1e-6)
        assert not np.allclose(logits[0], bias)


@pytest.mark.parametrize("kind", list(MODELS))
def test_fit_step(kind):
    cls, config = MODELS[kind]
    check_fit_step(cls(**config), X, Y)


@pytest.mark.parametrize("kind", list(MODELS))
def test_keras_and_config_round_trips(kind, tmp_path):
    cls, config = MODELS[kind]
    model = cls(**config)
    check_keras_round_trip(model, X, tmp_path)
    check_config_round_trip(model, X)


@pytest.mark.parametrize("kind", list(MODELS))
def test_dtype_policy_round_trips(kind, tmp_path):
    cls, config = MODELS[kind]
    check_dtype_policy_round_trip(lambda **kw: cls(**config, **kw), X, tmp_path)


def test_architectures_and_matched_parameter_counts():
    lru = glu_zoo.models.build("lru_listops")
    transformer = glu_zoo.models.build("transformer_listops")
    assert isinstance(lru, LRUClassifier) and isinstance(transformer, TransformerClassifier)
    assert lru.sequence_length == transformer.sequence_length == 128
    assert abs(lru.count_params() / transformer.count_params() - 1) < 0.01
    assert to_numpy(lru(np.ones((2, 128), "int32"))).shape == (2, 10)


@pytest.mark.parametrize("kind", list(MODELS))
def test_bad_token_arrays(kind):
    """Named errors before predict/fit/evaluate start; the model still works after."""
    cls, config = MODELS[kind]
    model = cls(**config)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cases = [
        (X.astype("float32"), "token ids must be integers; got dtype float32"),
        (np.full_like(X, V), rf"token ids must be in \[0, {V}\); got values in \[{V}, {V}\]"),
        (-X, r"token ids must be in \[0, 9\); got values in \[-8"),
        (X[..., None], r"token ids must have shape \(batch, sequence\); got shape \(4, 20, 1\)"),
        (X[:, :10], r"token ids must have shape \(batch, 20\); got shape \(4, 10\)"),
        (X[:0], r"the inputs hold no example \(shape \(0, 20\)\); pass at least one"),
    ]
    for bad, message in cases:
        for run in (lambda: model.predict(bad, verbose=0), lambda: model.fit(bad, Y, verbose=0),
                    lambda: model.evaluate(bad, Y, verbose=0)):
            with pytest.raises(ValueError, match=message):
                run()
    assert model.predict(X, verbose=0).shape == (4, 3)


@pytest.mark.parametrize("kind", list(MODELS))
def test_model_call_refuses_token_ids_out_of_range(kind):
    """model(x) on concrete inputs: an id = V gave NaN on JAX, -1 read the
    last embedding row on every backend; now the ValueError of predict."""
    cls, config = MODELS[kind]
    model = cls(**config)
    before = to_numpy(model(X))
    np.testing.assert_allclose(to_numpy(model(keras.ops.convert_to_tensor(X))), before, rtol=1e-6, atol=1e-6)
    for value in (V, -1):
        bad = X.copy()
        bad[2, 3] = value
        low, high = min(value, 0), max(value, V - 1)
        for inputs in (bad, keras.ops.convert_to_tensor(bad), [keras.ops.convert_to_tensor(bad)], bad.tolist(),
                       {"tokens": bad}):
            with pytest.raises(ValueError, match=rf"{cls.__name__} '\w+': token ids must be in \[0, {V}\); "
                                                 rf"got values in \[{low}, {high}\]"):
                model(inputs)
    for bad, message in [(X.astype("float32"), "token ids must be integers; got dtype float32"),
                         (X[:0], r"the inputs hold no example \(shape \(0, 20\)\)")]:
        for inputs in (bad, keras.ops.convert_to_tensor(bad)):
            with pytest.raises(ValueError, match=message):
                model(inputs)
    np.testing.assert_array_equal(to_numpy(model(X)), before)


@pytest.mark.parametrize("kind", list(MODELS))
def test_traced_and_symbolic_calls_are_not_checked(kind):
    """No values to check while tracing: the traced call gives model(x)."""
    cls, config = MODELS[kind]
    model = cls(**config)
    assert tuple(model(keras.Input((L,), dtype="int32")).shape) == (None, 3)
    expected = to_numpy(model(X))
    if BACKEND == "jax":
        import jax

        traced = jax.jit(lambda x: model(x))(X)
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        traced = tf.function(lambda x: model(x))(tf.constant(X))
    else:
        pytest.skip("torch has no tracing short of torch.compile")
    np.testing.assert_allclose(to_numpy(traced), expected, rtol=1e-5, atol=1e-5)


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, i):
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[part], self.y[part]


@pytest.mark.parametrize("run_eagerly", [False, True])
def test_inputs_are_checked_once_up_front_not_per_batch(run_eagerly, monkeypatch):
    """fit/evaluate/predict check their arrays once; the model's calls inside
    their loops (eager on torch, and with run_eagerly) are not checked again
    (ZooModel does it: one model is enough)."""
    shapes = []
    original = SequenceClassifier.check_inputs

    def counting(self, x, name=None):
        shapes.append(getattr(x, "shape", None) if name != "validation inputs" else "validation")
        return original(self, x, name)

    monkeypatch.setattr(SequenceClassifier, "check_inputs", counting)
    model = LRUClassifier(**{**LRU_SMALL, "num_layers": 1})
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  run_eagerly=run_eagerly)
    history = model.fit(X, Y, batch_size=2, epochs=2, validation_data=(X, Y), verbose=0)
    assert np.isfinite(history.history["val_loss"]).all()
    assert [tuple(s) if s != "validation" else s for s in shapes] == [X.shape, "validation"]
    for run in (lambda: model.evaluate(X, Y, batch_size=2, verbose=0),
                lambda: model.predict(X, batch_size=2, verbose=0),
                lambda: model(X)):
        shapes.clear()
        run()
        assert [tuple(s) for s in shapes] == [X.shape]
    shapes.clear()
    history = model.fit(_Batches(X, Y, 2), epochs=1, verbose=0)  # a data set: nothing to check up front
    assert np.isfinite(history.history["loss"]).all() and shapes == [None]
    bad = np.full_like(X, V)
    with pytest.raises(ValueError, match=rf"validation inputs: token ids must be in \[0, {V}\)"):
        model.fit(X, Y, validation_data=(bad, Y), verbose=0)
    with pytest.raises(ValueError, match=rf"token ids must be in \[0, {V}\)"):
        model(bad)  # checked again once the loops are over


@pytest.mark.parametrize("cls, kwargs, message", [
    (LRUClassifier, dict(state_dim=0), r"`state_dim` must be a positive integer; got 0"),
    (LRUClassifier, dict(mode="fast"), r"unknown `mode` 'fast'; allowed: auto, parallel, sequential"),
    (LRUClassifier, dict(sequence_length=-3), r"`sequence_length` must be a positive integer; got -3"),
    (LRUClassifier, dict(dropout=1.5), r"`dropout` must be a number in \[0, 1\); got 1.5"),
    (LRUClassifier, dict(r_min=0.99, r_max=0.9), r"`r_min` must be smaller than `r_max`"),
    (TransformerClassifier, dict(num_heads=3), r"`hidden_dim` must be divisible by `num_heads`; got hidden_dim=8"),
    (TransformerClassifier, dict(sequence_length=None), r"`sequence_length` must be a positive integer; got None"),
    (TransformerClassifier, dict(mlp="tanh"), r"unknown `mlp` 'tanh'"),
])
def test_bad_arguments(cls, kwargs, message):
    config = LRU_SMALL if cls is LRUClassifier else TRANSFORMER_SMALL
    with pytest.raises(ValueError, match=message):
        cls(**{**config, **kwargs})
