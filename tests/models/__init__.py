"""Checks that every zoo model passes: a fit step, `.keras` round trip, config round trip."""

import json

import keras
import numpy as np

from tests.conftest import BACKEND, to_numpy


def randomise(model, rng, scale=0.5):
    """Give every weight a random value (biases, norms and tokens included)."""
    for w in model.weights:
        w.assign((rng.normal(size=w.shape) * scale).astype("float32"))


def weights_of(layer):
    """A layer's or a model's weights as float64 NumPy arrays, keyed by their
    path below it ("attention/query/kernel", "block_0/mlp/kernel_in")."""
    prefix = layer.path + "/" if not isinstance(layer, keras.Model) else ""
    return {w.path[len(prefix):]: to_numpy(w).astype(np.float64) for w in layer.weights}


def check_fit_step(model, x, y, frozen=()):
    """One `fit` step: the loss is finite and every trainable weight moves,
    except those whose path contains one of `frozen` (zero gradient by design)."""
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **({} if BACKEND == "torch" else {"jit_compile": True}),
    )
    before = {w.path: to_numpy(w).copy() for w in model.trainable_weights}
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    unchanged = [
        w.path for w in model.trainable_weights
        if np.array_equal(before[w.path], to_numpy(w)) and not any(f in w.path for f in frozen)
    ]
    assert not unchanged, unchanged


def check_keras_round_trip(model, x, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    assert [l.dtype_policy.name for l in loaded.layers] == [l.dtype_policy.name for l in model.layers]
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6)


def check_config_round_trip(model, x):
    config = json.loads(json.dumps(model.get_config()))  # as a preset stores it
    clone = type(model).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(to_numpy(clone(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6)


def check_dtype_policy_round_trip(make, x, tmp_path):
    """A model built under mixed_bfloat16 writes the policy into its config;
    `from_config` and the `.keras` file rebuild every layer in it, whatever
    the global policy is then; `dtype=` at construction does the same."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = make()
    keras.config.set_dtype_policy("float32")
    assert model.get_config()["dtype"]["config"]["name"] == "mixed_bfloat16"
    config = json.loads(json.dumps(model.get_config()))
    path = tmp_path / "bf16.keras"
    model.save(path)
    direct = make(dtype="mixed_bfloat16")
    for rebuilt in (type(model).from_config(config), keras.saving.load_model(path), direct):
        assert {l.dtype_policy.name for l in rebuilt.layers} == {"mixed_bfloat16"}, rebuilt
        assert {keras.backend.standardize_dtype(w.dtype) for w in rebuilt.weights} == {"float32"}
        assert keras.backend.standardize_dtype(rebuilt(x).dtype) == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    assert {l.dtype_policy.name for l in make().layers} == {"float32"}


def check_bad_images(model, expected, bad):
    """A ValueError that names the expected and the received shapes, both when
    the model is called and through `predict`; the model still works after."""
    for fn in (model, model.predict):
        try:
            fn(bad)
        except ValueError as e:
            message = str(e)
        else:
            raise AssertionError(f"no ValueError for images of shape {bad.shape}")
        assert str((None, *expected)) in message, message
        assert str(tuple(bad.shape)) in message, message
    good = np.zeros((2, *expected), "float32")
    assert model.predict(good, verbose=0).shape[0] == 2
