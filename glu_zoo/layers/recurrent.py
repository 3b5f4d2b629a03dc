"""Diagonal linear recurrences: `LRU`, `RGLRU` and the Griffin/TRecViT `RecurrentBlock`.

Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences" (arXiv 2303.06349); De et al. 2024, "Griffin" (arXiv 2402.19427),
with the layout and semantics of Google's `recurrentgemma` package; TRecViT
(arXiv 2412.14294) for the temporal block.

All three run h_t = a_t ⊗ h_{t−1} + b_t through `_linear_scan`, in float32
whatever the input dtype, as a parallel associative scan or a sequential scan.
"""

import functools
import math

import keras
from keras import ops

from glu_zoo.layers.ffn import _check_positive_int, _fresh

__all__ = ["LRU", "LRUBlock", "RGLRU", "RecurrentBlock", "SCAN_MODES"]

SCAN_MODES = ("auto", "parallel", "sequential")

# mode="auto" → mode, per backend and device kind, from tools/bench_scan.py
# (docs/benchmarks.md): rows (largest T, mode in training, mode at
# inference), the first row whose T bound holds wins (None: any T; an
# unknown T takes the last row). "Training" is Keras's `training=True` (fit),
# or on torch any call with gradients enabled.
# - JAX, 2-core CPU: one compiled lax.scan beats the associative scan at
#   every T, forward and train step (1.4–2.2× in the train step).
# - TensorFlow, CPU: the forward tf.scan is 3.7–11× faster than the
#   associative (doubling) scan at every T; its gradient under XLA grows
#   quadratically in T (43.5 s against 6.6 s at T = 4096), so training
#   switches to the parallel form above T = 256.
# - torch, CPU (eager): "sequential" is a Python loop over time steps; it
#   wins the forward pass (no graph to keep) and loses every train step
#   (1.2 s against 0.19 s at T = 256).
# - accelerators: not measured here (no GPU was lent); the parallel form is
#   the one that fills their cores.
_AUTO_MODE = {
    "jax": {"cpu": ((None, "sequential", "sequential"),),
            "accelerator": ((None, "parallel", "parallel"),)},
    "tensorflow": {"cpu": ((256, "sequential", "sequential"), (None, "parallel", "sequential")),
                   "accelerator": ((None, "parallel", "parallel"),)},
    "torch": {"cpu": ((None, "parallel", "sequential"),),
              "accelerator": ((None, "parallel", "parallel"),)},
}

_MAX_SQRT_GRADIENT = 1000.0  # as recurrentgemma's SqrtBoundDerivative


@functools.lru_cache(maxsize=None)
def _has_accelerator():
    """True when the backend's default device is a GPU or TPU (cached)."""
    try:
        if keras.backend.backend() == "torch":
            import torch

            return bool(torch.cuda.is_available())
        devices = keras.distribution.list_devices()
        return any("gpu" in str(d).lower() or "tpu" in str(d).lower() for d in devices)
    except Exception:  # no distribution support for this backend: assume CPU
        return False


def _training(training):
    if training is not None:
        return bool(training)
    if keras.backend.backend() == "torch":
        import torch

        return torch.is_grad_enabled()
    return False


def _resolve_mode(mode, length=None, training=None):
    """The scan mode: `mode` itself, or for "auto" the row of `_AUTO_MODE`
    for this backend, device kind, sequence length and training flag."""
    if mode != "auto":
        return mode
    rows = _AUTO_MODE[keras.backend.backend()]["accelerator" if _has_accelerator() else "cpu"]
    row = next((r for r in rows if r[0] is None or (length is not None and length <= r[0])), rows[-1])
    return row[1] if _training(training) else row[2]


def _check_mode(mode, owner):
    if mode not in SCAN_MODES:
        raise ValueError(f"{owner}: unknown `mode` {mode!r}; allowed: {', '.join(SCAN_MODES)}.")


