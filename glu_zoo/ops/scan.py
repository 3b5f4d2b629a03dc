"""Scans and linear recurrences on every backend: the one home of scan code.

- `associative_scan(combine, elems, identity, axis=1, reverse=False)`: the
  inclusive scan of an associative `combine` along `axis`.
- `sequential_scan(step, init, xs, axis=1, reverse=False)`: the stacked
  carries of a step-by-step scan.
- `linear_recurrence(a, b, h0=None, kind="diagonal", mode="auto",
  reverse=False, training=None)`: every state of h_t = a_t ∘ h_{t−1} + b_t.

A linear recurrence is the scan of the pairs (a_t, b_t) under the associative
composition "step 1, then step 2": (a₁, b₁)·(a₂, b₂) = (a₂a₁, a₂∘b₁ + b₂),
with the identity (1, 0) (Blelloch 1990, "Prefix sums and their
applications"; Martin & Cundy 2018, arXiv 1709.04057). Four modes compute
it, all to float32 rounding of the same result:

- "sequential": one step per time step (`lax.scan`, `tf.scan`, a Python loop
  on torch); O(T) work, T dependent steps.
- "parallel": the associative scan; O(T) work in ~2·log2 T steps
  (`lax.associative_scan`, Keras's on torch) or, on TensorFlow, recursive
  doubling, O(T log T) work in log2 T steps (XLA cannot compile Keras's).
- "chunked": time cut into L chunks of C ≈ √T steps (a power of 2, static
  per T; the tail padded): a sequential scan over the C steps of every chunk
  at once (the chunk is a batch axis), which also gives each chunk's summary
  (A = the product of its a, H = its last state from a zero start); a
  sequential scan over the L summaries gives the state entering each chunk;
  one vectorised fix-up h_t += (a_t·…·a_{chunk start}) ∘ H_{previous chunk}
  finishes. O(T) work in ≈ C + L = 2√T steps of static shapes, exact for any
  a (zeros, negatives, complex, dense matrices). Inside the chunks: `lax.scan`
  on JAX, `tf.scan` on TensorFlow, a Python loop on torch.
- "auto": one of them, by `resolve_mode` (below).

The gradient of every mode is the adjoint recurrence, run backwards in the
same mode (see `_adjoint`), not autodiff through the scan. All accumulate in
float32 (float64 inputs in float64) whatever the input dtype; the states
take the dtype of `b`.
"""

import functools
import json
import math
import os

import keras
from keras import ops

__all__ = [
    "KINDS",
    "SCAN_MODES",
    "associative_scan",
    "device_kind",
    "linear_recurrence",
    "resolve_mode",
    "sequential_scan",
]

SCAN_MODES = ("auto", "parallel", "sequential", "chunked")
KINDS = ("diagonal", "complex_diagonal", "dense")

# --- the auto table ---------------------------------------------------------------
#
# mode="auto" reads scan_auto.json (beside this file), written by
# `python tools/bench_scan.py --table`: per backend and device kind ("cpu",
# "accelerator"), rows [T bound, mode] for the forward pass and for the
# train step; the first row whose bound ≥ T wins, a null bound takes any T
# (and an unknown T). The "accelerator" rows were never measured (no GPU
# or TPU was lent when the table was made): they say "measured": false and
# pick "parallel", the form that fills many cores; a run of bench_scan on an
# accelerator replaces them.

_TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scan_auto.json")


@functools.lru_cache(maxsize=None)
def _auto_table():
    with open(_TABLE_PATH) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def device_kind():
    """"accelerator" when the backend's default device is a GPU or TPU, else "cpu" (cached)."""
    try:
        if keras.backend.backend() == "torch":
            import torch

            return "accelerator" if torch.cuda.is_available() else "cpu"
        devices = keras.distribution.list_devices()
        return "accelerator" if any("gpu" in str(d).lower() or "tpu" in str(d).lower() for d in devices) else "cpu"
    except Exception:  # no distribution support for this backend: assume CPU
        return "cpu"


