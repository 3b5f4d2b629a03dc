"""A GRU evaluated in parallel over its length: DEER and quasi-DEER.

`ParallelGRU` computes exactly `keras.layers.GRU(units, reset_after=True)`
(same weights, same layout) by one of four methods:

- "deer" (Lim et al. 2023, arXiv 2309.12252): Newton's method on the whole
  trajectory. Around the current guess y^k, each step y_t = f(y_{t−1}, x_t)
  is linearised, J_t = ∂f/∂y_{t−1}(y^k_{t−1}, x_t), and the linear recurrence
  y^{k+1}_t = J_t y^{k+1}_{t−1} + (f(y^k_{t−1}, x_t) − J_t y^k_{t−1})
  is solved exactly by a scan over (matrix, vector) pairs: O(T·d³) work in
  O(log T) dependent steps.
- "quasi_deer" (Gonzalez et al. 2024, arXiv 2407.19115): the same with
  J_t replaced by its diagonal, an element-wise scan, O(T·d) per iteration.
- "sequential": one GRU step after the other (a `lax.scan`, `tf.scan` or
  Python loop), what `keras.layers.GRU` does.
- "auto": "sequential" on a CPU, where the measured Newton methods are
  slower (docs/benchmarks.md); "deer" on an accelerator for units ≤ 64,
  "quasi_deer" above.

The iterations stop when |y^{k+1} − y^k| ≤ atol + rtol·|y^{k+1}| everywhere.
A solve that has not converged within `max_iter` is replaced by the
sequential result, with a warning; `last_iterations` and `last_converged`
hold the last call's count and outcome.

Gradients, for every method, by implicit differentiation at the solution
y* = f(y*₋₁, x) (DEER §3.3): the adjoint λ_t = g_t + J_{t+1}ᵀ λ_{t+1}
(g = ∂L/∂y) is one reverse linear recurrence, solved with the forward's
scan (dense for "deer"; diagonal iterations with the off-diagonal part
applied matrix-free for "quasi_deer"; a reverse step-by-step scan for
"sequential"), and then ∂L/∂θ = Σ_t λ_tᵀ ∂f(y*_{t−1}, x_t)/∂θ in parallel
over t. Nothing back-propagates through the Newton iterations.

GRU with reset after (Cho et al. 2014; Keras's layout): with x_t W + b_x =
[x_z, x_r, x_h] and h U + b_h = [h_z, h_r, h_h],
z = σ(x_z + h_z), r = σ(x_r + h_r), n = tanh(x_h + r ⊙ h_h),
h_t = z ⊙ h_{t−1} + (1 − z) ⊙ n.
"""

import functools
import math
import warnings

import keras
from keras import ops

from glu_zoo.layers.checks import check_choice, check_positive_int
from glu_zoo.layers.recurrent_base import RecurrentLayer
from glu_zoo.ops.scan import device_kind, linear_recurrence, sequential_scan

__all__ = ["DEER_METHODS", "ParallelGRU"]

DEER_METHODS = ("deer", "quasi_deer", "sequential", "auto")
# The default tolerances (atol, rtol) per compute dtype.
_TOLERANCES = {"float32": (1e-5, 1e-5), "float64": (1e-10, 1e-10)}
# The default iteration limits. Newton converges in at most T iterations in
# exact arithmetic, in a few in practice (docs/benchmarks.md); quasi-Newton
# converges linearly.
_MAX_ITER = {"deer": 50, "quasi_deer": 200}
# "auto" on an accelerator: Newton with full Jacobians up to this width
# (its scan costs d³ per step), quasi-DEER above. Not measured: no GPU or
# TPU was lent when this was written.
_AUTO_DENSE_MAX = 64


# --- the GRU step and its derivatives, for all steps at once ---------------------


