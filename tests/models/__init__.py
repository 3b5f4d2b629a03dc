"""Checks that every zoo model passes: a fit step, `.keras` round trip, config round trip."""

import json

import keras
import numpy as np

from tests.conftest import BACKEND, to_numpy


def randomise(model, rng, scale=0.5):
    """Give every weight a random value (biases, norms and tokens included)."""
    for w in model.weights:
        w.assign((rng.normal(size=w.shape) * scale).astype("float32"))


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
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6)


def check_config_round_trip(model, x):
    config = json.loads(json.dumps(model.get_config()))  # as a preset stores it
    clone = type(model).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(to_numpy(clone(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6)


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
