"""What the tests of the recurrent layers share (test_lru.py, test_rglru.py)."""

import keras
import numpy as np

from tests.conftest import BACKEND, input_grads, central_difference, to_numpy

MODES = ["sequential", "parallel", "chunked", "auto"]


def sequences(rng, length=12, width=4, batch=2):
    """Standard normal float32 inputs (batch, length, width)."""
    return rng.normal(size=(batch, length, width)).astype("float32")


def weights_below(layer):
    """The layer's weights as float64 arrays keyed by their path below it."""
    prefix = layer.path + "/"
    return {w.path[len(prefix):]: to_numpy(w).astype(np.float64) for w in layer.weights}


def randomise(layer, rng, scale=0.5, skip=()):
    """Random values for the weights whose name is not in `skip`; returns weights_below(layer)."""
    for w in layer.weights:
        if w.name not in skip:
            w.assign((rng.normal(size=w.shape) * scale).astype("float32"))
    return weights_below(layer)


def check_input_gradient(layer, reference, x, rng, entries=4):
    """d Σ r ⊗ layer(x) / dx at a few entries against central differences of `reference`."""
    r = rng.normal(size=x.shape)
    weights = keras.ops.convert_to_tensor(r.astype("float32"))
    grad = input_grads(lambda t: keras.ops.sum(layer(t) * weights), x)[0]
    flat = x.astype(np.float64).reshape(-1)
    for i in rng.choice(flat.size, entries, replace=False):
        def f(v, i=i):
            p = flat.copy()
            p[i] = v
            return (reference(p.reshape(x.shape)) * r).sum()

        np.testing.assert_allclose(grad.reshape(-1)[i], central_difference(f, flat[i]), rtol=2e-3, atol=2e-4)


def check_fit_step_modes_agree(make_layer, x, target, modes=("sequential", "parallel", "chunked")):
    """One SGD step of a one-layer model under XLA (jit_compile=True on JAX and
    TensorFlow; eager on torch): every mode gives the same predictions and
    updated weights, and the step moves the weights."""
    results, weights = [], None
    for mode in modes:
        inputs = keras.Input(x.shape[1:])
        model = keras.Model(inputs, make_layer(mode)(inputs))
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=BACKEND != "torch")
        model.fit(x, target, batch_size=x.shape[0], epochs=1, verbose=0)
        results.append((model.predict(x, verbose=0), model.get_weights()))
    for predictions, updated in results[1:]:
        np.testing.assert_allclose(predictions, results[0][0], rtol=1e-4, atol=1e-5)
        for a, b in zip(updated, results[0][1]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(weights, results[0][1]))


def ulp(x, dtype):
    """The spacing of `dtype` (float16: 10 mantissa bits, bfloat16: 7) at |x|."""
    bits, smallest = {"float16": (10, 2.0**-14), "bfloat16": (7, 2.0**-126)}[dtype]
    return 2.0 ** (np.floor(np.log2(np.maximum(np.abs(x), smallest))) - bits)


def check_mixed_policy(make_layer, x, reference, policy, rtol):
    """Under a mixed precision policy the layer runs on float32 inputs and on
    inputs of the policy's compute dtype, keeps float32 weights, and matches
    the float64 reference of the same weights to `rtol` of its largest value."""
    keras.config.set_dtype_policy(policy)
    layer = make_layer()
    layer.build(x.shape)
    expected = reference(layer)
    compute = policy.split("_")[1]
    assert {keras.backend.standardize_dtype(v.dtype) for v in layer.weights} == {"float32"}
    for inputs in (x, keras.ops.cast(x, compute)):
        y = layer(inputs)
        y = y[0] if isinstance(y, tuple) else y
        got = to_numpy(keras.ops.cast(y, "float32"))
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