def resolve_mode(mode, length=None, training=None):
    """The scan mode that runs: `mode` itself, or for "auto" the table's row
    for this backend, device kind, sequence length `length` (None: unknown)
    and Keras's `training` flag ("sequential" where the table has no row
    for the backend and device kind).

    The rule is the same on every backend: `training=True` (what `fit` and
    `train_on_batch` pass) reads the "train" rows; False or None (predict,
    evaluate, a plain `model(x)` even with gradients enabled on torch)
    reads the "forward" rows. Every mode computes the same states to float32
    rounding, so the choice changes speed and memory, not results.
    """
    if mode != "auto":
        return mode
    entry = _auto_table().get(keras.backend.backend(), {}).get(device_kind())
    if entry is None:  # a backend or device kind the table does not know
        return "sequential"
    rows = entry["train" if training else "forward"]
    for bound, picked in rows:
        if bound is None or (length is not None and length <= bound):
            return picked
    return rows[-1][1]


# --- generic scans ----------------------------------------------------------------


def _moveaxis(x, source, destination):
    return x if source == destination else ops.moveaxis(x, source, destination)


def associative_scan(combine, elems, identity, axis=1, reverse=False):
    """The inclusive scan of `elems` along `axis` under `combine`.

    out_t = e_0 ⊕ e_1 ⊕ … ⊕ e_t with ⊕ = `combine(earlier, later)`, which
    must be associative and work on whole slices (element-wise over the other
    axes). `elems`: a tuple of tensors of equal length along `axis`;
    `combine` takes and returns tuples like it. `identity`: a tuple of the
    neutral element's parts, each broadcastable to one slice (e.g. `(1.0,
    0.0)` for the pairs (a, b) of a diagonal linear recurrence); the
    TensorFlow path pads with it. `reverse=True` scans from the end:
    flip(scan(flip(elems))) along `axis`, with the same `combine`.

    Backends: `jax.lax.associative_scan` (jitted, so that an eager call is one
    dispatch rather than ~2·log2 T); on TensorFlow with a static length,
    recursive doubling (Hillis & Steele 1986: log2 T steps of static shapes,
    O(T log T) work; Keras's scan traces a `tf.cond` that XLA fails to
    compile, "Cannot concatenate arrays that differ in dimensions"); else
    `keras.ops.associative_scan`.
    """
    elems = tuple(elems)
    identity = tuple(identity)
    if len(identity) != len(elems):
        raise ValueError(f"associative_scan: `identity` must have one part per element of `elems` "
                         f"({len(elems)}); got {len(identity)}.")
    axes = [axis % len(e.shape) for e in elems]
    moved = tuple(_moveaxis(e, ax, 0) for e, ax in zip(elems, axes))
    if reverse:
        moved = tuple(ops.flip(e, 0) for e in moved)
    out = _associative_scan_axis0(combine, moved, identity)
    if reverse:
        out = tuple(ops.flip(e, 0) for e in out)
    return tuple(_moveaxis(e, 0, ax) for e, ax in zip(out, axes))


def _associative_scan_axis0(combine, elems, identity):
    backend = keras.backend.backend()
    if backend == "jax":
        return tuple(_jax_associative_scan(combine)(elems))
    if backend == "tensorflow":
        if elems[0].shape[0] is not None:
            return _doubling_scan(combine, elems, identity)
        out = ops.associative_scan(lambda x, y: tuple(combine(x, y)), elems, axis=0)
        return tuple(ops.reshape(t, ops.shape(e)) for t, e in zip(out, elems))  # graph mode loses the rank
    return tuple(ops.associative_scan(lambda x, y: tuple(combine(tuple(x), tuple(y))), elems, axis=0))


@functools.lru_cache(maxsize=64)
def _jax_associative_scan(combine):
    import jax

    return jax.jit(lambda elems: jax.lax.associative_scan(lambda x, y: tuple(combine(x, y)), elems, axis=0))