def _check_number(name, value, owner, low, high, low_open=True, high_open=True):
    """`value` a real number inside the interval (low, high), ends per *_open."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: `{name}` must be a number in {interval}; got {value!r}.")


def _check_bool(name, value, owner):
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: `{name}` must be True or False; got {value!r}.")


# --- the scan --------------------------------------------------------------------


def _complex_mul(xr, xi, yr, yi):
    return xr * yr - xi * yi, xr * yi + xi * yr


def _combine_real(first, second):
    """(a₁, b₁)∘(a₂, b₂) = (a₁a₂, a₂b₁ + b₂): apply step 1, then step 2."""
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, a2 * b1 + b2


def _combine_complex(first, second):
    """The same composition with complex a, b stored as (a_re, a_im, b_re, b_im)."""
    a1r, a1i, b1r, b1i = first
    a2r, a2i, b2r, b2i = second
    ar, ai = _complex_mul(a1r, a1i, a2r, a2i)
    br, bi = _complex_mul(a2r, a2i, b1r, b1i)
    return ar, ai, br + b2r, bi + b2i


def _doubling_scan(combine, elems, n):
    """Inclusive scan over axis 0 by recursive doubling (Hillis–Steele): at step
    k each element is combined with the one 2^k before it, the missing ones
    being the identity (a = 1, b = 0). log2(T) steps of static shapes."""
    length = elems[0].shape[0]
    elems = tuple(elems)
    shift = 1
    while shift < length:
        earlier = []
        for i, e in enumerate(elems):
            fill = ops.ones_like(e[:shift]) if i == 0 else ops.zeros_like(e[:shift])
            earlier.append(ops.concatenate([fill, e[:-shift]], axis=0))
        elems = tuple(combine(tuple(earlier), elems))
        shift *= 2
    return elems


def _associative_scan(combine, elems, n):
    """`ops.associative_scan` over axis 0, except on TensorFlow with a static
    length: there it traces a `tf.cond` that XLA (jit_compile=True) fails to
    convert ("Cannot concatenate arrays that differ in dimensions", even along
    axis 0) and loses the static rank in graph mode, so `_doubling_scan` is used."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        if elems[0].shape[0] is not None:
            return _doubling_scan(combine, elems, n)
        out = ops.associative_scan(combine, elems, axis=0)
        return [ops.reshape(t, ops.shape(e)) for t, e in zip(out, elems)]  # restore the rank
    if backend == "jax":  # jitted: eagerly, each of its ~2·log2(T) slices is
        return _jax_associative_scan(combine)(tuple(elems))  # dispatched (~10× slower)
    return ops.associative_scan(combine, elems, axis=0)


@functools.lru_cache(maxsize=None)
def _jax_associative_scan(combine):
    import jax

    return jax.jit(lambda elems: jax.lax.associative_scan(combine, elems, axis=0))


