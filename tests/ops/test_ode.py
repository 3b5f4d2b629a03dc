"""glu_zoo.ops.ode: Euler and Dormand–Prince 5(4) against closed-form solutions
and against scipy's solve_ivp(method="RK45"), eagerly and compiled."""

import math

import keras
import numpy as np
import pytest
from keras import ops
from scipy.integrate import solve_ivp

from glu_zoo.ops.ode import compile_function, dopri5, euler
from tests.conftest import to_numpy


def _has_float64():
    return keras.backend.standardize_dtype(ops.convert_to_tensor(np.zeros(1)).dtype) == "float64"


# (name, f for keras, f for NumPy/scipy, exact solution x(t) for x0, t1)
def _decay(x, t):
    return -1.5 * x


def _oscillator(x, t):  # x = (position, velocity) on the last axis
    return ops.stack([x[..., 1], -x[..., 0]], axis=-1)


def _oscillator_np(t, x):
    x = x.reshape(-1, 2)
    return np.stack([x[:, 1], -x[:, 0]], axis=-1).ravel()


def _time_dependent(x, t):
    return -x * ops.cos(t)


PROBLEMS = {
    # x' = −1.5x: x0·e^(−1.5t)
    "decay": (_decay, lambda t, x: -1.5 * x, lambda x0, t: x0 * np.exp(-1.5 * t), 2.0),
    # x'' = −x: rotation of (x, v) by angle t
    "oscillator": (_oscillator, _oscillator_np,
                   lambda x0, t: np.stack([x0[..., 0] * np.cos(t) + x0[..., 1] * np.sin(t),
                                           -x0[..., 0] * np.sin(t) + x0[..., 1] * np.cos(t)], axis=-1), 10.0),
    # x' = −x·cos t: x0·e^(−sin t)
    "time_dependent": (_time_dependent, lambda t, x: -x * np.cos(t), lambda x0, t: x0 * np.exp(-np.sin(t)), 4.0),
}


def _x0(rng, name):
    return rng.normal(size=(3, 2)).astype("float32") + (0.0 if name == "oscillator" else 1.0)


@pytest.mark.parametrize("name", list(PROBLEMS))
@pytest.mark.parametrize("tol", [1e-3, 1e-5])
def test_dopri5_meets_the_tolerance_on_closed_form_problems(name, tol):
    rng = np.random.default_rng(0)
    f, _, exact, t1 = PROBLEMS[name]
    x0 = _x0(rng, name)
    x1, nfe = dopri5(f, x0, 0.0, t1, rtol=tol, atol=tol)
    expected = exact(x0.astype(np.float64), t1)
    error = np.abs(to_numpy(x1) - expected)
    # A global error of a few local tolerances (float32 rounding adds ~1e-6).
    assert np.all(error <= 10 * (tol + tol * np.abs(expected)) + 1e-5), (error.max(), int(nfe))
    assert 8 <= int(nfe) < 2000


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_dopri5_takes_scipys_steps(name):
    """The same method, step control and first step as scipy's RK45: in float64
    (TensorFlow, torch) the same function evaluations and the same solution; in
    float32 (JAX without x64) the same count give or take a few steps."""
    rng = np.random.default_rng(1)
    f, f_np, _, t1 = PROBLEMS[name]
    x0 = _x0(rng, name).astype(np.float64)
    reference = solve_ivp(f_np, (0.0, t1), x0.ravel(), method="RK45", rtol=1e-6, atol=1e-8)
    assert reference.success
    x1, nfe = dopri5(f, x0, 0.0, t1, rtol=1e-6, atol=1e-8)
    if _has_float64():
        assert int(nfe) == reference.nfev
        np.testing.assert_allclose(to_numpy(x1).ravel(), reference.y[:, -1], rtol=1e-12, atol=1e-12)
    else:
        assert 0.8 <= int(nfe) / reference.nfev <= 1.25, (int(nfe), reference.nfev)
        np.testing.assert_allclose(to_numpy(x1).ravel(), reference.y[:, -1], rtol=1e-4, atol=1e-5)


def test_dopri5_with_a_loose_tolerance_takes_fewer_evaluations():
    rng = np.random.default_rng(2)
    x0 = _x0(rng, "oscillator")
    counts = [int(dopri5(_oscillator, x0, 0.0, 10.0, rtol=tol, atol=tol)[1]) for tol in (1e-2, 1e-4, 1e-6)]
    assert counts[0] < counts[1] < counts[2], counts