def _doubling_scan(combine, elems, identity):
    """Inclusive scan over axis 0 by recursive doubling: at step k each
    element is combined with the one 2^k before it, the missing ones being
    `identity`. log2(T) steps of static shapes."""
    length = elems[0].shape[0]
    shift = 1
    while shift < length:
        earlier = tuple(
            ops.concatenate([ops.zeros_like(e[:shift]) + ops.cast(i, e.dtype), e[:-shift]], axis=0)
            for e, i in zip(elems, identity)
        )
        elems = tuple(combine(earlier, elems))
        shift *= 2
    return elems


def sequential_scan(step, init, xs, axis=1, reverse=False):
    """The carries of a step-by-step scan, stacked along `axis`.

    carry_t = step(carry_{t−1}, x_t) with carry_{−1} = `init`; returns
    (carry_0, …, carry_{T−1}) stacked on `axis` (the carries' own axes move
    one up from there). `init`: a tuple of tensors; `xs`: a tuple of tensors
    scanned along `axis`; `step(carry, x)` takes and returns tuples.
    `reverse=True` runs from the end (carry_t = step(carry_{t+1}, x_t)).

    Backends: JAX `lax.scan` (`keras.ops.scan`). TensorFlow `tf.scan`:
    Keras's TensorFlow scan builds a while loop without
    `maximum_iterations`, whose gradient XLA refuses ("XLA compilation
    requires a fixed tensor list size"), and it fails when the length is
    unknown. torch: a Python loop over `unstack`ed steps (`torch.unbind`,
    whose gradient is one stack; the per-step indexing of Keras's torch scan
    back-propagates a full-size zero tensor per step, O(T²)).
    """
    init, xs = tuple(init), tuple(xs)
    axes = [axis % len(x.shape) for x in xs]
    moved = tuple(_moveaxis(x, ax, 0) for x, ax in zip(xs, axes))
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        carries = tf.scan(lambda c, x: tuple(step(tuple(c), tuple(x))), moved, initializer=init, reverse=reverse)
    elif backend == "jax":
        def body(c, x):
            new = tuple(step(tuple(c), tuple(x)))
            return new, new

        carries = ops.scan(body, init, moved, reverse=reverse)[1]
    else:
        carries = _python_scan(step, init, moved, reverse)
    out_axis = axis % (len(init[0].shape) + 1)
    return tuple(_moveaxis(c, 0, out_axis) for c in carries)


def _python_scan(step, init, xs, reverse=False):
    """`sequential_scan` over axis 0 as a Python loop (unrolled when traced)."""
    steps = [ops.unstack(x, axis=0) for x in xs]
    order = range(len(steps[0]) - 1, -1, -1) if reverse else range(len(steps[0]))
    carry, out = init, [None] * len(steps[0])
    for t in order:
        carry = tuple(step(carry, tuple(s[t] for s in steps)))
        out[t] = carry
    return tuple(ops.stack([c[i] for c in out], axis=0) for i in range(len(init)))


# --- linear recurrences ------------------------------------------------------------
#
# Internally a recurrence is a tuple `a` (one tensor, or (re, im)) and a
# tuple `b` like it, batch first and time on axis 1. Each kind gives
# apply(a, h) = a ∘ h and compose(later, earlier) = later ∘ earlier.


def _add(x, y):
    return tuple(p + q for p, q in zip(x, y))


class _Diagonal:
    parts = 1

    @staticmethod
    def apply(a, h):
        return (a[0] * h[0],)

    compose = apply

    @staticmethod
    def identity(b):
        return (1.0,)

    @staticmethod
    def adjoint(a):
        return a

    grad_a = apply  # ∂L/∂a_t = λ_t ⊗ h_{t−1}


class _ComplexDiagonal:
    parts = 2

    @staticmethod
    def apply(a, h):
        (ar, ai), (hr, hi) = a, h
        return ar * hr - ai * hi, ar * hi + ai * hr

    compose = apply

    @staticmethod
    def identity(b):
        return 1.0, 0.0

    @staticmethod
    def adjoint(a):
        return a[0], -a[1]

    @staticmethod
    def grad_a(lam, h):  # λ ⊗ conj(h)
        (lr, li), (hr, hi) = lam, h
        return lr * hr + li * hi, li * hr - lr * hi


