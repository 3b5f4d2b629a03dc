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

HALF = ["float16", "bfloat16"]
ARCTAN_MAX_ULP = 2.0  # the polynomial's bound, measured 1.6 (see `_arctan_polynomial`)


def grid(seed=0):
    """A fixed grid over [−12, 12] and a few normal samples, float32."""
    rng = np.random.default_rng(seed)
    return np.concatenate([np.linspace(-12, 12, 97), rng.normal(size=64) * 3]).astype("float32")


def xla(fn):
    """`fn` compiled by XLA where the backend has it (jax.jit;
    tf.function(jit_compile=True)); torch runs it as it is."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    return fn


def ulp_error(y, x):
    """|y − arctan(x)| in float32 ulps of the true value (NumPy, float64)."""
    exact = np.arctan(np.asarray(x, np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(np.asarray(y, np.float64) - exact) / ulp


def real_line(seed):
    """float32 values over the whole real line: a dense grid around the
    polynomial's range, both sides of the reduction at |x| = 1 ulp by ulp,
    a geometric sweep from 1e-38 to 3e38, and random bit patterns (every
    finite float32 equally likely by its bits)."""
    rng = np.random.default_rng(seed)
    near_one = (np.float32(1).view(np.int32) + np.arange(-2000, 2000, dtype=np.int32)).view(np.float32)
    bits = rng.integers(0, 2**32, size=400_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    sweep = np.geomspace(1e-38, 3e38, 200_001).astype(np.float32)
    x = np.concatenate([
        np.linspace(-4, 4, 400_001, dtype=np.float32), near_one, -near_one, sweep, -sweep,
        bits[np.isfinite(bits)],
    ])
    return x.astype(np.float32)


# --- reference values --------------------------------------------------------

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
    x = grid()
    y = fn(keras.ops.convert_to_tensor(x) if as_tensor else x)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    np.testing.assert_allclose(to_numpy(y), reference(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


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
    x = grid()
    y = activations.expanded_gate(x, alpha, kind)
    np.testing.assert_allclose(
        to_numpy(y), ref.expanded_gate(x.astype(np.float64), alpha, kind), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("kind", activations.GATE_KINDS)
@pytest.mark.parametrize("alpha", [0.0, 0.3, -0.2])
def test_expanded_activation_and_glu_match_reference(kind, alpha):
    a, b = grid(1), grid(2)[::-1].copy()
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    y = activations.expanded_activation(a, alpha, kind)
    np.testing.assert_allclose(to_numpy(y), ref.expanded_activation(a64, alpha, kind), rtol=1e-5, atol=1e-5)
    y = activations.expanded_glu(a, b, alpha, kind)
    np.testing.assert_allclose(to_numpy(y), ref.expanded_glu(a64, b64, alpha, kind), rtol=1e-5, atol=1e-5)


def test_atlu_is_expanded_arctan_activation_at_zero_alpha():
    x = grid(3)
    np.testing.assert_allclose(to_numpy(activations.atlu(x)),
                               to_numpy(activations.expanded_activation(x, 0.0, "arctan")), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", activations.GATE_KINDS)
def test_expanded_gate_range_is_minus_alpha_to_one_plus_alpha(kind):
    y = to_numpy(activations.expanded_gate(np.array([-1e6, 1e6], "float32"), 0.25, kind))
    np.testing.assert_allclose(y, [-0.25, 1.25], atol=1e-5)


# --- gradients ---------------------------------------------------------------

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


@pytest.mark.parametrize("kind", activations.GATE_KINDS)
def test_expanded_gate_alpha_gradient_matches_finite_differences(kind):
    x = np.linspace(-2, 5, 33).astype("float32")  # asymmetric: ∂/∂α = Σ(2g(x) − 1) ≠ 0
    alpha = np.array(0.2, "float32")
    gx, ga = input_grads(lambda t, a: keras.ops.sum(activations.expanded_gate(t, a, kind)), x, alpha)
    fd_alpha = central_difference(lambda a: ref.expanded_gate(x.astype(np.float64), a, kind).sum(), 0.2)
    fd_x = central_difference(lambda t: ref.expanded_gate(t, 0.2, kind), x)
    np.testing.assert_allclose(ga, fd_alpha, rtol=1e-4)
    np.testing.assert_allclose(gx, fd_x, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("kind", activations.GATE_KINDS)
def test_expanded_activation_gradients_match_finite_differences(kind):
    x = np.linspace(-6, 9, 61).astype("float32")
    x64 = x.astype(np.float64)
    upstream = np.random.default_rng(4).normal(size=x.shape)
    gx, ga = input_grads(
        lambda t, a: keras.ops.sum(keras.ops.multiply(activations.expanded_activation(t, a, kind), upstream.astype("float32"))),
        x, np.array(-0.15, "float32"))
    fd_x = central_difference(lambda t: ref.expanded_activation(t, -0.15, kind), x64) * upstream
    fd_alpha = central_difference(lambda a: (ref.expanded_activation(x64, a, kind) * upstream).sum(), -0.15)
    np.testing.assert_allclose(gx, fd_x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ga, fd_alpha, rtol=1e-4)


@pytest.mark.parametrize("kind", activations.GATE_KINDS)
def test_expanded_glu_gradients_match_finite_differences(kind):
    rng = np.random.default_rng(5)
    a = np.linspace(-6, 9, 61).astype("float32")
    b = rng.normal(size=a.shape).astype("float32")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ga, gb, galpha = input_grads(lambda s, t, al: keras.ops.sum(activations.expanded_glu(s, t, al, kind)),
                                 a, b, np.array(0.4, "float32"))
    np.testing.assert_allclose(ga, central_difference(lambda s: ref.expanded_glu(s, b64, 0.4, kind), a64),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gb, ref.expanded_gate(a64, 0.4, kind), rtol=1e-5, atol=1e-6)
    fd_alpha = central_difference(lambda al: ref.expanded_glu(a64, b64, al, kind).sum(), 0.4)
    np.testing.assert_allclose(galpha, fd_alpha, rtol=1e-4)


# --- half precision ----------------------------------------------------------

@pytest.mark.parametrize("dtype", HALF)
def test_golu_half_precision_is_computed_in_float32(dtype):
    x = np.linspace(-6, 6, 49).astype("float32")
    y = to_numpy(keras.ops.cast(activations.golu(keras.ops.cast(x, dtype)), "float32"))
    x_rounded = to_numpy(keras.ops.cast(keras.ops.cast(x, dtype), "float32")).astype(np.float64)
    expected = to_numpy(keras.ops.cast(keras.ops.cast(ref.golu(x_rounded).astype("float32"), dtype), "float32"))
    # One rounding, from float32 to the half type (denormals may flush to 0).
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-37)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("kind", activations.GATE_KINDS)
def test_expanded_units_in_half_precision_are_computed_in_float32(dtype, kind):
    """The half result is the float32 result of the half inputs, rounded once:
    in half arithmetic a few hundred of these values differ by an ulp or more."""
    rng = np.random.default_rng(6)
    a32 = rng.normal(size=2000).astype("float32") * 4
    b32 = rng.normal(size=2000).astype("float32")
    a, b = keras.ops.cast(a32, dtype), keras.ops.cast(b32, dtype)
    a_rounded, b_rounded = keras.ops.cast(a, "float32"), keras.ops.cast(b, "float32")
    for half, single in [
        (activations.expanded_activation(a, 0.3, kind), activations.expanded_activation(a_rounded, 0.3, kind)),
        (activations.expanded_glu(a, b, 0.3, kind), activations.expanded_glu(a_rounded, b_rounded, 0.3, kind)),
    ]:
        assert keras.backend.standardize_dtype(half.dtype) == dtype
        np.testing.assert_array_equal(to_numpy(keras.ops.cast(half, "float32")),
                                      to_numpy(keras.ops.cast(keras.ops.cast(single, dtype), "float32")))


# --- the float32 arctan (XLA fast path) ----------------------------------------

@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_arctan_polynomial_is_within_2_ulp_on_the_whole_real_line(compiled):
    x = real_line(7)
    fn = xla(activations._arctan_polynomial) if compiled else activations._arctan_polynomial
    y = to_numpy(fn(keras.ops.convert_to_tensor(x)))
    errors = ulp_error(y, x)
    worst = int(np.argmax(errors))
    assert errors[worst] <= ARCTAN_MAX_ULP, f"{errors[worst]:.2f} ulp at x = {x[worst]!r}"
    assert errors.mean() < 0.5  # most values correctly rounded


def test_arctan_polynomial_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3.4028235e38, -3.4028235e38, 1e-45, -1e-45,
                  1.0, -1.0, 1e-20], "float32")
    y = to_numpy(activations._arctan_polynomial(keras.ops.convert_to_tensor(x)))
    half_pi, quarter_pi = np.float32(math.pi / 2), np.float32(math.pi / 4)
    expected = np.array([0.0, -0.0, half_pi, -half_pi, np.nan, half_pi, -half_pi,
                         1e-45, -1e-45, quarter_pi, -quarter_pi, 1e-20], "float32")
    np.testing.assert_array_equal(y, expected)
    assert list(np.signbit(y[:2])) == [False, True]  # arctan(−0) = −0


def test_arctan_gradient_is_one_over_one_plus_x_squared():
    x = np.concatenate([np.linspace(-10, 10, 201), [0.0, 1e-30, 1e10, -1e20, 3e38]]).astype("float32")
    x64 = x.astype(np.float64)
    (g,) = input_grads(lambda t: keras.ops.sum(activations._arctan_xla(t)), x)
    # atol: a float32 denormal (1/(1 + 1e40)) may flush to 0 (XLA does).
    np.testing.assert_allclose(g, ref.arctan_derivative(x64), rtol=2e-7, atol=1.2e-38)
    moderate = np.abs(x64) < 100
    np.testing.assert_allclose(g[moderate], central_difference(np.arctan, x64[moderate]), rtol=1e-6, atol=1e-9)
    (g,) = input_grads(lambda t: keras.ops.sum(activations._arctan(t)), x)  # the dispatcher's choice
    np.testing.assert_allclose(g, ref.arctan_derivative(x64), rtol=1e-6, atol=1.2e-38)


def test_arctan_fast_path_agrees_with_keras_ops():
    """`_arctan` (the polynomial under XLA) against `keras.ops.arctan`, the
    fallback, in the same compiled context. XLA's own atan is the less
    accurate of the two (5.3 ulp near x = 1e-3 on CPU), so they agree within
    6 ulp, and the fast path is within 2 ulp of the exact value."""
    x = real_line(8)
    fast = to_numpy(xla(activations._arctan)(keras.ops.convert_to_tensor(x)))
    plain = to_numpy(xla(keras.ops.arctan)(keras.ops.convert_to_tensor(x)))
    exact_ulp = np.spacing(np.abs(np.arctan(x.astype(np.float64))).astype(np.float32)).astype(np.float64)
    difference = np.abs(fast.astype(np.float64) - plain) / exact_ulp
    assert difference.max() <= 6.0, f"{difference.max():.2f} ulp at x = {x[np.argmax(difference)]!r}"
    assert ulp_error(fast, x).max() <= ARCTAN_MAX_ULP
    assert np.array_equal(np.isnan(fast), np.isnan(plain))


def test_xla_detection():
    if BACKEND == "jax":
        assert activations._in_xla() is True
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        seen = []

        def probe():
            seen.append(bool(activations._in_xla()))
            return tf.constant(0.0)

        tf.function(probe, jit_compile=True)()
        tf.function(probe)()
        assert seen == [True, False]
        assert activations._in_xla() is False
    else:
        assert activations._in_xla() is False


@pytest.mark.skipif(BACKEND == "torch", reason="no XLA on torch")
def test_compiled_train_step_takes_the_polynomial(monkeypatch):
    """An FFN xATLU trained with jit_compile=True (as glu_zoo.training does on
    JAX and TensorFlow) runs the polynomial arctan on the CPU; eager
    TensorFlow runs tf.math.atan."""
    from glu_zoo.layers import FFN

    calls = []
    polynomial = activations._arctan_polynomial
    monkeypatch.setattr(activations, "_arctan_polynomial", lambda x: calls.append(1) or polynomial(x))
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(4, 6, 8)).astype("float32"), rng.normal(size=(4, 6, 8)).astype("float32")
    model = keras.Sequential([keras.Input((6, 8)), FFN(16, activation="xatlu")])
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    model.train_on_batch(x, y)
    assert bool(calls) == activations._on_cpu()  # accelerators: XLA's own atan, not measured
    if BACKEND == "tensorflow":
        calls.clear()
        model(x)
        assert not calls


# --- fused torch kernels -----------------------------------------------------

def _values_and_grads(kind, x, b, alpha):
    """Outputs and every input gradient (alpha included) of one unit."""
    upstream = np.random.default_rng(10).normal(size=x.shape).astype("float32")

    def unit(*args):
        if kind == "golu":
            return activations.golu(args[0])
        if kind == "atlu":
            return activations.atlu(args[0])
        if kind == "xatlu":
            return activations.expanded_activation(args[0], args[-1], "arctan")
        return activations.expanded_glu(args[0], args[1], args[-1], "arctan")

    args = {"golu": (x,), "atlu": (x,), "xatlu": (x, alpha), "xatglu": (x, b, alpha)}[kind]
    y = to_numpy(keras.ops.cast(unit(*args), "float32"))
    grads = input_grads(lambda *t: keras.ops.sum(keras.ops.multiply(keras.ops.cast(unit(*t), "float32"), upstream)), *args)
    return [y, *grads]


@pytest.mark.skipif(BACKEND != "torch", reason="the fused kernels are torch-only")
@pytest.mark.parametrize("kind", ["golu", "atlu", "xatlu", "xatglu"])
def test_fused_torch_kernel_agrees_with_the_keras_ops_form(kind, monkeypatch):
    rng = np.random.default_rng(11)
    x = np.concatenate([np.linspace(-1e4, 1e4, 101), np.linspace(-30, 30, 241),
                        rng.normal(size=200) * 3]).astype("float32")
    b = rng.normal(size=x.shape).astype("float32")
    alpha = np.array(0.35, "float32")
    fused = _values_and_grads(kind, x, b, alpha)
    name = "golu" if kind == "golu" else ("xatglu" if kind == "xatglu" else "xatlu")
    assert name in activations._TORCH
    assert not any(failed.startswith(name) for failed in activations._TORCH_FAILED)
    monkeypatch.setenv("GLU_ZOO_FUSED_TORCH", "0")
    assert activations._fused_torch(name, None) is None
    plain = _values_and_grads(kind, x, b, alpha)
    assert len(fused) == len(plain) == {"golu": 2, "atlu": 2, "xatlu": 3, "xatglu": 4}[kind]
    # The compiled kernels' vectorised exp and atan differ by an ulp or so;
    # exp(−e^{−x}) multiplies the inner relative error by e^{−x} (≈ 50 at x = −4);
    # the α gradient sums ~500 terms. For the arctan units, ½ + arctan(x)/π
    # cancels at large −x: both forms carry an absolute error of ~ulp(½).
    atol = 1e-30 if kind == "golu" else 4e-7
    for a, p in zip(fused, plain):
        np.testing.assert_allclose(a, p, rtol=2e-5, atol=atol)


@pytest.mark.skipif(BACKEND != "torch", reason="the fused kernels are torch-only")
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("kind", ["golu", "atlu", "xatlu", "xatglu"])
def test_fused_torch_kernel_in_half_precision(kind, dtype, monkeypatch):
    """Half inputs: fused (float32 inside) against the keras.ops form (float32
    inside as well): the same value to the half type's rounding, and gradients
    in the half type's dtype within its resolution."""
    import torch

    rng = np.random.default_rng(12)
    x = torch.tensor(rng.normal(size=500).astype("float32") * 4).to(getattr(torch, dtype))
    b = torch.tensor(rng.normal(size=500).astype("float32")).to(getattr(torch, dtype))

    def run():
        xs, bs = x.clone().requires_grad_(), b.clone().requires_grad_()
        alpha = torch.tensor(0.2, requires_grad=True)
        y = {"golu": lambda: activations.golu(xs), "atlu": lambda: activations.atlu(xs),
             "xatlu": lambda: activations.expanded_activation(xs, alpha, "arctan"),
             "xatglu": lambda: activations.expanded_glu(xs, bs, alpha, "arctan")}[kind]()
        assert y.dtype == x.dtype
        y.float().sum().backward()
        grads = [xs.grad] + ([bs.grad] if kind == "xatglu" else []) + ([alpha.grad] if kind.startswith("xat") else [])
        assert xs.grad.dtype == x.dtype
        return [y.detach().float().numpy()] + [g.float().numpy() for g in grads]

    fused = run()
    monkeypatch.setenv("GLU_ZOO_FUSED_TORCH", "0")
    plain = run()
    eps = {"float16": 2**-10, "bfloat16": 2**-7}[dtype]
    for a, p in zip(fused, plain):
        np.testing.assert_allclose(a, p, rtol=eps, atol=1e-6)