def _sequential_scan(step, init, xs):
    """The stacked carries of `ops.scan(step, init, xs)` over axis 0. On
    TensorFlow `tf.scan`: Keras's TF scan builds a while loop without
    `maximum_iterations`, whose gradient XLA refuses ("XLA compilation requires
    a fixed tensor list size"), and it fails when the length is unknown."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.scan(lambda carry, x: step(carry, x)[0], xs, initializer=init)
    return ops.scan(step, init, xs)[1]


def _linear_scan(a, b, h0=None, mode="sequential", training=None):
    """All states of h_t = a_t ⊗ h_{t−1} + b_t along axis 1, with h_{−1} = h0 (or 0).

    `a`, `b`: lists of (batch, time, features) tensors, one for a real
    recurrence, two (re, im) for a complex one; `h0`: a list like them of
    (batch, features) tensors, or None. Returns the list of h (batch, time,
    features). Computed in float32; the outputs take the dtype of `b[0]`.
    `mode="parallel"` is an associative scan; `"sequential"` an `ops.scan`.
    Both run over axis 0 after a transpose: TensorFlow's XLA failed to compile
    an associative scan along axis 1 (REFERENCE §6).
    """
    dtype = keras.backend.standardize_dtype(b[0].dtype)
    mode = _resolve_mode(mode, b[0].shape[1], training)
    time_major = [ops.transpose(ops.cast(t, "float32"), (1, 0, 2)) for t in (*a, *b)]
    n = len(a)
    a, b = time_major[:n], time_major[n:]
    if h0 is not None:
        h0 = [ops.cast(h, "float32") for h in h0]
    if mode == "parallel":
        if h0 is not None:  # fold h0 into the first step: b_0 ← b_0 + a_0·h0
            if n == 1:
                first = [b[0][:1] + a[0][:1] * h0[0][None]]
            else:
                fr, fi = _complex_mul(a[0][:1], a[1][:1], h0[0][None], h0[1][None])
                first = [b[0][:1] + fr, b[1][:1] + fi]
            b = [ops.concatenate([f, t[1:]], axis=0) for f, t in zip(first, b)]
        combine = _combine_real if n == 1 else _combine_complex
        h = _associative_scan(combine, (*a, *b), n)[n:]
    elif mode == "sequential":
        init = tuple(h0) if h0 is not None else tuple(ops.zeros_like(t[0]) for t in b)

        def step(carry, xs):
            if n == 1:
                new = (xs[0] * carry[0] + xs[1],)
            else:
                hr, hi = _complex_mul(xs[0], xs[1], carry[0], carry[1])
                new = (hr + xs[2], hi + xs[3])
            return new, new

        h = _sequential_scan(step, init, tuple(a + b))
    else:
        raise ValueError(f"_linear_scan: unknown `mode` {mode!r}; allowed: {', '.join(SCAN_MODES)}.")
    return [ops.cast(ops.transpose(t, (1, 0, 2)), dtype) for t in h]


@ops.custom_gradient
def _sqrt_bound_derivative(x):
    """√x whose derivative 1/(2√x) is bounded by `_MAX_SQRT_GRADIENT` (finite at 0)."""

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        return upstream / ops.sqrt(ops.maximum(4.0 * x, 1.0 / _MAX_SQRT_GRADIENT**2))

    return ops.sqrt(x), grad


# --- shared layer plumbing ---------------------------------------------------------


class _Recurrent(keras.layers.Layer):
    """Input and state checks, masks and output specs shared by LRU and RGLRU.

    Variables stay float32 and are not autocast (`autocast=False`): the layer
    computes in float32 and returns outputs in the dtype of its inputs.
    """

    def __init__(self, mode="auto", return_sequences=True, return_state=False, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        owner = type(self).__name__
        _check_mode(mode, owner)
        _check_bool("return_sequences", return_sequences, owner)
        _check_bool("return_state", return_state, owner)
        self.mode = mode
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.supports_masking = True
        self.input_dim = None

    def _check_inputs(self, shape, dtype=None):
        name = type(self).__name__
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(
                f"{name} '{self.name}': `inputs` must have rank 3 (batch, time, features); "
                f"got shape {shape}."
            )
        if self.input_dim is not None and shape[-1] != self.input_dim:
            raise ValueError(
                f"{name} '{self.name}' was built for inputs with last dimension "
                f"{self.input_dim}; got `inputs` of shape {shape}."
            )
        if dtype is not None and not keras.backend.is_float_dtype(dtype):
            raise ValueError(
                f"{name} '{self.name}': `inputs` must be floating point; "
                f"got dtype {keras.backend.standardize_dtype(dtype)}."
            )

    def _set_input_dim(self, input_shape):
        self._check_inputs(input_shape)
        if input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': the last dimension of `inputs` "
                f"must be known; got shape {tuple(input_shape)}."
            )
        self.input_dim = int(input_shape[-1])

    def _check_state(self, state, inputs):
        size = self.state_size
        shape = tuple(state.shape)
        batch = tuple(inputs.shape)[0]
        bad = len(shape) != 2 or (shape[1] is not None and shape[1] != size)
        bad = bad or (batch is not None and shape[0] is not None and shape[0] != batch)
        if bad:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': `initial_state` must have shape "
                f"(batch, {size}) = ({batch}, {size}); got shape {shape}."
            )

    @staticmethod
    def _mask(mask):
        return None if mask is None else ops.expand_dims(ops.cast(mask, "bool"), -1)

    @staticmethod
    def _last_valid(y, mask):
        """y at the last step where `mask` is True (at step 0 where none is)."""
        if mask is None:
            return y[:, -1]
        steps = ops.arange(ops.shape(y)[1])
        last = ops.max(ops.where(ops.cast(mask, "bool"), steps[None, :], 0), axis=1)
        pick = ops.cast(ops.equal(steps[None, :], last[:, None]), y.dtype)
        return ops.sum(y * pick[:, :, None], axis=1)

    def _finish(self, y, h_last, mask, dtype):
        if mask is not None:
            y = ops.where(self._mask(mask), y, 0.0)
        if not self.return_sequences:
            y = self._last_valid(y, mask)
        y = ops.cast(y, dtype)
        return (y, h_last) if self.return_state else y

    def compute_output_shape(self, input_shape):
        out = tuple(input_shape) if self.return_sequences else (input_shape[0], input_shape[-1])
        return (out, (input_shape[0], self.state_size)) if self.return_state else out

    def compute_output_spec(self, inputs, initial_state=None, mask=None, training=None):
        shape = tuple(inputs.shape)
        out = shape if self.return_sequences else (shape[0], shape[-1])
        y = keras.KerasTensor(out, dtype=inputs.dtype)
        if self.return_state:
            return y, keras.KerasTensor((shape[0], self.state_size), dtype="float32")
        return y

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        return (out, None) if self.return_state else out

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "return_state": self.return_state}


# --- LRU ---------------------------------------------------------------------------


class _LRUInit:
    """The paper's ring initialisation, as callables for `add_weight`."""

    @staticmethod
    def nu_log(r_min, r_max):
        uniform = keras.initializers.RandomUniform(0.0, 1.0)

        def init(shape, dtype=None):
            u = uniform(shape, dtype="float32")
            radius_sq = ops.clip(u * (r_max**2 - r_min**2) + r_min**2, 1e-30, 1.0)
            # ν = −log|λ| = −½·log(r²); clipped so r = 1 (the default r_max) stays finite.
            return ops.log(ops.maximum(-0.5 * ops.log(radius_sq), 1e-8))

        return init

    @staticmethod
    def theta_log(max_phase):
        uniform = keras.initializers.RandomUniform(0.0, 1.0)

        def init(shape, dtype=None):
            return ops.log(ops.maximum(max_phase * uniform(shape, dtype="float32"), 1e-8))

        return init