class _Dense:
    parts = 1

    @staticmethod
    def apply(a, h):
        return (ops.squeeze(ops.matmul(a[0], ops.expand_dims(h[0], -1)), -1),)

    @staticmethod
    def compose(later, earlier):
        return (ops.matmul(later[0], earlier[0]),)

    @staticmethod
    def identity(b):
        return (ops.eye(b[0].shape[-1], dtype=b[0].dtype),)

    @staticmethod
    def adjoint(a):
        return (ops.swapaxes(a[0], -1, -2),)

    @staticmethod
    def grad_a(lam, h):  # λ hᵀ
        return (ops.expand_dims(lam[0], -1) * ops.expand_dims(h[0], -2),)


_KINDS = {"diagonal": _Diagonal, "complex_diagonal": _ComplexDiagonal, "dense": _Dense}


def _make_combine(spec):
    n = spec.parts

    def combine(first, second):
        a1, b1, a2, b2 = first[:n], first[n:], second[:n], second[n:]
        return (*spec.compose(a2, a1), *_add(spec.apply(a2, b1), b2))

    return combine


# One function per kind, so that the jitted JAX scan is cached.
_COMBINE = {name: _make_combine(spec) for name, spec in _KINDS.items()}

# Chunked mode: sequences this short run unrolled step by step.
_UNROLL_MAX = 8
# Chunked mode: the loop inside the chunks, "scan" (`sequential_scan`) or
# "python" (unrolled when traced).
_INNER_LOOP = {"jax": "scan", "tensorflow": "scan", "torch": "python"}


def _chunk_size(length):
    """C ≈ √T, the power of 2 at or above it (so that L = ⌈T/C⌉ ≤ C)."""
    return 2 ** math.ceil(math.log2(length) / 2)


def linear_recurrence(a, b, h0=None, kind="diagonal", mode="auto", reverse=False, training=None):
    """Every state of the linear recurrence h_t = a_t ∘ h_{t−1} + b_t.

    Batch first, time on axis 1; h_{−1} = `h0` (None: zeros). Returns the
    states of every step, shaped like `b`. With `reverse=True` the same
    recurrence runs from the end, h_t = a_t ∘ h_{t+1} + b_t with h_T = `h0`
    (as flipping time, running forward and flipping back).

    Kinds (the trailing shape "…" is any, rank 0 included):
    - "diagonal": a_t ∘ h = a_t ⊗ h element-wise. `b` (batch, T, …); `a`
      broadcastable to it (e.g. (1, 1, …) for an a constant in time and
      batch); `h0` (batch, …).
    - "complex_diagonal": the same with complex numbers, each given as a pair
      of real tensors (re, im): `a = (a_re, a_im)`, `b = (b_re, b_im)`,
      `h0 = (h0_re, h0_im)` or None; returns the pair (h_re, h_im).
      a ∘ h = (a_re·h_re − a_im·h_im, a_re·h_im + a_im·h_re).
    - "dense": a_t ∘ h = a_t @ h, a matrix per step. `b` (batch, T, …, d);
      `a` (batch, T, …, d, d), broadcastable in its leading axes; `h0`
      (batch, …, d). The scan composes (A₁, b₁)·(A₂, b₂) = (A₂A₁, A₂b₁ + b₂)
      from the identity (I, 0): O(d³) per step in "parallel" and "chunked",
      O(d²) in "sequential".

    Args:
        a, b, h0: as above; any float dtype.
        kind: "diagonal", "complex_diagonal" or "dense".
        mode: "sequential", "parallel", "chunked" or "auto" (see the module
            docstring and `resolve_mode`).
        reverse: run from the last step to the first.
        training: Keras's training flag, read by mode "auto" only.

    Accumulates in float32 (float64 stays float64) whatever the dtype of the
    inputs, which may be float16 or bfloat16; the states take `b`'s dtype.
    A chunked or TensorFlow-parallel scan needs a length known when traced;
    with an unknown length they run "sequential" and Keras's associative
    scan respectively.

        h = linear_recurrence(a, b)                          # a, b: (2, 100, 8)
        h_re, h_im = linear_recurrence((ar, ai), (br, bi), kind="complex_diagonal")
        h = linear_recurrence(A, b, h0, kind="dense")        # A: (2, 100, 4, 4), b: (2, 100, 4)
    """
    if kind not in _KINDS:
        raise ValueError(f"linear_recurrence: unknown `kind` {kind!r}; allowed: {', '.join(KINDS)}.")
    if mode not in SCAN_MODES:
        raise ValueError(f"linear_recurrence: unknown `mode` {mode!r}; allowed: {', '.join(SCAN_MODES)}.")
    spec = _KINDS[kind]
    a, b, h0 = _as_parts(kind, a, b, h0)
    out_dtype = keras.backend.standardize_dtype(b[0].dtype)
    compute = "float64" if out_dtype == "float64" else "float32"
    a = tuple(ops.cast(t, compute) for t in a)
    b = tuple(ops.cast(t, compute) for t in b)
    h0 = None if h0 is None else tuple(ops.cast(t, compute) for t in h0)
    length = b[0].shape[1]
    mode = resolve_mode(mode, length, training)
    if length is None and mode == "chunked":
        mode = "sequential"
    constant = a[0].shape[1] == 1 and length != 1  # a constant in time
    if reverse:
        b = tuple(ops.flip(t, 1) for t in b)
        if not constant:
            a = tuple(ops.flip(t, 1) for t in a)
    h = _run(kind, mode, a, b, h0)
    if reverse:
        h = tuple(ops.flip(t, 1) for t in h)
    h = tuple(ops.cast(t, out_dtype) for t in h)
    return h if spec.parts == 2 else h[0]


