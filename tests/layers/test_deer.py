"""ParallelGRU (DEER, quasi-DEER, sequential) against a NumPy GRU and
keras.layers.GRU with the same weights, on every backend."""

import os
import tempfile
import warnings

import keras
import numpy as np
import pytest

from glu_zoo.layers import ParallelGRU
from tests import reference
from tests.conftest import BACKEND, input_grads, to_numpy, weight_grads

METHODS = ["deer", "quasi_deer", "sequential"]


def _pair(rng, units=6, features=3, length=20, batch=2, scale=0.5, **kwargs):
    """A keras GRU with random weights, and a ParallelGRU given its weights."""
    gru = keras.layers.GRU(units, return_sequences=True)
    gru.build((batch, length, features))
    for w in gru.weights:
        w.assign((rng.normal(size=w.shape) * scale).astype("float32"))
    layer = ParallelGRU(units, return_sequences=True, **kwargs)
    layer.build((batch, length, features))
    layer.set_weights(gru.get_weights())
    return gru, layer


def _weights(layer):
    return [to_numpy(w).astype(np.float64) for w in layer.weights]


def _mask(batch, length):
    mask = np.ones((batch, length), bool)
    mask[0, 3:7] = False
    mask[-1, -4:] = False
    return mask


@pytest.mark.parametrize("method", METHODS)
def test_matches_numpy_and_keras_gru(method):
    rng = np.random.default_rng(0)
    gru, layer = _pair(rng, method=method)
    x = rng.normal(size=(2, 20, 3)).astype("float32")
    h0 = rng.normal(size=(2, 6)).astype("float32")
    mask = _mask(2, 20)
    expected = reference.gru(x, *_weights(layer), h0=h0, mask=mask)
    np.testing.assert_allclose(to_numpy(layer(x, initial_state=h0, mask=mask)), expected, atol=1e-5)
    np.testing.assert_allclose(to_numpy(layer(x)), to_numpy(gru(x)), atol=1e-5)
    if method != "sequential":
        assert layer.last_converged is True and 1 <= layer.last_iterations <= 21


def test_weight_layout_is_keras_gru():
    rng = np.random.default_rng(1)
    gru, layer = _pair(rng, units=5, features=4)
    assert [w.name for w in layer.weights] == [w.name for w in gru.weights] == ["kernel", "recurrent_kernel", "bias"]
    assert [tuple(w.shape) for w in layer.weights] == [(4, 15), (5, 15), (2, 15)]


@pytest.mark.parametrize("method", ["deer", "quasi_deer"])
def test_long_sequence_within_1e_4(method):
    # T = 16,000 steps: the Newton solution equals the step-by-step float64 GRU.
    rng = np.random.default_rng(2)
    _, layer = _pair(rng, units=4, features=2, length=16000, batch=1, method=method)
    x = rng.normal(size=(1, 16000, 2)).astype("float32")
    y = to_numpy(layer(x))
    np.testing.assert_allclose(y, reference.gru(x, *_weights(layer)), atol=1e-4)
    assert layer.last_converged
    if method == "deer":  # Newton with the exact Jacobian: a few iterations (4 measured), not T
        assert layer.last_iterations <= 8


def test_long_sequence_gradients_agree():
    # T = 16,000: the adjoints of DEER (dense scan) and quasi-DEER (diagonal
    # iterations) against the step-by-step adjoint, which matches Keras's GRU above.
    rng = np.random.default_rng(11)
    x = rng.normal(size=(1, 16000, 2)).astype("float32")
    r = keras.ops.convert_to_tensor(rng.normal(size=(1, 16000, 4)).astype("float32"))
    grads = {}
    gru, _ = _pair(rng, units=4, features=2, length=16000, batch=1)
    for method in METHODS:
        layer = ParallelGRU(4, method=method, return_sequences=True)
        layer.build(x.shape)
        layer.set_weights(gru.get_weights())

        class Weighted(keras.layers.Layer):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def call(self, t):
                return self.inner(t) * r

        wrapped = Weighted(layer)
        wrapped(x)
        grads[method] = weight_grads(wrapped, x)
    for method in ("deer", "quasi_deer"):
        for key, expected in grads["sequential"].items():
            err = np.abs(grads[method][key] - expected).max() / np.abs(expected).max()
            assert err < 1e-3, (method, key, err)