@keras.saving.register_keras_serializable(package="glu_zoo")
class LRU(_Recurrent):
    """Linear Recurrent Unit (Orvieto et al. 2023, arXiv 2303.06349).

    h_t = λ ⊗ h_{t−1} + γ ⊗ (x_t·B),  y_t = Re(h_t·C) + D ⊗ x_t, with the
    complex diagonal λ = exp(−exp(ν_log) + i·exp(θ_log)), γ = exp(γ_log),
    B = B_re + i·B_im, C = C_re + i·C_im. Output width = input width d.
    Weights: `nu_log`, `theta_log`, `gamma_log` (N,), `B_re`, `B_im` (d, N),
    `C_re`, `C_im` (N, d), `D` (d,). Init as the paper: |λ| uniform on the
    ring [r_min, r_max] (by area), arg λ uniform in [0, max_phase],
    γ = √(1 − |λ|²), B ~ N(0, 1/(2d)), C ~ N(0, 1/N), D ~ N(0, 1).
    The complex recurrence runs in real arithmetic (re, im) in float32;
    outputs take the input dtype.

    Args:
        state_dim: N, the number of complex state units.
        r_min, r_max: ring radii, 0 ≤ r_min < r_max ≤ 1.
        max_phase: largest initial phase, > 0 (default 2π).
        mode: "auto" (per backend and device), "parallel" (associative scan)
            or "sequential" (scan).
        return_sequences: all steps (batch, T, d), or the last valid step (batch, d).
        return_state: also return the final state, (outputs, state).

    `call(inputs, initial_state=None, mask=None)`: the state is one real
    float32 tensor (batch, 2N), [Re h | Im h]; a sequence run in chunks,
    carrying the state, equals the whole run. Where `mask` is False the state
    is carried unchanged and the output is 0.

        lru = LRU(64)
        y = lru(np.ones((2, 100, 16), "float32"))
        y.shape  # (2, 100, 16)
    """

    def __init__(self, state_dim, r_min=0.0, r_max=1.0, max_phase=2 * math.pi, mode="auto",
                 return_sequences=True, return_state=False, **kwargs):
        super().__init__(mode=mode, return_sequences=return_sequences,
                         return_state=return_state, **kwargs)
        _check_positive_int("state_dim", state_dim, "LRU")
        _check_number("r_min", r_min, "LRU", 0.0, 1.0, low_open=False)
        _check_number("r_max", r_max, "LRU", 0.0, 1.0, high_open=False)
        if r_min >= r_max:
            raise ValueError(f"LRU: `r_min` must be smaller than `r_max`; got r_min={r_min!r}, "
                             f"r_max={r_max!r} (allowed: 0 ≤ r_min < r_max ≤ 1).")
        _check_number("max_phase", max_phase, "LRU", 0.0, math.inf)
        self.state_dim = state_dim
        self.r_min = float(r_min)
        self.r_max = float(r_max)
        self.max_phase = float(max_phase)

    @property
    def state_size(self):
        return 2 * self.state_dim

    def build(self, input_shape):
        self._set_input_dim(input_shape)
        d, n = self.input_dim, self.state_dim
        self.nu_log = self.add_weight(name="nu_log", shape=(n,),
                                      initializer=_LRUInit.nu_log(self.r_min, self.r_max))
        self.theta_log = self.add_weight(name="theta_log", shape=(n,),
                                         initializer=_LRUInit.theta_log(self.max_phase))
        # γ = √(1 − |λ|²) = √(−expm1(−2·exp(ν_log))), finite even for |λ| → 1.
        gamma_log = 0.5 * ops.log(-ops.expm1(-2.0 * ops.exp(self.nu_log.value)))
        self.gamma_log = self.add_weight(name="gamma_log", shape=(n,),
                                         initializer=lambda shape, dtype=None: gamma_log)
        b_init = keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(2 * d))
        c_init = keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(n))
        self.B_re = self.add_weight(name="B_re", shape=(d, n), initializer=_fresh(b_init))
        self.B_im = self.add_weight(name="B_im", shape=(d, n), initializer=_fresh(b_init))
        self.C_re = self.add_weight(name="C_re", shape=(n, d), initializer=_fresh(c_init))
        self.C_im = self.add_weight(name="C_im", shape=(n, d), initializer=_fresh(c_init))
        self.D = self.add_weight(name="D", shape=(d,),
                                 initializer=keras.initializers.RandomNormal(stddev=1.0))

    def call(self, inputs, initial_state=None, mask=None, training=None):
        self._check_inputs(inputs.shape, inputs.dtype)
        dtype = inputs.dtype
        x = ops.cast(inputs, "float32")
        modulus = ops.exp(-ops.exp(self.nu_log))
        phase = ops.exp(self.theta_log)
        gamma = ops.exp(self.gamma_log)
        b_re = ops.matmul(x, self.B_re) * gamma
        b_im = ops.matmul(x, self.B_im) * gamma
        a_re = ops.zeros_like(b_re) + modulus * ops.cos(phase)
        a_im = ops.zeros_like(b_im) + modulus * ops.sin(phase)
        m = self._mask(mask)
        if m is not None:  # padded steps: a = 1, b = 0 (state carried unchanged)
            a_re, a_im = ops.where(m, a_re, 1.0), ops.where(m, a_im, 0.0)
            b_re, b_im = ops.where(m, b_re, 0.0), ops.where(m, b_im, 0.0)
        h0 = None
        if initial_state is not None:
            self._check_state(initial_state, inputs)
            h0 = ops.split(ops.cast(initial_state, "float32"), 2, axis=-1)
        h_re, h_im = _linear_scan([a_re, a_im], [b_re, b_im], h0, self.mode, training)
        y = ops.matmul(h_re, self.C_re) - ops.matmul(h_im, self.C_im) + x * self.D
        state = ops.concatenate([h_re[:, -1], h_im[:, -1]], axis=-1)
        return self._finish(y, state, mask, dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "state_dim": self.state_dim,
            "r_min": self.r_min,
            "r_max": self.r_max,
            "max_phase": self.max_phase,
            "return_sequences": self.return_sequences,
        }