def _gates(xp, p, U, b_rec, units):
    """z, r, n and h_h of the GRU at previous states `p` (…, units) given the
    input projections `xp` (…, 3·units)."""
    rp = ops.matmul(p, U) + b_rec
    z = ops.sigmoid(xp[..., :units] + rp[..., :units])
    r = ops.sigmoid(xp[..., units:2 * units] + rp[..., units:2 * units])
    rh = rp[..., 2 * units:]
    n = ops.tanh(xp[..., 2 * units:] + r * rh)
    return z, r, n, rh


def _gru(p, z, n, m):
    """The new state z ⊙ p + (1 − z) ⊙ n, or p where the mask m is False."""
    y = z * p + (1.0 - z) * n
    return y if m is None else ops.where(m, y, p)


def _linearisation(p, z, r, n, rh, m):
    """(d, c): ∂f/∂p = diag(d) + Σ_k diag(c_k) U_kᵀ with c = [c_z, c_r, c_h]
    (…, 3·units), so that Jᵀλ = d ⊙ λ + (c ⊙ [λ, λ, λ]) Uᵀ, and
    ∂f/∂x_proj = diag([c_z, c_r, s]) with s = (1 − z)(1 − n²), masked."""
    s = (1.0 - z) * (1.0 - n * n)
    c = ops.concatenate([z * (1.0 - z) * (p - n), s * r * (1.0 - r) * rh, s * r], axis=-1)
    d = z
    if m is not None:
        mf = ops.cast(m, p.dtype)
        c, s, d = c * mf, s * mf, mf * z + (1.0 - mf)
    return d, c, s


def _tile3(v):
    return ops.concatenate([v, v, v], axis=-1)


def _transposed_apply(lam, d, c, Ut):
    """Jᵀλ matrix-free: d ⊙ λ + (c ⊙ [λ, λ, λ]) Uᵀ."""
    return d * lam + ops.matmul(c * _tile3(lam), Ut)


def _dense_jacobian(d, c, U, units):
    """J (…, units, units) with J[i, j] = d_i δ_ij + Σ_k c_k[i] U[j, k·units + i]."""
    ut3 = ops.transpose(ops.reshape(U, (units, 3, units)), (1, 2, 0))  # [k, i, j] = U[j, k·units + i]
    shape = tuple(ops.shape(c))[:-1]
    ck = ops.reshape(c, (*shape, 3, units))
    jac = ops.einsum("...ki,kij->...ij", ck, ut3)
    return jac + ops.expand_dims(d, -1) * ops.eye(units, dtype=d.dtype)


def _jacobian_diagonal(d, c, U, units):
    """The diagonal of J: d_i + Σ_k c_k[i] U[i, k·units + i]."""
    diag = ops.concatenate([ops.diagonal(U[:, k * units:(k + 1) * units]) for k in range(3)], axis=0)
    return d + ops.sum(ops.reshape(c * diag, (*tuple(ops.shape(c))[:-1], 3, units)), axis=-2)


def _previous(y, h0):
    """(h0, y_0, …, y_{T−2}): each step's previous state."""
    return ops.concatenate([ops.expand_dims(h0, 1), y[:, :-1]], axis=1)


def _next(x):
    """(x_1, …, x_{T−1}, 0): each step's successor, zero after the last."""
    return ops.concatenate([x[:, 1:], ops.zeros_like(x[:, :1])], axis=1)


# --- the solvers -----------------------------------------------------------------


def _sequential(x, W, b_in, U, b_rec, h0, m, units):
    """Every state of the GRU, one step after the other. Each step projects
    its own input (x_t W + b_x): scanning the precomputed projections of all
    steps was 1.8× slower under XLA on TensorFlow."""
    if keras.backend.backend() == "torch" and _TORCH_FAST_PATH:
        return _sequential_torch(x, W, b_in, U, b_rec, h0, m, units)

    def step(carry, xs):
        p = carry[0]
        z, _, n, _ = _gates(ops.matmul(xs[0], W) + b_in, p, U, b_rec, units)
        return (_gru(p, z, n, xs[1] if m is not None else None),)

    return sequential_scan(step, (h0,), (x, m) if m is not None else (x,))[0]