def _as_parts(kind, a, b, h0):
    """Checks the shapes; returns (a, b, h0) as tuples of tensors."""
    where = "linear_recurrence"
    if kind == "complex_diagonal":
        for name, value in (("a", a), ("b", b), ("h0", h0)):
            if (value is not None or name != "h0") and (not isinstance(value, (tuple, list)) or len(value) != 2):
                raise ValueError(f"{where}: with kind 'complex_diagonal', `{name}` must be a pair (re, im) of "
                                 f"real tensors; got {type(value).__name__}.")
        a, b = tuple(map(ops.convert_to_tensor, a)), tuple(map(ops.convert_to_tensor, b))
        h0 = None if h0 is None else tuple(map(ops.convert_to_tensor, h0))
    else:
        a, b = (ops.convert_to_tensor(a),), (ops.convert_to_tensor(b),)
        h0 = None if h0 is None else (ops.convert_to_tensor(h0),)
    for name, parts in (("a", a), ("b", b), ("h0", h0 or ())):
        for t in parts:
            if not keras.backend.is_float_dtype(t.dtype):
                raise ValueError(f"{where}: `{name}` must be floating point; got dtype "
                                 f"{keras.backend.standardize_dtype(t.dtype)}.")
    shape = tuple(b[0].shape)
    if len(shape) < 2 or any(tuple(t.shape) != shape for t in b):
        raise ValueError(f"{where}: `b` must have shape (batch, time, …) (both parts alike); got shape "
                         f"{[tuple(t.shape) for t in b]}.")
    trailing = shape[2:]
    if kind == "dense":
        if not trailing:
            raise ValueError(f"{where}: with kind 'dense', `b` must have shape (batch, time, …, d); "
                             f"got shape {shape}.")
        a_shape = tuple(a[0].shape)
        expected = shape + (shape[-1],)
    else:
        a_shape = tuple(a[0].shape)
        expected = shape
    for t in a:
        if len(t.shape) != len(expected) or any(
                n not in (1, m) and n is not None and m is not None for n, m in zip(t.shape, expected)):
            raise ValueError(f"{where}: `a` must have shape {expected} or one broadcastable to it (kind "
                             f"{kind!r}); got shape {tuple(t.shape)}.")
        if kind == "dense" and tuple(t.shape[-2:]) != expected[-2:]:
            raise ValueError(f"{where}: with kind 'dense', `a` must end in (d, d) = {expected[-2:]}; "
                             f"got shape {a_shape}.")
        if t.shape[1] not in (1, shape[1]):
            raise ValueError(f"{where}: `a` must have shape {expected} or one broadcastable to it (kind "
                             f"{kind!r}); got shape {tuple(t.shape)}.")
    if h0 is not None:
        state = (shape[0],) + trailing
        for t in h0:
            if len(t.shape) != len(state) or any(
                    n != m and n is not None and m is not None for n, m in zip(t.shape, state)):
                raise ValueError(f"{where}: `h0` must have shape (batch, …) = {state}; got shape "
                                 f"{tuple(t.shape)}.")
    return a, b, h0