@keras.saving.register_keras_serializable(package="glu_zoo")
class LRUBlock(keras.layers.Layer):
    """Orvieto et al.'s LRU block: LRU → GELU → GLU → residual → norm.

    u = Dropout(GELU(LRU(x))), g = u·W + b split in halves (value, gate),
    output = LayerNorm(x + Dropout(value ⊗ σ(gate))); with `norm_first` the
    norm moves in front: output = x + Dropout(value ⊗ σ(gate)) computed from
    LRU(LayerNorm(x)). Weights: the `lru` sub-layer's, `glu` (a Dense, kernel
    (d, 2d), [:d] value, [d:] gate) and `norm` (LayerNormalization).

    Args:
        state_dim, r_min, r_max, max_phase, mode: the LRU's (see `LRU`).
        dropout: rate in [0, 1) after the GELU and after the GLU.
        norm_first: pre-norm instead of the post-norm of the paper's block.
        return_state: also return the LRU state, (outputs, state); pass it
            back as `initial_state` to run a sequence in chunks.

    `mask` goes to the LRU (padded steps keep its state).

        block = LRUBlock(128)
        y = block(np.ones((2, 100, 64), "float32"))
        y.shape  # (2, 100, 64)
    """

    def __init__(self, state_dim, r_min=0.0, r_max=1.0, max_phase=2 * math.pi, dropout=0.0,
                 norm_first=False, mode="auto", return_state=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"LRUBlock: `dropout` must be a number in [0, 1); got {dropout!r}.")
        _check_bool("norm_first", norm_first, "LRUBlock")
        _check_bool("return_state", return_state, "LRUBlock")
        self.lru = LRU(state_dim, r_min=r_min, r_max=r_max, max_phase=max_phase, mode=mode,
                       return_state=True, dtype=self.dtype_policy, name="lru")
        self.state_dim, self.r_min, self.r_max = state_dim, float(r_min), float(r_max)
        self.max_phase, self.mode = float(max_phase), mode
        self.dropout, self.norm_first, self.return_state = float(dropout), norm_first, return_state
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="norm")
        self.drop = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        self.glu = None
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"LRUBlock '{self.name}': `inputs` must have shape (batch, time, features) "
                             f"with known features; got shape {tuple(input_shape)}.")
        d = int(input_shape[-1])
        self.glu = keras.layers.Dense(2 * d, dtype=self.dtype_policy, name="glu")
        self.norm.build(input_shape)
        self.lru.build(input_shape)
        self.glu.build(input_shape)

    def call(self, inputs, initial_state=None, mask=None, training=None):
        x = self.norm(inputs) if self.norm_first else inputs
        u, state = self.lru(x, initial_state=initial_state, mask=mask, training=training)
        u = self.drop(ops.gelu(u, approximate=False), training=training)
        value, gate = ops.split(self.glu(u), 2, axis=-1)
        out = inputs + self.drop(value * ops.sigmoid(gate), training=training)
        if not self.norm_first:
            out = self.norm(out)
        return (out, state) if self.return_state else out

    def compute_output_spec(self, inputs, initial_state=None, mask=None, training=None):
        y = keras.KerasTensor(tuple(inputs.shape), dtype=self.compute_dtype)
        if not self.return_state:
            return y
        return y, keras.KerasTensor((inputs.shape[0], 2 * self.state_dim), dtype="float32")

    def compute_mask(self, inputs, mask=None):
        return (mask, None) if self.return_state else mask

    def get_config(self):
        return {
            **super().get_config(),
            "state_dim": self.state_dim,
            "r_min": self.r_min,
            "r_max": self.r_max,
            "max_phase": self.max_phase,
            "dropout": self.dropout,
            "norm_first": self.norm_first,
            "mode": self.mode,
            "return_state": self.return_state,
        }


# --- RG-LRU --------------------------------------------------------------------------