# torch runs eagerly, where each keras.ops call costs a few µs of dispatch on
# top of torch's own: the sequential GRU in plain torch calls (the same
# formula) was measured 3-5× faster than through keras.ops (docs/benchmarks.md).
# `_TORCH_FAST_PATH = False` falls back to keras.ops (the test that both
# agree flips it).
_TORCH_FAST_PATH = True


def _sequential_torch(x, W, b_in, U, b_rec, h0, m, units):
    import torch

    h, states = h0, []
    masks = m.unbind(1) if m is not None else None
    for t, x_t in enumerate(x.unbind(1)):
        x_z, x_r, x_h = torch.addmm(b_in, x_t, W).split(units, dim=-1)
        h_z, h_r, h_h = torch.addmm(b_rec, h, U).split(units, dim=-1)
        z = torch.sigmoid(x_z + h_z)
        r = torch.sigmoid(x_r + h_r)
        n = torch.tanh(torch.addcmul(x_h, r, h_h))
        new = z * h + (1.0 - z) * n
        h = new if masks is None else torch.where(masks[t], new, h)
        states.append(h)
    return torch.stack(states, dim=1)


def _newton(method, xp, U, b_rec, h0, m, units, mode, atol, rtol, max_iter):
    """(y, iterations, converged) of DEER or quasi-DEER from y⁰ = 0."""

    def iterate(y):
        p = _previous(y, h0)
        z, r, n, rh = _gates(xp, p, U, b_rec, units)
        f = _gru(p, z, n, m)
        d, c, _ = _linearisation(p, z, r, n, rh, m)
        if method == "deer":
            jac = _dense_jacobian(d, c, U, units)
            b = f - ops.squeeze(ops.matmul(jac, ops.expand_dims(p, -1)), -1)
            return linear_recurrence(jac, b, h0, kind="dense", mode=mode)
        diag = _jacobian_diagonal(d, c, U, units)
        return linear_recurrence(diag, f - diag * p, h0, kind="diagonal", mode=mode)

    def body(k, y, done):
        new = iterate(y)
        done = ops.all(ops.abs(new - y) <= atol + rtol * ops.abs(new))
        return k + 1, new, done

    start = (ops.convert_to_tensor(0, "int32"), ops.zeros_like(xp[..., :units]), ops.convert_to_tensor(False))
    k, y, done = ops.while_loop(lambda k, y, done: ops.logical_not(done), body, start, maximum_iterations=max_iter)
    return y, k, done


def _adjoint(method, g, p, gates, m, U, units, mode, atol, rtol, max_iter):
    """λ with λ_t = g_t + J_{t+1}ᵀ λ_{t+1} (λ_{T−1} = g_{T−1}), J at the solution."""
    z, r, n, rh = gates
    d, c, _ = _linearisation(p, z, r, n, rh, m)
    Ut = ops.transpose(U)
    d1, c1 = _next(d), _next(c)  # the Jacobian J_{t+1} that carries λ_{t+1} back to step t
    if method == "deer":
        jac_t = ops.swapaxes(_dense_jacobian(d1, c1, U, units), -1, -2)
        return linear_recurrence(jac_t, g, kind="dense", mode=mode, reverse=True)
    if method == "quasi_deer":
        # Richardson iterations preconditioned by the diagonal: λ^{k+1} solves
        # λ_t = g_t + D_{t+1} λ_{t+1} + (J_{t+1} − D_{t+1})ᵀ λ^k_{t+1};
        # exact once λ^{k+1} = λ^k (at most T iterations, few in practice).
        diag = _jacobian_diagonal(d1, c1, U, units)

        def body(k, lam, done):
            lam_next = _next(lam)
            rest = _transposed_apply(lam_next, d1, c1, Ut) - diag * lam_next
            new = linear_recurrence(diag, g + rest, kind="diagonal", mode=mode, reverse=True)
            done = ops.all(ops.abs(new - lam) <= atol + rtol * ops.abs(new))
            return k + 1, new, done

        start = (ops.convert_to_tensor(0, "int32"), g, ops.convert_to_tensor(False))
        _, lam, done = ops.while_loop(lambda k, lam, done: ops.logical_not(done), body, start,
                                      maximum_iterations=max_iter)
        return ops.cond(done, lambda: lam, lambda: _sequential_adjoint(g, d1, c1, Ut))
    return _sequential_adjoint(g, d1, c1, Ut)


