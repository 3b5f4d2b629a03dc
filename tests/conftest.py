"""Shared test helpers: NumPy references live in the test files; these are the
backend-specific bits that Keras has no public API for (gradients)."""

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _seed_and_policy():
    keras.utils.set_random_seed(0)
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def input_grads(fn, *args):
    """Gradients of the scalar `fn(*args)` with respect to each NumPy `arg`."""
    if BACKEND == "jax":
        import jax

        grads = jax.grad(fn, argnums=tuple(range(len(args))))(*map(jax.numpy.asarray, args))
        return [np.asarray(g) for g in grads]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        ts = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(ts)
            y = fn(*ts)
        return [g.numpy() for g in tape.gradient(y, ts)]
    import torch

    ts = [torch.tensor(a, requires_grad=True) for a in args]
    fn(*ts).backward()
    return [t.grad.float().numpy() if t.grad.dtype == torch.bfloat16 else t.grad.numpy() for t in ts]


def weight_grads(layer, x):
    """Gradients of sum(layer(x)) with respect to the layer's trainable weights,
    as a dict keyed by the weight's name."""
    variables = layer.trainable_variables
    names = [v.name for v in variables]
    if BACKEND == "jax":
        import jax

        nontrainable = [v.value for v in layer.non_trainable_variables]

        def loss(values):
            y, _ = layer.stateless_call(values, nontrainable, x)
            return jax.numpy.sum(y)

        grads = jax.grad(loss)([v.value for v in variables])
        return {n: np.asarray(g) for n, g in zip(names, grads)}
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y = keras.ops.sum(layer(x))
        return {n: g.numpy() for n, g in zip(names, tape.gradient(y, variables))}
    for v in variables:
        v.value.grad = None
    keras.ops.sum(layer(x)).backward()
    return {n: v.value.grad.numpy() for n, v in zip(names, variables)}


def central_difference(f, x, eps=1e-6):
    """Element-wise derivative of a NumPy function by central differences (float64)."""
    x = np.asarray(x, np.float64)
    return (f(x + eps) - f(x - eps)) / (2 * eps)
