import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from glu_zoo import activations
from tests import reference as ref
from tests.conftest import BACKEND, central_difference, input_grads, to_numpy

RNG = np.random.default_rng(0)
X = np.concatenate([np.linspace(-12, 12, 97), RNG.normal(size=64) * 3]).astype("float32")
HALF = ["float16", "bfloat16"]


@pytest.mark.parametrize(
    "fn, reference",
    [
        (activations.gelu, ref.gelu),
        (lambda x: activations.gelu(x, approximate=True), ref.gelu_tanh),
        (activations.golu, ref.golu),
        (activations.atlu, ref.atlu),
    ],
    ids=["gelu", "gelu_tanh", "golu", "atlu"],
)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "tensor"])
def test_activation_matches_reference(fn, reference, as_tensor):
    x = keras.ops.convert_to_tensor(X) if as_tensor else X
    y = fn(x)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    np.testing.assert_allclose(to_numpy(y), reference(X.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_gelu_is_exact_by_default_unlike_keras_ops():
    x = np.array([1.5], "float32")
    exact, approx = ref.gelu(x.astype(np.float64)), ref.gelu_tanh(x.astype(np.float64))
    assert abs(exact - approx)[0] > 1e-5  # the two forms are distinguishable here
    np.testing.assert_allclose(to_numpy(activations.gelu(x)), exact, rtol=1e-6)


def test_integer_input_is_computed_in_floatx():
    y = activations.golu(np.array([0, 1, 2]))
    assert keras.backend.standardize_dtype(y.dtype) == keras.config.floatx()
    np.testing.assert_allclose(to_numpy(y), ref.golu(np.array([0.0, 1.0, 2.0])), rtol=1e-6)


@pytest.mark.parametrize("kind", activations.GATE_KINDS)
@pytest.mark.parametrize("alpha", [0.0, 0.3, -0.2])
def test_expanded_gate_matches_reference(kind, alpha):
    y = activations.expanded_gate(X, alpha, kind)
    np.testing.assert_allclose(
        to_numpy(y), ref.expanded_gate(X.astype(np.float64), alpha, kind), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("kind", activations.GATE_KINDS)
def test_expanded_gate_range_is_minus_alpha_to_one_plus_alpha(kind):
    y = to_numpy(activations.expanded_gate(np.array([-1e6, 1e6], "float32"), 0.25, kind))
    np.testing.assert_allclose(y, [-0.25, 1.25], atol=1e-5)


def test_golu_slope_at_zero_is_one_over_e():
    (g,) = input_grads(lambda x: keras.ops.sum(activations.golu(x)), np.zeros(1, "float32"))
    np.testing.assert_allclose(g, [1.0 / math.e], rtol=1e-6)


def test_golu_gradient_matches_finite_differences():
    x = np.linspace(-20, 20, 161).astype("float32")
    (g,) = input_grads(lambda t: keras.ops.sum(activations.golu(t)), x)
    fd = central_difference(ref.golu, x)
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", *HALF])
def test_golu_is_finite_with_finite_gradient_everywhere(dtype):
    x = np.concatenate([np.linspace(-1e4, 1e4, 2001), np.linspace(-100, 100, 2001)])
    x = keras.ops.cast(x, dtype)
    y = activations.golu(x)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    assert np.all(np.isfinite(to_numpy(keras.ops.cast(y, "float32"))))
    (g,) = input_grads(lambda t: keras.ops.sum(keras.ops.cast(activations.golu(t), "float32")),
                       to_numpy(keras.ops.cast(x, "float32")).astype(dtype if dtype != "bfloat16" else "float32"))
    assert np.all(np.isfinite(g))
    # Far from 0 the derivative is 0 (x ≪ 0) or 1 (x ≫ 0).
    np.testing.assert_allclose(g[[0, 2000]], [0.0, 1.0], atol=1e-3)


@pytest.mark.parametrize("dtype", HALF)
def test_golu_half_precision_is_computed_in_float32(dtype):
    x = np.linspace(-6, 6, 49).astype("float32")
    y = to_numpy(keras.ops.cast(activations.golu(keras.ops.cast(x, dtype)), "float32"))
    x_rounded = to_numpy(keras.ops.cast(keras.ops.cast(x, dtype), "float32")).astype(np.float64)
    expected = to_numpy(keras.ops.cast(keras.ops.cast(ref.golu(x_rounded).astype("float32"), dtype), "float32"))
    # One rounding, from float32 to the half type (denormals may flush to 0).
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-37)


@pytest.mark.parametrize("kind", activations.GATE_KINDS)
def test_expanded_gate_alpha_gradient_matches_finite_differences(kind):
    x = np.linspace(-2, 5, 33).astype("float32")  # asymmetric: ∂/∂α = Σ(2g(x) − 1) ≠ 0
    alpha = np.array(0.2, "float32")
    gx, ga = input_grads(lambda t, a: keras.ops.sum(activations.expanded_gate(t, a, kind)), x, alpha)
    fd_alpha = central_difference(lambda a: ref.expanded_gate(x.astype(np.float64), a, kind).sum(), 0.2)
    fd_x = central_difference(lambda t: ref.expanded_gate(t, 0.2, kind), x)
    np.testing.assert_allclose(ga, fd_alpha, rtol=1e-4)
    np.testing.assert_allclose(gx, fd_x, rtol=1e-3, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                  elements=st.floats(-50, 50, width=32)))
def test_activations_match_reference_on_arbitrary_arrays(x):
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(to_numpy(activations.golu(x)), ref.golu(x64), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(activations.atlu(x)), ref.atlu(x64), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(activations.expanded_gate(x, 0.1, "gaussian")),
                               ref.expanded_gate(x64, 0.1, "gaussian"), rtol=1e-5, atol=1e-6)


def test_unknown_gate_kind_lists_allowed_kinds():
    with pytest.raises(ValueError, match=r"'tanh'.*arctan, gaussian, sigmoid"):
        activations.expanded_gate(X, 0.0, "tanh")


def test_non_scalar_alpha_is_rejected():
    with pytest.raises(ValueError, match=r"`alpha` must be a scalar; got shape \(2,\)"):
        activations.expanded_gate(X, np.zeros(2, "float32"), "sigmoid")


def test_gelu_rejects_non_bool_approximate():
    with pytest.raises(ValueError, match="approximate"):
        activations.gelu(X, approximate="tanh")


@pytest.mark.skipif(BACKEND != "torch", reason="the fused GoLU kernel is torch-only")
def test_fused_torch_golu_agrees_with_the_keras_ops_form(monkeypatch):
    x = np.concatenate([np.linspace(-1e4, 1e4, 101), np.linspace(-30, 30, 241)]).astype("float32")

    def value_and_grad():
        y = to_numpy(activations.golu(x))
        (g,) = input_grads(lambda t: keras.ops.sum(activations.golu(t)), x)
        return y, g

    fused = value_and_grad()
    assert "apply" in activations._TORCH_GOLU and not activations._TORCH_GOLU.get("failed")
    monkeypatch.setenv("GLU_ZOO_FUSED_TORCH", "0")
    assert activations._torch_golu() is None
    plain = value_and_grad()
    # The compiled kernel's vectorised exp differs by an ulp or so; exp(−e^{−x})
    # multiplies the inner relative error by e^{−x} (≈ 50 at x = −4).
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-30)