def _sequential_adjoint(g, d1, c1, Ut):
    def step(carry, x):
        return (x[0] + _transposed_apply(carry[0], x[1], x[2], Ut),)

    return sequential_scan(step, (ops.zeros_like(g[:, 0]),), (g, d1, c1), reverse=True)[0]


def _solve(method, units, mode, atol, rtol, max_iter, masked, x, W, U, bias, h0, mf):
    """(y, iterations, converged) by `method`; no gradient flows here."""
    m = mf > 0.5 if masked else None
    if method == "sequential":
        return _sequential(x, W, bias[0], U, bias[1], h0, m, units), ops.convert_to_tensor(0, "int32"), \
            ops.convert_to_tensor(True)
    return _newton(method, ops.matmul(x, W) + bias[0], U, bias[1], h0, m, units, mode, atol, rtol, max_iter)


def _solve_or_fall_back(static, x, W, U, bias, h0, mf):
    """`_solve`, with the sequential result where a Newton solve did not
    converge: decided in Python when the outcome is known now (eager), by a
    conditional in the graph otherwise."""
    y, k, done = _compiled(_solve, *static)(x, W, U, bias, h0, mf)
    if static[0] == "sequential":
        return y, k, done
    sequential = _compiled(_solve, "sequential", *static[1:])
    if _is_concrete(done):
        return (y if bool(done) else sequential(x, W, U, bias, h0, mf)[0]), k, done
    return ops.cond(done, lambda: y, lambda: sequential(x, W, U, bias, h0, mf)[0]), k, done


def _backward(method, units, mode, atol, rtol, max_iter, masked, xp, U, b_rec, h0, mf, y, g):
    """∂L/∂(xp, U, b_rec, h0) given g = ∂L/∂y at the solution y, by the adjoint."""
    m = mf > 0.5 if masked else None
    p = _previous(y, h0)
    gates = _gates(xp, p, U, b_rec, units)
    lam = _adjoint(method, g, p, gates, m, U, units, mode, atol, rtol, max_iter)
    d, c, s = _linearisation(p, *gates, m)
    drp = c * _tile3(lam)  # ∂L/∂(h U + b_h)
    dxp = ops.concatenate([drp[..., :2 * units], s * lam], axis=-1)
    d_u = ops.einsum("bti,btj->ij", p, drp)
    d_b = ops.sum(drp, axis=(0, 1))
    dh0 = _transposed_apply(lam[:, 0], d[:, 0], c[:, 0], ops.transpose(U))
    return dxp, d_u, d_b, dh0


@functools.lru_cache(maxsize=None)
def _compiled(fn, *static):
    """`fn` with its leading static arguments bound, compiled with XLA on JAX
    and TensorFlow: an eager call then runs one compiled program (per shape)
    instead of dispatching each step of its loops (an eager `tf.scan` over
    16,000 steps took 48 s)."""
    bound = functools.partial(fn, *static)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(bound)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(bound, jit_compile=True)  # traced per shape: a scan needs its length
    return bound