def test_dopri5_is_exact_for_polynomials_of_degree_five():
    # x' = 6t⁵ + 1: x(t) = t⁶ + t is degree 6; x' = 5t⁴: x = t⁵ (order 5 integrates t⁴ exactly).
    x1, _ = dopri5(lambda x, t: 5.0 * t**4 * ops.ones_like(x), np.zeros(2, "float32"), 0.0, 2.0)
    np.testing.assert_allclose(to_numpy(x1), [32.0, 32.0], rtol=1e-5)


def test_dopri5_compiled_equals_eager():
    rng = np.random.default_rng(3)
    x0 = _x0(rng, "time_dependent")
    eager, eager_nfe = dopri5(_time_dependent, x0, 0.0, 4.0)
    solve = compile_function(lambda x: dopri5(_time_dependent, x, 0.0, 4.0, return_success=True))
    compiled, nfe, success = solve(x0)
    assert bool(to_numpy(success))
    assert int(to_numpy(nfe)) == int(eager_nfe)
    np.testing.assert_allclose(to_numpy(compiled), to_numpy(eager), rtol=1e-5, atol=1e-6)


def test_euler_is_first_order():
    # x' = −x·cos t; the error halves when the steps double.
    x0 = np.array([1.0, 2.0], "float32")
    expected = x0 * np.exp(-np.sin(1.0))
    errors = [np.abs(to_numpy(euler(_time_dependent, x0, 0.0, 1.0, steps=n)) - expected).max() for n in (20, 40, 80)]
    for coarse, fine in zip(errors, errors[1:]):
        assert 0.45 < fine / coarse < 0.55, errors


def test_euler_steps_are_the_left_end_points():
    # x' = t: Euler sums h·t_i over t_i = t0 + i·h, i < N: x = h²·N(N−1)/2 from 0.
    n, t0, t1 = 4, 0.5, 1.5
    h = (t1 - t0) / n
    x1 = euler(lambda x, t: t * ops.ones_like(x), np.zeros(1, "float32"), t0, t1, steps=n)
    assert to_numpy(x1)[0] == pytest.approx(h * sum(t0 + i * h for i in range(n)), rel=1e-6)


def test_euler_compiled_equals_eager():
    x0 = np.random.default_rng(4).normal(size=(5,)).astype("float32")
    solve = compile_function(lambda x: euler(_time_dependent, x, 1e-3, 1.0, steps=7))
    np.testing.assert_allclose(to_numpy(solve(x0)), to_numpy(euler(_time_dependent, x0, 1e-3, 1.0, 7)),
                               rtol=1e-6)


def test_dopri5_never_returns_an_unfinished_solve():
    x0 = np.ones(3, "float32")
    with pytest.raises(RuntimeError, match="max_steps=5"):
        dopri5(lambda x, t: -50.0 * x, x0, 0.0, 10.0, max_steps=5)
    x1, nfe, success = dopri5(lambda x, t: -50.0 * x, x0, 0.0, 10.0, max_steps=5, return_success=True)
    assert not bool(to_numpy(success))
    assert np.all(np.isnan(to_numpy(x1)))
    assert int(nfe) == 2 + 6 * 5
    # f not finite: the step shrinks to nothing and the solve fails.
    with pytest.raises(RuntimeError, match="stopped at t"):
        dopri5(lambda x, t: ops.where(t > 0.25, math.nan * x, -x), x0, 0.0, 1.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=0), "steps"), (dict(steps=2.5), "steps"), (dict(t1=0.0), "t1"), (dict(t0=math.nan), "t0"),
])
def test_euler_bad_arguments(kwargs, match):
    args = dict(x0=np.ones(2, "float32"), t0=0.0, t1=1.0, steps=4)
    with pytest.raises(ValueError, match=match):
        euler(_decay, **{**args, **kwargs})


@pytest.mark.parametrize("kwargs, match", [
    (dict(rtol=0.0), "rtol"), (dict(atol=-1.0), "atol"), (dict(max_steps=0), "max_steps"),
    (dict(t1=-1.0), "t1"), (dict(first_step=0.0), "first_step"), (dict(x0=np.ones(2, "int32")), "x0"),
])
def test_dopri5_bad_arguments(kwargs, match):
    args = dict(x0=np.ones(2, "float32"), t0=0.0, t1=1.0)
    with pytest.raises(ValueError, match=match):
        dopri5(_decay, **{**args, **kwargs})
