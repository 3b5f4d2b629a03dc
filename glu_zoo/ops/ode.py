"""Ordinary differential equation solvers on every backend (keras.ops only).

- `euler(f, x0, t0, t1, steps)`: fixed-step forward Euler,
  x_{i+1} = x_i + h·f(x_i, t0 + i·h), h = (t1 − t0)/steps; first order.
- `dopri5(f, x0, t0, t1, rtol, atol, max_steps)`: the adaptive explicit
  Runge–Kutta pair of Dormand & Prince (1980, "A family of embedded
  Runge–Kutta formulae"), order 5 with an embedded order-4 error estimate,
  first-same-as-last (the last stage of a step is the first of the next).
  Step control and the initial step as scipy's `solve_ivp(method="RK45")`
  (Hairer, Nørsett & Wanner, "Solving ODEs I", II.4):
  err = RMS over all elements of h·Σ E_i k_i / (atol + rtol·max(|x|, |x_new|)),
  a step is accepted when err < 1, and the step size is multiplied by
  min(10, 0.9·err^(−1/5)) after an accepted step (at most 1 right after a
  rejection) or max(0.2, 0.9·err^(−1/5)) after a rejected one.

`f(x, t)` returns dx/dt with the shape of `x`; `t` is a scalar tensor of x's
dtype. Both solvers are loops of `keras.ops` (`fori_loop`, `while_loop`), so
they run eagerly or inside a compiled function (`jax.jit`,
`tf.function(jit_compile=True)`; see `compile_function`). They are for
sampling and evaluation: no gradient flows through `dopri5`'s loop on JAX.
"""

import math

import keras
import numpy as np
from keras import ops

from glu_zoo.layers.checks import check_number, check_positive_int

__all__ = ["compile_function", "dopri5", "euler"]

# Dormand–Prince 5(4): nodes C, stage matrix A, 5th-order weights B and the
# error weights E = B − B̂ (the last entry for the FSAL stage f(x_new)); as in
# scipy.integrate._ivp.rk.RK45.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_E = (-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40)
_SAFETY, _MIN_FACTOR, _MAX_FACTOR, _ORDER = 0.9, 0.2, 10.0, 4  # _ORDER: of the error estimator


def _times(t0, t1, dtype, owner):
    """t0 < t1 as scalar tensors of `dtype` (Python numbers are checked)."""
    if isinstance(t0, (int, float)) and isinstance(t1, (int, float)):
        check_number("t0", t0, owner)
        check_number("t1", t1, owner, low=t0)
    return ops.cast(t0, dtype), ops.cast(t1, dtype)


def _state(x0, owner):
    x0 = ops.convert_to_tensor(x0)
    if not keras.backend.is_float_dtype(x0.dtype):
        dtype = keras.backend.standardize_dtype(x0.dtype)
        raise ValueError(f"{owner}: `x0` must be floating point; got dtype {dtype}.")
    return x0


def euler(f, x0, t0, t1, steps):
    """Forward Euler from t0 to t1 in `steps` equal steps: x_{i+1} = x_i + h·f(x_i, t_i),
    t_i = t0 + i·h, h = (t1 − t0)/steps. Returns x at t1; `steps` evaluations of f.

        x1 = euler(lambda x, t: -x, ops.ones((3,)), 0.0, 1.0, steps=100)  # ≈ e^-1
    """
    owner = "euler"
    steps = check_positive_int("steps", steps, owner)
    x0 = _state(x0, owner)
    t0, t1 = _times(t0, t1, x0.dtype, owner)
    h = (t1 - t0) / steps

    def body(i, x):
        t = t0 + ops.cast(i, x0.dtype) * h
        return x + h * f(x, t)

    return ops.fori_loop(0, steps, body, x0)


def _rms(x):
    return ops.sqrt(ops.mean(ops.square(x)))


def _initial_step(f, t0, t1, x0, f0, rtol, atol):
    """Hairer's starting step (scipy's `select_initial_step`); one evaluation of f."""
    dtype = x0.dtype
    scale = atol + ops.abs(x0) * rtol
    d0, d1 = _rms(x0 / scale), _rms(f0 / scale)
    small = ops.logical_or(d0 < 1e-5, d1 < 1e-5)
    h0 = ops.where(small, ops.cast(1e-6, dtype), 0.01 * d0 / ops.where(small, ops.ones_like(d1), d1))
    h0 = ops.minimum(h0, t1 - t0)
    f1 = f(x0 + h0 * f0, t0 + h0)
    d2 = _rms((f1 - f0) / scale) / h0
    dmax = ops.maximum(d1, d2)
    tiny = dmax <= 1e-15
    h1 = ops.where(tiny, ops.maximum(ops.cast(1e-6, dtype), h0 * 1e-3),
                   ops.power(0.01 / ops.where(tiny, ops.ones_like(dmax), dmax), 1.0 / (_ORDER + 1)))
    return ops.minimum(ops.minimum(100.0 * h0, h1), t1 - t0)