def _a_param_init(min_rad, max_rad=0.999, eps=1e-8):
    """recurrentgemma's `rnn_param_init`: a² ~ U[min_rad² + ε, max_rad² + ε],
    a_param = softplus⁻¹(−log a) = log(exp(−log a) − 1)."""
    uniform = keras.initializers.RandomUniform(min_rad**2 + eps, max_rad**2 + eps)

    def init(shape, dtype=None):
        log_a = 0.5 * ops.log(uniform(shape, dtype="float32"))
        return ops.log(ops.exp(-log_a) - 1.0)

    return init


def _block_diagonal(x, kernel, bias):
    """x (batch, time, H·w) → y_h = x_h·W_h + b_h per head h, back to (batch, time, H·w)."""
    heads, block = kernel.shape[0], kernel.shape[1]
    shape = ops.shape(x)
    xh = ops.reshape(x, (shape[0], shape[1], heads, block))
    y = ops.einsum("bthi,hij->bthj", xh, kernel) + bias
    return ops.reshape(y, (shape[0], shape[1], heads * block))


@keras.saving.register_keras_serializable(package="glu_zoo")
class RGLRU(_Recurrent):
    """Real-Gated Linear Recurrent Unit (Griffin, De et al. 2024, arXiv 2402.19427).

    gate_x = σ(BlockDiag_x(x)), gate_a = σ(BlockDiag_a(x)),
    log a_t = −c·gate_a·softplus(a_param),
    h_t = a_t ⊗ h_{t−1} + √(1 − a_t²) ⊗ (gate_x ⊗ x_t),  y_t = h_t.
    The layout and semantics of `recurrentgemma`'s RGLRU: weights `a_param`
    (width,), `input_gate_kernel`, `a_gate_kernel` (num_heads, width/num_heads,
    width/num_heads), `input_gate_bias`, `a_gate_bias` (num_heads,
    width/num_heads); the gates are block-diagonal over heads. At the first
    (valid) step, when no state is carried in, the state resets: a = 0 and
    the multiplier is 1, so h_0 = gate_x ⊗ x_0; with `initial_state` there is
    no reset. √ has a derivative bounded by 1000 (finite at 0). Init: a²
    uniform in [min_rad², 0.999²], a_param = softplus⁻¹(−log a); gate kernels
    ~ N(0, 1/(width/num_heads)), biases 0. Computes in float32; outputs take
    the input dtype.

    Args:
        width: input and output width.
        num_heads: number of gate blocks; must divide `width`.
        c: the scale of log a (8 in Griffin), > 0.
        min_rad: smallest initial |a|, in (0, 1) (0.9 in Griffin, 0.5 in TRecViT).
        mode: "auto", "parallel" or "sequential".
        return_state: also return the final state, (outputs, state (batch, width)).

    `call(inputs, initial_state=None, mask=None)`: `initial_state` is the
    float32 state (batch, width). Where `mask` is False the state is carried
    unchanged and the output is 0.

        rglru = RGLRU(64, num_heads=4)
        y = rglru(np.ones((2, 100, 64), "float32"))
        y.shape  # (2, 100, 64)
    """

    def __init__(self, width, num_heads=1, c=8.0, min_rad=0.9, mode="auto",
                 return_state=False, **kwargs):
        super().__init__(mode=mode, return_sequences=True, return_state=return_state, **kwargs)
        _check_positive_int("width", width, "RGLRU")
        _check_positive_int("num_heads", num_heads, "RGLRU")
        if width % num_heads:
            raise ValueError(f"RGLRU: `width` must be divisible by `num_heads`; got "
                             f"width={width!r}, num_heads={num_heads!r}.")
        _check_number("c", c, "RGLRU", 0.0, math.inf)
        _check_number("min_rad", min_rad, "RGLRU", 0.0, 1.0)
        self.width = width
        self.num_heads = num_heads
        self.c = float(c)
        self.min_rad = float(min_rad)

    @property
    def state_size(self):
        return self.width

    def build(self, input_shape):
        self._set_input_dim(input_shape)
        if self.input_dim != self.width:
            raise ValueError(f"RGLRU '{self.name}': the last dimension of `inputs` must equal "
                             f"`width`={self.width}; got shape {tuple(input_shape)}.")
        h, w = self.num_heads, self.width // self.num_heads
        kernel = keras.initializers.RandomNormal(stddev=math.sqrt(1.0 / w))
        self.a_param = self.add_weight(name="a_param", shape=(self.width,),
                                       initializer=_a_param_init(self.min_rad))
        self.input_gate_kernel = self.add_weight(name="input_gate_kernel", shape=(h, w, w),
                                                 initializer=_fresh(kernel))
        self.input_gate_bias = self.add_weight(name="input_gate_bias", shape=(h, w),
                                               initializer="zeros")
        self.a_gate_kernel = self.add_weight(name="a_gate_kernel", shape=(h, w, w),
                                             initializer=_fresh(kernel))
        self.a_gate_bias = self.add_weight(name="a_gate_bias", shape=(h, w), initializer="zeros")

    def call(self, inputs, initial_state=None, mask=None, training=None):
        self._check_inputs(inputs.shape, inputs.dtype)
        dtype = inputs.dtype
        x = ops.cast(inputs, "float32")
        gate_x = ops.sigmoid(_block_diagonal(x, self.input_gate_kernel, self.input_gate_bias))
        gate_a = ops.sigmoid(_block_diagonal(x, self.a_gate_kernel, self.a_gate_bias))
        log_a = -self.c * gate_a * ops.softplus(self.a_param)
        a = ops.exp(log_a)
        multiplier = _sqrt_bound_derivative(1.0 - ops.exp(2.0 * log_a))
        m = self._mask(mask)
        h0 = None
        if initial_state is not None:
            self._check_state(initial_state, inputs)
            h0 = [ops.cast(initial_state, "float32")]
        else:  # reset at the first valid step: a = 0, multiplier = 1
            if m is None:
                reset = ops.equal(ops.arange(ops.shape(x)[1]), 0)[None, :, None]
            else:
                reset = ops.logical_and(m, ops.equal(ops.cumsum(ops.cast(m, "int32"), axis=1), 1))
            a = ops.where(reset, 0.0, a)
            multiplier = ops.where(reset, 1.0, multiplier)
        b = x * gate_x * multiplier
        if m is not None:
            a, b = ops.where(m, a, 1.0), ops.where(m, b, 0.0)
        (h,) = _linear_scan([a], [b], h0, self.mode, training)
        return self._finish(h, h[:, -1], mask, dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "num_heads": self.num_heads,
            "c": self.c,
            "min_rad": self.min_rad,
        }