@pytest.mark.skipif(BACKEND != "torch", reason="the fused kernels are torch-only")
def test_fused_torch_kernel_skips_the_alpha_reduction_without_alpha_gradient():
    import torch

    x = torch.linspace(-3, 3, 13, requires_grad=True)
    alpha = torch.tensor(0.1)  # a constant: no gradient wanted
    activations.expanded_activation(x, alpha, "arctan").sum().backward()
    x64 = np.linspace(-3, 3, 13)
    expected = central_difference(lambda t: ref.expanded_activation(t, 0.1, "arctan"), x64)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert alpha.grad is None


# --- arbitrary arrays and argument checks ------------------------------------

@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                  elements=st.floats(-50, 50, width=32)))
def test_activations_match_reference_on_arbitrary_arrays(x):
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(to_numpy(activations.golu(x)), ref.golu(x64), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(activations.atlu(x)), ref.atlu(x64), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(activations.expanded_gate(x, 0.1, "gaussian")),
                               ref.expanded_gate(x64, 0.1, "gaussian"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(activations.expanded_activation(x, -0.3, "arctan")),
                               ref.expanded_activation(x64, -0.3, "arctan"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn", ["expanded_gate", "expanded_activation"])
def test_unknown_gate_kind_lists_allowed_kinds(fn):
    with pytest.raises(ValueError, match=rf"{fn}: unknown `kind` 'tanh'.*arctan, gaussian, sigmoid"):
        getattr(activations, fn)(grid(), 0.0, "tanh")


def test_unknown_gate_kind_of_expanded_glu():
    with pytest.raises(ValueError, match=r"expanded_glu: unknown `kind` 'tanh'.*arctan, gaussian, sigmoid"):
        activations.expanded_glu(grid(), grid(), 0.0, "tanh")


@pytest.mark.parametrize("fn", ["expanded_gate", "expanded_activation"])
def test_non_scalar_alpha_is_rejected(fn):
    with pytest.raises(ValueError, match=rf"{fn}: `alpha` must be a scalar; got shape \(2,\)"):
        getattr(activations, fn)(grid(), np.zeros(2, "float32"), "sigmoid")


def test_gelu_rejects_non_bool_approximate():
    with pytest.raises(ValueError, match="approximate"):
        activations.gelu(grid(), approximate="tanh")