def dopri5(f, x0, t0, t1, rtol=1e-5, atol=1e-5, max_steps=10_000, first_step=None, return_success=False):
    """Adaptive Dormand–Prince 5(4) from t0 to t1 (t0 < t1), as scipy's RK45.

    The error norm is the RMS over every element of x (a batch of samples is
    one system, as `solve_ivp` on the flattened array). Returns
    `(x1, nfe)`: x at t1 and the number of evaluations of f (2 to start, 6 per
    attempted step, rejected ones included), an int32 scalar tensor.

    The integration fails when `max_steps` step attempts do not reach t1 or
    the step size falls below 10 float spacings of t (f not finite, say).
    A failed solve never passes for a result: x1 is then NaN everywhere, and
    called eagerly it raises a RuntimeError; `return_success=True` returns
    `(x1, nfe, success)` instead (a bool scalar tensor), for compiled callers.

    Args:
        f: f(x, t) → dx/dt, t a scalar tensor of x's dtype.
        x0: the state at t0, a float tensor of any shape.
        t0, t1: start and end time (numbers or scalar tensors).
        rtol, atol: relative and absolute tolerances, > 0.
        max_steps: the most step attempts.
        first_step: the first step size; None chooses it (Hairer's rule).

        x1, nfe = dopri5(lambda x, t: -x, ops.ones((3,)), 0.0, 1.0)
        # x1 ≈ e^-1 to ~1e-5, nfe ≈ 50
    """
    owner = "dopri5"
    rtol = check_number("rtol", rtol, owner, low=0.0)
    atol = check_number("atol", atol, owner, low=0.0)
    max_steps = check_positive_int("max_steps", max_steps, owner)
    return_success = bool(return_success)
    x0 = _state(x0, owner)
    dtype = x0.dtype
    t0, t1 = _times(t0, t1, dtype, owner)
    f0 = f(x0, t0)
    if first_step is None:
        h = _initial_step(f, t0, t1, x0, f0, rtol, atol)
        nfe0 = 2
    else:
        check_number("first_step", first_step, owner, low=0.0)
        h = ops.minimum(ops.cast(first_step, dtype), t1 - t0)
        nfe0 = 1
    spacing = 10.0 * float(np.finfo(keras.backend.standardize_dtype(dtype)).eps)

    def step(t, x, k1, h):
        """One Dormand–Prince step of size h: (x_new, f(x_new), error norm)."""
        ks = [k1]
        for i in range(1, 6):
            dx = sum(a * k for a, k in zip(_A[i], ks) if a != 0.0)
            ks.append(f(x + h * dx, t + _C[i] * h))
        x_new = x + h * sum(b * k for b, k in zip(_B, ks) if b != 0.0)
        k7 = f(x_new, t + h)
        ks.append(k7)
        error = h * sum(e * k for e, k in zip(_E, ks) if e != 0.0)
        scale = atol + rtol * ops.maximum(ops.abs(x), ops.abs(x_new))
        norm = _rms(error / scale)
        return x_new, k7, ops.where(ops.isfinite(norm), norm, ops.cast(math.inf, dtype))

    def cond(t, x, k1, h, attempts, rejected, failed):
        return ops.logical_and(t < t1, ops.logical_and(attempts < max_steps, ops.logical_not(failed)))

    def body(t, x, k1, h, attempts, rejected, failed):
        failed = h < spacing * ops.maximum(ops.abs(t), ops.cast(1e-30, dtype))  # scipy: 10·spacing(t)
        last = t + h >= t1
        h = ops.where(last, t1 - t, h)
        x_new, k_new, norm = step(t, x, k1, h)
        accept = ops.logical_and(norm < 1.0, ops.logical_not(failed))
        power = ops.power(ops.maximum(norm, ops.cast(1e-30, dtype)), -1.0 / (_ORDER + 1))
        grow = ops.where(norm == 0.0, ops.cast(_MAX_FACTOR, dtype), ops.minimum(_MAX_FACTOR, _SAFETY * power))
        grow = ops.where(rejected, ops.minimum(grow, 1.0), grow)
        shrink = ops.maximum(_MIN_FACTOR, _SAFETY * power)
        t = ops.where(accept, ops.where(last, t1, t + h), t)
        x = ops.where(accept, x_new, x)
        k1 = ops.where(accept, k_new, k1)
        h = h * ops.where(accept, grow, shrink)
        return t, x, k1, h, attempts + 1, ops.logical_not(accept), failed

    state = (t0, x0, f0, ops.cast(h, dtype), ops.convert_to_tensor(0, "int32"), ops.convert_to_tensor(False),
             ops.convert_to_tensor(False))
    t, x, _, _, attempts, _, failed = ops.while_loop(cond, body, state)
    success = ops.logical_and(t >= t1, ops.logical_not(failed))
    x = ops.where(success, x, ops.cast(math.nan, dtype))
    nfe = nfe0 + 6 * attempts
    if return_success:
        return x, nfe, success
    if _is_concrete(success) and not bool(ops.convert_to_numpy(success)):
        raise RuntimeError(
            f"{owner}: the integration stopped at t = {float(ops.convert_to_numpy(t)):.6g} of "
            f"{float(ops.convert_to_numpy(t1)):.6g} after {int(ops.convert_to_numpy(attempts))} step attempts "
            f"(max_steps={max_steps}); raise `max_steps`, loosen rtol/atol, or check that f is finite."
        )
    return x, nfe


def _is_concrete(x):
    """True when the value of the tensor `x` can be read now (not traced or compiled)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return not isinstance(x, jax.core.Tracer)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if backend == "torch":
        import torch

        return not torch.compiler.is_compiling()
    return True


def compile_function(fn):
    """`fn` (a function of tensors, pure: it reads no variable) compiled by the
    backend: `jax.jit` on JAX, `tf.function(jit_compile=True)` on TensorFlow;
    on torch `fn` itself (eager, as Keras runs torch with jit_compile="auto")."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True, reduce_retracing=False)
    return fn