# --- the Griffin / TRecViT temporal block ---------------------------------------------


@keras.saving.register_keras_serializable(package="glu_zoo")
class RecurrentBlock(keras.layers.Layer):
    """Griffin's recurrent block with pre-norm and residual, as TRecViT's time mixing.

    n = RMSNorm(x) = x/√(mean(x²) + 1e-6)·(1 + scale),
    y = GELU(n·Wy + by), u = CausalConv1D(n·Wx + bx), x' = RG-LRU(u),
    output = x + (x' ⊗ y)·Wout + bout.
    GELU is the tanh approximation, as `recurrentgemma`; the causal conv is
    depthwise (one filter of `conv_width` taps per channel, with bias; tap
    conv_width−1 multiplies the current step), as `recurrentgemma`'s Conv1D.
    Weights: `norm_scale` (width,), `linear_y_kernel`, `linear_x_kernel`
    (width, lru_width) with `linear_y_bias`, `linear_x_bias`, `conv_kernel`
    (conv_width, lru_width), `conv_bias`, `linear_out_kernel` (lru_width,
    width), `linear_out_bias`, and the `rg_lru` sub-layer's. Init as
    `recurrentgemma`: projections ~ N(0, 1/fan_in), conv ~ N(0, 0.01/conv_width),
    biases and the norm scale 0.

    Args:
        width: input and output width.
        lru_width: width of the RG-LRU branch (default `width`).
        num_heads: RG-LRU gate blocks; must divide `lru_width`.
        conv_width: taps of the causal temporal convolution (4).
        mode: the RG-LRU scan mode, "auto", "parallel" or "sequential".
        min_rad: RG-LRU initial smallest |a| (0.9 Griffin; TRecViT uses 0.5).
        return_state: also return the state (conv_state (batch, conv_width−1,
            lru_width), lru_state (batch, lru_width)); pass it back as
            `initial_state` so that a sequence run in chunks equals one run.

    `mask` goes to the RG-LRU (padded steps keep its state; the block's output
    there equals its input). The conv state is exact for unpadded inputs only.

        block = RecurrentBlock(64, lru_width=128, num_heads=4)
        y = block(np.ones((2, 100, 64), "float32"))
        y.shape  # (2, 100, 64)
    """

    def __init__(self, width, lru_width=None, num_heads=1, conv_width=4, mode="auto",
                 min_rad=0.9, return_state=False, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int("width", width, "RecurrentBlock")
        if lru_width is not None:
            _check_positive_int("lru_width", lru_width, "RecurrentBlock")
        _check_positive_int("num_heads", num_heads, "RecurrentBlock")
        _check_positive_int("conv_width", conv_width, "RecurrentBlock")
        _check_mode(mode, "RecurrentBlock")
        _check_bool("return_state", return_state, "RecurrentBlock")
        if (lru_width or width) % num_heads:
            raise ValueError(f"RecurrentBlock: `lru_width` (default `width`) must be divisible by "
                             f"`num_heads`; got lru_width={lru_width or width!r}, num_heads={num_heads!r}.")
        self.width = width
        self.lru_width = lru_width
        self.num_heads = num_heads
        self.conv_width = conv_width
        self.mode = mode
        self.min_rad = float(min_rad)
        self.return_state = return_state
        self.rg_lru = RGLRU(self._lru_width, num_heads=num_heads, min_rad=min_rad, mode=mode,
                            return_state=True, dtype=self.dtype_policy, name="rg_lru")
        self.supports_masking = True

    @property
    def _lru_width(self):
        return self.lru_width or self.width

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] != self.width:
            raise ValueError(f"RecurrentBlock '{self.name}': `inputs` must have shape (batch, time, "
                             f"{self.width}); got shape {tuple(input_shape)}.")
        d, lw, k = self.width, self._lru_width, self.conv_width

        def normal(fan_in, scale=1.0):
            return keras.initializers.RandomNormal(stddev=math.sqrt(scale / fan_in))

        self.norm_scale = self.add_weight(name="norm_scale", shape=(d,), initializer="zeros")
        self.linear_y_kernel = self.add_weight(name="linear_y_kernel", shape=(d, lw),
                                               initializer=normal(d))
        self.linear_y_bias = self.add_weight(name="linear_y_bias", shape=(lw,), initializer="zeros")
        self.linear_x_kernel = self.add_weight(name="linear_x_kernel", shape=(d, lw),
                                               initializer=normal(d))
        self.linear_x_bias = self.add_weight(name="linear_x_bias", shape=(lw,), initializer="zeros")
        self.conv_kernel = self.add_weight(name="conv_kernel", shape=(k, lw),
                                           initializer=normal(k, 0.01))
        self.conv_bias = self.add_weight(name="conv_bias", shape=(lw,), initializer="zeros")
        self.linear_out_kernel = self.add_weight(name="linear_out_kernel", shape=(lw, d),
                                                 initializer=normal(lw))
        self.linear_out_bias = self.add_weight(name="linear_out_bias", shape=(d,),
                                               initializer="zeros")
        self.rg_lru.build((input_shape[0], input_shape[1], lw))

    def _conv(self, u, conv_state):
        """Causal depthwise conv of u (batch, T, lru_width), with the previous
        conv_width − 1 inputs in `conv_state` (zeros when None)."""
        k = self.conv_width
        if k == 1:
            return u * self.conv_kernel[0] + self.conv_bias, conv_state
        if conv_state is None:
            conv_state = ops.zeros_like(u[:, :1]) * ops.zeros((1, k - 1, 1), dtype=u.dtype)
        padded = ops.concatenate([ops.cast(conv_state, u.dtype), u], axis=1)
        t = ops.shape(u)[1]
        out = self.conv_bias
        for tap in range(k):
            out = out + padded[:, tap:tap + t] * self.conv_kernel[tap]
        return out, padded[:, -(k - 1):]

    def call(self, inputs, initial_state=None, mask=None, training=None):
        if len(inputs.shape) != 3 or inputs.shape[-1] != self.width:
            raise ValueError(f"RecurrentBlock '{self.name}': `inputs` must have shape (batch, time, "
                             f"{self.width}); got shape {tuple(inputs.shape)}.")
        conv_state = lru_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
                raise ValueError(f"RecurrentBlock '{self.name}': `initial_state` must be a pair "
                                 f"(conv_state, lru_state); got {type(initial_state).__name__}.")
            conv_state, lru_state = initial_state
            expected = (inputs.shape[0], self.conv_width - 1, self._lru_width)
            shape = tuple(conv_state.shape)
            if len(shape) != 3 or tuple(shape[1:]) != expected[1:]:
                raise ValueError(f"RecurrentBlock '{self.name}': `initial_state` conv_state must "
                                 f"have shape {expected}; got shape {shape}.")
        x = ops.cast(inputs, "float32")
        normed = x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + 1e-6)
        normed = ops.cast(normed * (1.0 + ops.cast(self.norm_scale, "float32")), self.compute_dtype)
        y = ops.gelu(ops.matmul(normed, self.linear_y_kernel) + self.linear_y_bias, approximate=True)
        u = ops.matmul(normed, self.linear_x_kernel) + self.linear_x_bias
        u, conv_state = self._conv(u, conv_state)
        h, lru_state = self.rg_lru(u, initial_state=lru_state, mask=mask, training=training)
        out = ops.matmul(ops.cast(h, y.dtype) * y, self.linear_out_kernel) + self.linear_out_bias
        if mask is not None:
            out = ops.where(ops.expand_dims(ops.cast(mask, "bool"), -1), out, 0.0)
        out = ops.cast(inputs, out.dtype) + out
        return (out, (conv_state, lru_state)) if self.return_state else out

    def compute_output_spec(self, inputs, initial_state=None, mask=None, training=None):
        shape = tuple(inputs.shape)
        y = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not self.return_state:
            return y
        return y, (keras.KerasTensor((shape[0], self.conv_width - 1, self._lru_width),
                                     dtype=self.compute_dtype),
                   keras.KerasTensor((shape[0], self._lru_width), dtype="float32"))

    def compute_mask(self, inputs, mask=None):
        return (mask, None) if self.return_state else mask

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "lru_width": self.lru_width,
            "num_heads": self.num_heads,
            "conv_width": self.conv_width,
            "mode": self.mode,
            "min_rad": self.min_rad,
            "return_state": self.return_state,
        }