def _full(a, b, kind):
    """a broadcast to its full shape (one entry per batch row and step)."""
    static = tuple(b[0].shape) + ((b[0].shape[-1],) if kind == "dense" else ())
    shape = tuple(ops.shape(b[0])) + static[len(b[0].shape):]
    return tuple(t if None not in static and tuple(t.shape) == static else ops.broadcast_to(t, shape) for t in a)


def _run(kind, mode, a, b, h0):
    """The forward recurrence with the adjoint gradient (`_adjoint`) on JAX,
    TensorFlow and torch; plain autodiff through the scan elsewhere or with
    `_USE_ADJOINT = False`."""
    backend = keras.backend.backend()
    if backend == "jax":  # jitted, so that an eager call is one dispatch
        return _jax_run(kind, mode, _USE_ADJOINT)(a, b, h0)
    if not _USE_ADJOINT:
        return _RUNS[mode](kind, a, b, h0)
    if backend == "tensorflow":
        return _tf_run(kind, mode, a, b, h0)
    if backend == "torch":
        return _torch_function().apply(kind, mode, len(a), len(b), *a, *b, *(h0 or ()))
    return _RUNS[mode](kind, a, b, h0)


# The gradient of a linear recurrence is a linear recurrence run backwards
# (e.g. Martin & Cundy 2018, arXiv 1709.04057; DEER, Lim et al. 2023, arXiv
# 2309.12252): with g_t = ∂L/∂h_t from above, the adjoint state
# λ_t = g_t + a_{t+1}ᴴ ∘ λ_{t+1} (λ_T = 0) gives ∂L/∂b_t = λ_t,
# ∂L/∂a_t = λ_t ⊗ conj(h_{t−1}) (λ_t h_{t−1}ᵀ for dense a), ∂L/∂h0 = a_0ᴴ ∘ λ_0.
# One more forward-only scan in the same mode: no autodiff through the scan,
# whose gradient is quadratic in T under XLA on TensorFlow (tf.scan) and
# slow on torch (a graph of T steps). `_USE_ADJOINT = False` falls back to
# autodiff (the test that both agree flips it).
_USE_ADJOINT = True


def _adjoint(kind, mode, a, h, h0, g):
    """(∂L/∂a, ∂L/∂b, ∂L/∂h0) of h = recurrence(a, b, h0) given g = ∂L/∂h."""
    spec = _KINDS[kind]
    length = h[0].shape[1]
    a_adj = spec.adjoint(a)
    if a[0].shape[1] == 1:  # constant in time (λ_T = 0: the last step's a is never used)
        a_next = a_adj
    else:
        a_next = tuple(ops.flip(ops.concatenate([t[:, 1:], ops.zeros_like(t[:, :1])], axis=1), 1) for t in a_adj)
    lam = _RUNS[mode](kind, a_next, tuple(ops.flip(t, 1) for t in g), None)
    lam = tuple(ops.flip(t, 1) for t in lam)
    first = h0 if h0 is not None else tuple(ops.zeros_like(t[:, 0]) for t in h)
    if length == 1:
        h_prev = tuple(ops.expand_dims(t, 1) for t in first)
    else:
        h_prev = tuple(ops.concatenate([ops.expand_dims(f, 1), t[:, :-1]], axis=1) for f, t in zip(first, h))
    da = tuple(_sum_to(d, t.shape) for d, t in zip(spec.grad_a(lam, h_prev), a))
    dh0 = None if h0 is None else spec.apply(tuple(t[:, 0] for t in a_adj), tuple(t[:, 0] for t in lam))
    return da, lam, dh0