@pytest.mark.parametrize("method", METHODS)
def test_gradients_match_keras_gru(method):
    # Implicit differentiation at the solution against autodiff through Keras's GRU.
    rng = np.random.default_rng(3)
    gru, layer = _pair(rng, method=method)
    x = rng.normal(size=(2, 20, 3)).astype("float32")
    mask = _mask(2, 20)
    r = keras.ops.convert_to_tensor(rng.normal(size=(2, 20, 6)).astype("float32"))

    class Weighted(keras.layers.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def call(self, t):
            return self.inner(t, mask=mask) * r

    grads = {}
    for name, inner in (("keras", gru), ("ours", layer)):
        wrapped = Weighted(inner)
        wrapped(x)
        grads[name] = weight_grads(wrapped, x)
        grads[name]["inputs"] = input_grads(lambda t: keras.ops.sum(inner(t, mask=mask) * r), x)[0]
    for key, expected in grads["keras"].items():
        err = np.abs(grads["ours"][key] - expected).max() / np.abs(expected).max()
        assert err < 1e-3, (key, err)


def test_initial_state_gradient_matches_numpy():
    rng = np.random.default_rng(4)
    _, layer = _pair(rng, method="deer")
    x = rng.normal(size=(2, 10, 3)).astype("float32")
    h0 = rng.normal(size=(2, 6)).astype("float32")
    r = rng.normal(size=(2, 10, 6))
    weights = keras.ops.convert_to_tensor(r.astype("float32"))
    grad = input_grads(lambda s: keras.ops.sum(layer(keras.ops.convert_to_tensor(x), initial_state=s) * weights),
                       h0)[0]
    w = _weights(layer)
    eps = 1e-6
    for i, j in [(0, 0), (1, 3), (0, 5)]:
        up, down = h0.astype(np.float64).copy(), h0.astype(np.float64).copy()
        up[i, j] += eps
        down[i, j] -= eps
        numeric = ((reference.gru(x, *w, h0=up) - reference.gru(x, *w, h0=down)) * r).sum() / (2 * eps)
        assert abs(grad[i, j] - numeric) < 1e-3 * max(1.0, abs(numeric))


def test_chunks_carrying_the_state_equal_one_run():
    rng = np.random.default_rng(5)
    _, layer = _pair(rng, method="deer")
    layer.return_state = True
    x = rng.normal(size=(2, 20, 3)).astype("float32")
    whole, last = layer(x)
    first, state = layer(x[:, :12])
    second, state = layer(x[:, 12:], initial_state=state)
    np.testing.assert_allclose(np.concatenate([to_numpy(first), to_numpy(second)], 1), to_numpy(whole), atol=1e-5)
    np.testing.assert_allclose(to_numpy(state), to_numpy(last), atol=1e-5)


def test_last_output_and_keras_list_state():
    rng = np.random.default_rng(6)
    gru, layer = _pair(rng, method="quasi_deer")
    layer.return_sequences = False
    x = rng.normal(size=(2, 20, 3)).astype("float32")
    h0 = rng.normal(size=(2, 6)).astype("float32")
    mask = _mask(2, 20)
    expected = to_numpy(gru(x, initial_state=[h0], mask=mask))[:, -1]
    np.testing.assert_allclose(to_numpy(layer(x, initial_state=[h0], mask=mask)), expected, atol=1e-5)


def test_unconverged_solve_falls_back_with_a_warning():
    rng = np.random.default_rng(7)
    _, layer = _pair(rng, method="quasi_deer", max_iter=1)
    x = rng.normal(size=(2, 20, 3)).astype("float32")
    with pytest.warns(RuntimeWarning, match="did not converge"):
        y = to_numpy(layer(x))
    assert layer.last_converged is False and layer.last_iterations == 1
    np.testing.assert_allclose(y, reference.gru(x, *_weights(layer)), atol=1e-5)


def test_auto_is_sequential_on_cpu():
    layer = ParallelGRU(4, method="auto")
    assert layer.resolved_method(1000) == "sequential"


def test_fit_and_keras_round_trip():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(8, 12, 3)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    model = keras.Sequential([keras.Input((12, 3)), ParallelGRU(5, method="deer", tol=(1e-6, 1e-5)),
                              keras.layers.Dense(1)])
    model.compile("adam", "mse", jit_compile=BACKEND != "torch")
    history = model.fit(x, y, epochs=4, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    if BACKEND != "tensorflow":  # inside a TensorFlow graph the count is not recorded (documented)
        assert model.layers[0].last_iterations >= 1
    path = os.path.join(tempfile.mkdtemp(), "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[0].get_config()["tol"] == [1e-6, 1e-5]
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "newton"}, "method"),
    ({"tol": 0.0}, "tol"),
    ({"tol": (1e-5, -1.0)}, "tol"),
    ({"max_iter": 0}, "max_iter"),
    ({"units": 0}, "units"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ParallelGRU(**{"units": 4, **kwargs})


def test_bad_inputs():
    rng = np.random.default_rng(9)
    _, layer = _pair(rng, features=3)
    x = rng.normal(size=(2, 20, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"\(batch, time, 3\)"):
        layer(x[..., :2])
    bad = x.copy()
    bad[1, 4, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        layer(bad)
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=np.zeros((2, 5), "float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(x)  # converges: no warning


@pytest.mark.skipif(BACKEND != "torch", reason="the plain-torch sequential GRU is torch's fast path")
def test_torch_fast_path_equals_keras_ops(monkeypatch):
    from glu_zoo.layers import deer

    rng = np.random.default_rng(10)
    _, layer = _pair(rng, method="sequential")
    x = rng.normal(size=(2, 20, 3)).astype("float32")
    mask = _mask(2, 20)
    fast = to_numpy(layer(x, mask=mask))
    monkeypatch.setattr(deer, "_TORCH_FAST_PATH", False)
    np.testing.assert_allclose(fast, to_numpy(layer(x, mask=mask)), atol=1e-6)


@pytest.mark.parametrize("method", ["deer", "quasi_deer"])
def test_eager_calls_at_several_lengths(method):
    # Each length compiles its own solve (a scan needs its length when traced);
    # above 50 steps the solves share their static arguments (max_iter 50).
    rng = np.random.default_rng(12)
    _, layer = _pair(rng, length=60, method=method)
    for length in (60, 90, 75):
        x = rng.normal(size=(2, length, 3)).astype("float32")
        np.testing.assert_allclose(to_numpy(layer(x)), reference.gru(x, *_weights(layer)), atol=1e-5)