def _implicit(static):
    """y ↦ y (the solution, computed outside) with the gradient of the GRU
    by implicit differentiation at y: inputs (xp, U, b_rec, h0, mask, y)."""

    @ops.custom_gradient
    def attach(xp, U, b_rec, h0, mf, y):
        def grad(*args, upstream=None):  # torch passes the inputs and `upstream`; JAX and TF the upstream
            g = ops.cast(upstream if upstream is not None else args[0], y.dtype)
            dxp, d_u, d_b, dh0 = _compiled(_backward, *static)(xp, U, b_rec, h0, mf, y, g)
            return dxp, d_u, d_b, dh0, ops.zeros_like(mf), ops.zeros_like(y)

        return y * 1.0, grad

    return attach


def _is_concrete(x):
    """True when `x` holds values now (eager), not a symbol being traced."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return not isinstance(x, jax.core.Tracer)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly() and hasattr(x, "numpy")
    if backend == "torch":
        import torch

        return not torch.compiler.is_compiling()
    return False


@keras.saving.register_keras_serializable(package="glu_zoo")
class ParallelGRU(RecurrentLayer):
    """`keras.layers.GRU(units, reset_after=True)`, evaluated by DEER,
    quasi-DEER or step by step (see the module docstring).

    Weights as Keras's GRU: `kernel` (features, 3·units), `recurrent_kernel`
    (units, 3·units), `bias` (2, 3·units), gates in the order z, r, h, so
    `layer.set_weights(gru.get_weights())` gives Keras's outputs.

    Args:
        units: the state width.
        method: "deer", "quasi_deer", "sequential" or "auto".
        max_iter: the Newton iteration limit (None: 50 for "deer", 200 for
            "quasi_deer", and at most T + 1).
        tol: the stopping tolerance, a number (atol = rtol = tol) or a pair
            (atol, rtol), each > 0; None: 1e-5 in float32, 1e-10 in float64.
        return_sequences: every step's state, or the last one.
        return_state: also return the final state, `(outputs, state)`.
        mode: the scan mode of the Newton steps' linear recurrences
            (`glu_zoo.ops.scan.SCAN_MODES`); "parallel" is the associative
            scan of the DEER paper.

    Call with `initial_state=` (batch, units) and `mask=` (batch, time) as
    Keras's GRU (a masked step keeps the previous state). The solve and its
    adjoint run in float32 (float64 inputs in float64). After a call,
    `last_iterations` and `last_converged` hold its Newton iteration count
    and outcome (0 and True for "sequential"); inside a compiled JAX function
    they are reported through `jax.debug.callback`, inside a TensorFlow
    graph they are not recorded.

        gru = ParallelGRU(64, method="deer", return_sequences=True)
        y = gru(x)                      # x: (batch, time, features)
        gru.last_iterations             # e.g. 6
    """

    def __init__(self, units, method="deer", max_iter=None, tol=None, return_sequences=False, return_state=False,
                 mode="parallel", **kwargs):
        super().__init__(mode=mode, return_sequences=return_sequences, return_state=return_state, **kwargs)
        owner = type(self).__name__
        self.units = check_positive_int("units", units, owner)
        self.method = check_choice("method", method, DEER_METHODS, owner)
        self.max_iter = None if max_iter is None else check_positive_int("max_iter", max_iter, owner)
        self.tol = self._check_tol(tol, owner)
        self.last_iterations = None
        self.last_converged = None

    @staticmethod
    def _check_tol(tol, owner):
        if tol is None:
            return None
        pair = tuple(tol) if isinstance(tol, (tuple, list)) else (tol, tol)
        ok = len(pair) == 2 and all(not isinstance(t, bool) and isinstance(t, (int, float)) and math.isfinite(t)
                                    and t > 0 for t in pair)
        if not ok:
            raise ValueError(f"{owner}: `tol` must be a number > 0 or a pair (atol, rtol) of numbers > 0; "
                             f"got {tol!r}.")
        return tol if not isinstance(tol, (tuple, list)) else list(pair)

    def state_spec(self, batch_size):
        return [("initial_state", (batch_size, self.units), self.compute_dtype)]

    def build(self, input_shape):
        self._build_input_dim(input_shape)
        self.kernel = self.add_weight(name="kernel", shape=(self.input_dim, 3 * self.units),
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(self.units, 3 * self.units),
                                                initializer="orthogonal")
        self.bias = self.add_weight(name="bias", shape=(2, 3 * self.units), initializer="zeros")

    def resolved_method(self, length=None):
        """The method that runs: `method`, or what "auto" picks on this device."""
        if self.method != "auto":
            return self.method
        if device_kind() == "cpu":
            return "sequential"
        return "deer" if self.units <= _AUTO_DENSE_MAX else "quasi_deer"

    def _tolerances(self, dtype):
        if self.tol is None:
            return _TOLERANCES[dtype]
        return tuple(self.tol) if isinstance(self.tol, list) else (self.tol, self.tol)

    def call(self, inputs, initial_state=None, mask=None, training=None):
        self._check_inputs(inputs)
        if _is_concrete(inputs) and not bool(ops.all(ops.isfinite(inputs))):
            raise ValueError(f"{self._owner}: `inputs` must be finite; got NaN or infinite values.")
        if isinstance(initial_state, (list, tuple)) and len(initial_state) == 1:  # Keras's GRU takes [h0]
            initial_state = initial_state[0]
        state = self._check_state(initial_state, inputs)
        dtype = "float64" if keras.backend.standardize_dtype(self.compute_dtype) == "float64" else "float32"
        kernel = ops.cast(self.kernel, dtype)
        U = ops.cast(self.recurrent_kernel, dtype)
        bias = ops.cast(self.bias, dtype)
        xp = ops.matmul(ops.cast(inputs, dtype), kernel) + bias[0]
        b_rec = bias[1]
        h0 = ops.zeros_like(xp[:, 0, :self.units]) if state is None else ops.cast(state[0], dtype)
        m = self._mask(mask)
        mf = ops.zeros_like(xp[..., :1]) if m is None else ops.cast(m, dtype)
        method = self.resolved_method(inputs.shape[1])
        atol, rtol = self._tolerances(dtype)
        length = inputs.shape[1]
        max_iter = self.max_iter or _MAX_ITER.get(method, 1)
        if length is not None:
            max_iter = min(max_iter, length + 1)
        static = (method, self.units, self.mode, atol, rtol, max_iter, m is not None)
        stop = ops.stop_gradient
        y, k, done = _solve_or_fall_back(static, stop(ops.cast(inputs, dtype)), stop(kernel), stop(U), stop(bias),
                                         stop(h0), stop(mf))
        self._record(k, done)
        y = _implicit(static)(xp, U, b_rec, h0, mf, y)
        y = ops.cast(y, self.compute_dtype)
        return self._outputs(y, y[:, -1], mask)

    def _record(self, k, done):
        if _is_concrete(k):
            self._report(k, done)
        elif keras.backend.backend() == "jax":
            import jax

            jax.debug.callback(self._report, k, done)

    def _report(self, k, done):
        self.last_iterations, self.last_converged = int(k), bool(done)
        if not self.last_converged:
            warnings.warn(f"{self._owner}: the {self.method} solve did not converge within {self.last_iterations} "
                          f"iterations; the sequential result was returned instead.", RuntimeWarning, stacklevel=3)

    def compute_output_spec(self, inputs, initial_state=None, mask=None, training=None):
        shape = tuple(inputs.shape)
        out = (*shape[:2], self.units) if self.return_sequences else (shape[0], self.units)
        y = keras.KerasTensor(out, dtype=self.compute_dtype)
        return (y, keras.KerasTensor((shape[0], self.units), dtype=self.compute_dtype)) if self.return_state else y

    def get_config(self):
        return {**super().get_config(), "units": self.units, "method": self.method, "max_iter": self.max_iter,
                "tol": self.tol, "return_sequences": self.return_sequences}