def _sum_to(x, shape):
    """x summed over the axes where `shape` has 1 (undoing a broadcast)."""
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, x.shape)) if n == 1 and m != 1)
    return ops.sum(x, axis=axes, keepdims=True) if axes else x


@functools.lru_cache(maxsize=None)
def _jax_run(kind, mode, adjoint):
    import jax

    run = functools.partial(_RUNS[mode], kind)
    if adjoint:
        run = jax.custom_vjp(run)

        def forward(a, b, h0):
            h = _RUNS[mode](kind, a, b, h0)
            return h, (a, h, h0)

        def backward(residuals, g):
            return _adjoint(kind, mode, *residuals, g)

        run.defvjp(forward, backward)
    return jax.jit(run)


def _tf_run(kind, mode, a, b, h0):
    import tensorflow as tf

    na, nb = len(a), len(b)

    @tf.custom_gradient
    def run(*flat):
        a_, b_, h0_ = flat[:na], flat[na:na + nb], flat[na + nb:] or None
        h = _RUNS[mode](kind, a_, b_, h0_)

        def grad(*g):
            g = tuple(tf.zeros_like(t) if u is None else u for u, t in zip(g, h))
            da, db, dh0 = _adjoint(kind, mode, a_, h, h0_, g)
            return [*da, *db, *(dh0 or ())]

        return list(h), grad

    return tuple(run(*a, *b, *(h0 or ())))


@functools.lru_cache(maxsize=None)
def _torch_function():
    import torch

    class LinearRecurrence(torch.autograd.Function):
        @staticmethod
        def forward(ctx, kind, mode, na, nb, *flat):
            a, b, h0 = flat[:na], flat[na:na + nb], flat[na + nb:] or None
            h = tuple(_RUNS[mode](kind, a, b, h0))
            ctx.config = (kind, mode, na, nb, h0 is not None)
            ctx.save_for_backward(*a, *h, *(h0 or ()))
            return h

        @staticmethod
        def backward(ctx, *g):
            kind, mode, na, nb, has_h0 = ctx.config
            saved = ctx.saved_tensors
            a, h, h0 = saved[:na], saved[na:na + nb], saved[na + nb:] if has_h0 else None
            da, db, dh0 = _adjoint(kind, mode, a, h, h0, g)
            return (None, None, None, None, *da, *db, *(dh0 or ()))

    return LinearRecurrence


def _run_sequential(kind, a, b, h0):
    spec = _KINDS[kind]
    n = len(a)
    init = h0 if h0 is not None else tuple(ops.zeros_like(t[:, 0]) for t in b)
    if a[0].shape[1] == 1 and b[0].shape[1] != 1:  # a constant in time: not scanned
        a_t = tuple(t[:, 0] for t in a)
        return sequential_scan(lambda h, x: _add(spec.apply(a_t, h), x), init, b)
    a = _full(a, b, kind)
    return sequential_scan(lambda h, x: _add(spec.apply(x[:n], h), x[n:]), init, (*a, *b))


def _run_parallel(kind, a, b, h0):
    spec = _KINDS[kind]
    n = len(a)
    a = _full(a, b, kind)
    if h0 is not None:  # fold h0 into the first step: b_0 ← b_0 + a_0 ∘ h0
        first = _add(spec.apply(tuple(t[:, :1] for t in a), tuple(ops.expand_dims(t, 1) for t in h0)),
                     tuple(t[:, :1] for t in b))
        b = tuple(ops.concatenate([f, t[:, 1:]], axis=1) for f, t in zip(first, b))
    identity = (*spec.identity(b), *(0.0,) * len(b))
    return associative_scan(_COMBINE[kind], (*a, *b), identity, axis=1)[n:]


def _run_chunked(kind, a, b, h0):
    length = b[0].shape[1]
    if length <= _UNROLL_MAX:
        return _unrolled(kind, a, b, h0)
    return _chunked(kind, a, b, h0, _chunk_size(length))


def _unrolled(kind, a, b, h0):
    """The sequential recurrence as a Python loop over the (static) time axis."""
    spec = _KINDS[kind]
    constant = a[0].shape[1] == 1
    h = h0
    states = []
    for t in range(b[0].shape[1]):
        b_t = tuple(x[:, t] for x in b)
        if h is None:
            h = b_t
        else:
            h = _add(spec.apply(tuple(x[:, 0 if constant else t] for x in a), h), b_t)
        states.append(h)
    return tuple(ops.stack([s[i] for s in states], axis=1) for i in range(len(b)))


def _chunked(kind, a, b, h0, chunk):
    """The chunked scan (see the module docstring) with chunks of `chunk` steps."""
    spec = _KINDS[kind]
    na, nb = len(a), len(b)
    length = b[0].shape[1]
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    constant = a[0].shape[1] == 1

    def split(t):  # (X, T, …) → (X, L, C, …), the tail padded with zeros (dropped at the end)
        if pad:
            t = ops.pad(t, [(0, 0), (0, pad)] + [(0, 0)] * (len(t.shape) - 2))
        return ops.reshape(t, (-1, n_chunks, chunk, *t.shape[2:]))

    # 1. Inside every chunk at once (the chunk a batch axis), a scan over its
    #    C steps: h from a zero state, and P = a_c·…·a_0.
    bs = tuple(split(t) for t in b)
    h_init = tuple(ops.zeros_like(t[:, :, 0]) for t in bs)
    if constant:  # a (X, 1, …) broadcasts against each step's (B, L, …)
        p_init = tuple(ops.zeros_like(t) + ops.cast(i, t.dtype) for t, i in zip(a, spec.identity(b)))

        def step(carry, x):
            h, p = carry[:nb], carry[nb:]
            return (*_add(spec.apply(a, h), x), *spec.compose(a, p))

        xs = bs
    else:
        a_s = tuple(split(t) for t in a)
        p_init = tuple(ops.zeros_like(t[:, :, 0]) + ops.cast(i, t.dtype) for t, i in zip(a_s, spec.identity(b)))

        def step(carry, x):
            h, p = carry[:nb], carry[nb:]
            a_c, b_c = x[:na], x[na:]
            return (*_add(spec.apply(a_c, h), b_c), *spec.compose(a_c, p))

        xs = (*a_s, *bs)
    if _INNER_LOOP.get(keras.backend.backend()) == "python":
        out = tuple(ops.moveaxis(t, 0, 2) for t in _python_scan(step, (*h_init, *p_init),
                                                                  tuple(ops.moveaxis(t, 2, 0) for t in xs)))
    else:
        out = sequential_scan(step, (*h_init, *p_init), xs, axis=2)
    local, prods = out[:nb], out[nb:]
    # 2. The chunk summaries (A = P at the chunk's end, H = h there) are a
    #    recurrence over the chunks: its states are the states at each chunk's end.
    ends = _run_sequential(kind, tuple(t[:, :, -1] for t in prods), tuple(t[:, :, -1] for t in local), h0)
    if h0 is None:
        h0 = tuple(ops.zeros_like(t[:, 0]) for t in ends)
    starts = tuple(ops.concatenate([ops.expand_dims(s, 1), e[:, :-1]], axis=1) for s, e in zip(h0, ends))
    # 3. Fix-up: h_t += P_t ∘ (the state entering its chunk).
    h = _add(local, spec.apply(prods, tuple(ops.expand_dims(s, 2) for s in starts)))
    out = tuple(ops.reshape(t, (-1, n_chunks * chunk, *t.shape[3:])) for t in h)
    return tuple(t[:, :length] for t in out) if pad else out


_RUNS = {"sequential": _run_sequential, "parallel": _run_parallel, "chunked": _run_chunked}
