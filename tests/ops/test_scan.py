"""glu_zoo.ops.scan: associative and sequential scans, linear recurrences of
every kind, mode and direction, against plain Python loops (tests/reference.py)."""

import json

import keras
import numpy as np
import pytest

from glu_zoo.ops import scan
from tests import reference as ref
from tests.conftest import BACKEND, central_difference, input_grads, to_numpy

MODES = ["sequential", "parallel", "chunked", "auto"]
# (kind, trailing shape of b) — any trailing shape, rank 0 included.
CASES = [("diagonal", ()), ("diagonal", (3,)), ("diagonal", (2, 3)), ("complex_diagonal", (3,)),
         ("dense", (3,)), ("dense", (2, 3))]


def _problem(rng, kind, trailing, batch=2, length=13, constant_a=False, with_h0=False):
    """Random (a, b, h0) in float64 (complex128 for complex_diagonal), |a| ≤ 1.1
    with negative entries and exact zeros."""
    shape = (batch, length) + trailing
    a_shape = shape + (trailing[-1],) if kind == "dense" else shape
    if constant_a:
        a_shape = (1, 1) + a_shape[2:]
    a = rng.uniform(-1.1, 1.1, size=a_shape)
    a[rng.random(a_shape) < 0.1] = 0.0
    b = rng.normal(size=shape)
    h0 = rng.normal(size=(batch,) + trailing) if with_h0 else None
    if kind == "dense":
        a = a / trailing[-1]  # spectral radius ≲ 1
    if kind == "complex_diagonal":
        a = a * np.exp(1j * rng.uniform(0, 2 * np.pi, size=a_shape))
        b = b + 1j * rng.normal(size=shape)
        h0 = None if h0 is None else h0 + 1j * rng.normal(size=h0.shape)
    return a, b, h0


def _split(x, dtype="float32"):
    """A complex array as the (re, im) pair linear_recurrence takes; real arrays as they are."""
    if x is None:
        return None
    if np.iscomplexobj(x):
        return x.real.astype(dtype), x.imag.astype(dtype)
    return x.astype(dtype)


def _join(h):
    return to_numpy(h[0]) + 1j * to_numpy(h[1]) if isinstance(h, tuple) else to_numpy(h)


def _run(a, b, h0, kind, mode, reverse, dtype="float32"):
    return _join(scan.linear_recurrence(_split(a, dtype), _split(b, dtype), _split(h0, dtype), kind=kind,
                                        mode=mode, reverse=reverse))


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind, trailing", CASES, ids=[f"{k}{t}" for k, t in CASES])
def test_linear_recurrence_matches_a_python_loop(kind, trailing, mode, reverse):
    rng = np.random.default_rng(0)
    for length, constant_a, with_h0 in [(13, False, False), (13, False, True), (13, True, True), (1, False, True),
                                        (40, False, True)]:
        a, b, h0 = _problem(rng, kind, trailing, length=length, constant_a=constant_a, with_h0=with_h0)
        expected = ref.linear_recurrence(a, b, h0, "dense" if kind == "dense" else "diagonal", reverse)
        got = _run(a, b, h0, kind, mode, reverse)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5,
                                   err_msg=f"T={length}, constant a: {constant_a}, h0: {with_h0}")


@pytest.mark.parametrize("length", [64, 300, 1000])
def test_chunked_long_sequences_match_a_python_loop(length):
    """Lengths that are and are not a multiple of the chunk, with chunk
    summaries that are themselves chunked (T = 300, 1000: more chunks than
    run unrolled)."""
    rng = np.random.default_rng(1)
    a, b, h0 = _problem(rng, "complex_diagonal", (4,), length=length, with_h0=True)
    a = a / np.maximum(np.abs(a), 1.0) * 0.999  # |a| < 1 over a long sequence
    for reverse in (False, True):
        expected = ref.linear_recurrence(a, b, h0, reverse=reverse)
        np.testing.assert_allclose(_run(a, b, h0, "complex_diagonal", "chunked", reverse), expected,
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
@pytest.mark.parametrize("kind, trailing", [("diagonal", (3,)), ("complex_diagonal", (2,)), ("dense", (3,))])
def test_gradients_match_finite_differences(kind, trailing, mode):
    """d/d(a, b, h0) of Σ r ⊗ h against central differences of the Python loop."""
    rng = np.random.default_rng(2)
    a, b, h0 = _problem(rng, kind, trailing, length=11, with_h0=True)
    r = rng.normal(size=b.shape) + (1j * rng.normal(size=b.shape) if kind == "complex_diagonal" else 0)
    real = [_split(v, "float64") for v in (a, b, h0)]
    flat = [list(v) if isinstance(v, tuple) else [v] for v in real]
    sizes = [len(f) for f in flat]
    args = [x for f in flat for x in f]

    def pack(values):
        out, i = [], 0
        for n in sizes:
            out.append(tuple(values[i:i + n]) if n == 2 else values[i])
            i += n
        return out

    r_re, r_im = (keras.ops.convert_to_tensor(v.astype("float32")) for v in (np.real(r), np.imag(r)))

    def loss(*values):
        pa, pb, ph = pack(values)
        h = scan.linear_recurrence(pa, pb, ph, kind=kind, mode=mode)
        if kind == "complex_diagonal":
            return keras.ops.sum(h[0] * r_re + h[1] * r_im)
        return keras.ops.sum(h * r_re)

    grads = input_grads(loss, *[x.astype("float32") for x in args])

    def reference_loss(values):
        pa, pb, ph = pack(values)
        join = (lambda v: v[0] + 1j * v[1]) if kind == "complex_diagonal" else (lambda v: v)
        h = ref.linear_recurrence(join(pa), join(pb), join(ph), "dense" if kind == "dense" else "diagonal")
        return np.sum(h.real * r.real + (h.imag * r.imag if kind == "complex_diagonal" else 0))

    for k, (x, g) in enumerate(zip(args, grads)):
        for i in rng.choice(x.size, 3, replace=False):
            def f(v, k=k, i=i):
                values = [y.copy() for y in args]
                values[k].reshape(-1)[i] = v
                return reference_loss(values)

            np.testing.assert_allclose(g.reshape(-1)[i], central_difference(f, x.reshape(-1)[i]),
                                       rtol=2e-3, atol=2e-4, err_msg=f"argument {k}, entry {i}")


@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
@pytest.mark.parametrize("kind, trailing, constant_a", [("complex_diagonal", (3,), True), ("diagonal", (2, 3), False),
                                                        ("dense", (3,), False)])
def test_adjoint_gradient_equals_autodiff(kind, trailing, constant_a, mode, monkeypatch):
    """The backward pass written as a reverse recurrence (the default on JAX,
    TensorFlow and torch) against autodiff through the scan (the fallback)."""
    rng = np.random.default_rng(9)
    a, b, h0 = _problem(rng, kind, trailing, length=37, constant_a=constant_a, with_h0=True)
    args = [x for v in (a, b, h0) for x in (_split(v) if np.iscomplexobj(v) else (_split(v),))]
    weights = [keras.ops.convert_to_tensor(rng.normal(size=x.shape).astype("float32")) for x in args[-2:]]

    def loss(*values):
        if kind == "complex_diagonal":
            h = scan.linear_recurrence(values[:2], values[2:4], values[4:], kind=kind, mode=mode, reverse=True)
            return keras.ops.sum(h[0] * h[0] * weights[0][:, None]) + keras.ops.sum(h[1] * weights[1][:, None])
        h = scan.linear_recurrence(*values, kind=kind, mode=mode, reverse=True)
        return keras.ops.sum(h * h * weights[-1][:, None])

    adjoint = input_grads(loss, *args)
    monkeypatch.setattr(scan, "_USE_ADJOINT", False)
    autodiff = input_grads(loss, *args)
    for x, y in zip(adjoint, autodiff):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4 * np.abs(y).max())


def _ulp(x, dtype):
    """The spacing of `dtype` (float16: 10 mantissa bits, bfloat16: 7) at |x|
    (subnormals: the spacing at the smallest normal)."""
    bits, smallest = {"float16": (10, 2.0**-14), "bfloat16": (7, 2.0**-126)}[dtype]
    return 2.0 ** (np.floor(np.log2(np.maximum(np.abs(x), smallest))) - bits)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
def test_half_precision_inputs_accumulate_in_float32(mode, dtype):
    """With half inputs, the states equal the exact recurrence of the
    half-rounded inputs to 2 ulps of the half dtype, plus 1e-5·max|h| for the
    float32 accumulator's own rounding (512 steps × 2⁻²⁴, with margin).
    A half accumulator, rounding h at each of 512 steps of a ≈ 0.99–0.999,
    drifts by hundreds of ulps."""
    rng = np.random.default_rng(3)
    a = rng.uniform(0.99, 0.999, size=(2, 512, 4))
    b = rng.normal(size=(2, 512, 4)) * 0.05
    half_a, half_b = keras.ops.cast(a, dtype), keras.ops.cast(b, dtype)
    rounded = [to_numpy(keras.ops.cast(t, "float32")).astype(np.float64) for t in (half_a, half_b)]
    expected = ref.linear_recurrence(*rounded)
    h = scan.linear_recurrence(half_a, half_b, mode=mode)
    assert keras.backend.standardize_dtype(h.dtype) == dtype
    tolerance = 2.0 * _ulp(expected, dtype) + 1e-5 * np.abs(expected).max()
    error = np.abs(to_numpy(keras.ops.cast(h, "float32")) - expected) / tolerance
    assert error.max() <= 1.0, f"worst error {error.max():.2f} of the tolerance"


def test_outputs_take_the_dtype_of_b():
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0, 1, size=(2, 5, 3)), rng.normal(size=(2, 5, 3))
    h = scan.linear_recurrence(a.astype("float16"), b.astype("float32"), mode="chunked")
    assert keras.backend.standardize_dtype(h.dtype) == "float32"
    b64 = keras.ops.convert_to_tensor(b)
    if keras.backend.standardize_dtype(b64.dtype) != "float64":
        return  # JAX without jax_enable_x64 has no float64
    h = scan.linear_recurrence(a.astype("float32"), b64, mode="sequential")
    assert keras.backend.standardize_dtype(h.dtype) == "float64"
    np.testing.assert_allclose(to_numpy(h), ref.linear_recurrence(a.astype("float32").astype(np.float64), b),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
def test_compiled(mode):
    """Inside a compiled function (jax.jit; tf.function with XLA; torch eager)."""
    rng = np.random.default_rng(5)
    a, b, h0 = _problem(rng, "complex_diagonal", (3,), length=37, with_h0=True)
    args = [_split(v) for v in (a, b, h0)]

    def f(*args):
        return scan.linear_recurrence(*args, kind="complex_diagonal", mode=mode, reverse=True)

    if BACKEND == "jax":
        import jax

        f = jax.jit(f)
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        f = tf.function(f, jit_compile=True)
    np.testing.assert_allclose(_join(f(*args)), ref.linear_recurrence(a, b, h0, reverse=True),
                               rtol=1e-5, atol=1e-5)


# --- the generic scans -------------------------------------------------------------

def _affine(first, second):
    """(A₁, b₁)·(A₂, b₂) = (A₂A₁, A₂b₁ + b₂) for 2×2 matrices: not commutative."""
    a1, b1 = first
    a2, b2 = second
    return keras.ops.matmul(a2, a1), keras.ops.squeeze(keras.ops.matmul(a2, b1[..., None]), -1) + b2


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_associative_scan_matches_a_python_loop(axis, reverse):
    rng = np.random.default_rng(6)
    # elements along `axis` of (4, 5, 6, …): matrices (…, 2, 2) and vectors (…, 2)
    a = rng.normal(size=(4, 5, 6, 2, 2)) * 0.6
    b = rng.normal(size=(4, 5, 6, 2))
    out = scan.associative_scan(_affine, (a.astype("float32"), b.astype("float32")),
                                (np.eye(2, dtype="float32"), 0.0), axis=axis, reverse=reverse)
    am, bm = np.moveaxis(a, axis, 0), np.moveaxis(b, axis, 0)
    order = range(am.shape[0] - 1, -1, -1) if reverse else range(am.shape[0])
    acc_a, acc_b = None, None
    exp_a, exp_b = np.zeros_like(am), np.zeros_like(bm)
    for t in order:
        if acc_a is None:
            acc_a, acc_b = am[t], bm[t]
        else:
            acc_a, acc_b = am[t] @ acc_a, np.einsum("...ij,...j->...i", am[t], acc_b) + bm[t]
        exp_a[t], exp_b[t] = acc_a, acc_b
    np.testing.assert_allclose(to_numpy(out[0]), np.moveaxis(exp_a, 0, axis), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(out[1]), np.moveaxis(exp_b, 0, axis), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reverse", [False, True])
def test_sequential_scan_matches_a_python_loop(reverse):
    rng = np.random.default_rng(7)
    xs = (rng.normal(size=(3, 9, 2)), rng.normal(size=(3, 9, 2)))
    init = (rng.normal(size=(3, 2)),)

    def step(carry, x):
        return (keras.ops.tanh(x[0] * carry[0] + x[1]),)

    (got,) = scan.sequential_scan(step, tuple(v.astype("float32") for v in init),
                                  tuple(v.astype("float32") for v in xs), axis=1, reverse=reverse)
    h, expected = init[0], np.zeros_like(xs[0])
    for t in (range(8, -1, -1) if reverse else range(9)):
        h = np.tanh(xs[0][:, t] * h + xs[1][:, t])
        expected[:, t] = h
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5, atol=1e-6)


# --- mode "auto" ---------------------------------------------------------------------

SMALL_TABLE = {"cpu": {"measured": "a test table",
                       "forward": [[256, "sequential"], [4096, "chunked"], [None, "parallel"]],
                       "train": [[1024, "parallel"], [None, "chunked"]]},
               "accelerator": {"measured": False, "forward": [[None, "parallel"]], "train": [[None, "parallel"]]}}


@pytest.fixture
def small_table(monkeypatch):
    monkeypatch.setattr(scan, "_auto_table", lambda: {BACKEND: SMALL_TABLE})
    monkeypatch.setattr(scan, "device_kind", lambda: "cpu")


def test_auto_reads_the_table_by_length_and_training_flag(small_table):
    expected = {(1, None): "sequential", (256, False): "sequential", (257, False): "chunked",
                (4096, None): "chunked", (4097, False): "parallel", (None, False): "parallel",
                (1, True): "parallel", (1024, True): "parallel", (1025, True): "chunked",
                (16384, True): "chunked", (None, True): "chunked"}
    got = {key: scan.resolve_mode("auto", *key) for key in expected}
    assert got == expected
    assert scan.resolve_mode("sequential", 16384, True) == "sequential"
    assert scan.resolve_mode("parallel", 1, False) == "parallel"


def test_auto_follows_the_training_flag_that_keras_passes(small_table, monkeypatch):
    """fit runs the "train" row (parallel at T ≤ 1024), predict and a plain
    call (gradients enabled or not, on every backend) the "forward" row
    (sequential at T ≤ 256)."""
    from glu_zoo.layers import LRU

    ran = []
    resolve = scan.resolve_mode
    monkeypatch.setattr(scan, "resolve_mode", lambda *args: ran.append((args[2], resolve(*args))) or ran[-1][1])
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 12, 4)).astype("float32")
    model = keras.Sequential([keras.Input((12, 4)), LRU(3)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x, epochs=1, verbose=0)  # fit also infers shapes once, with training=False
    assert {mode for training, mode in ran if training} == {"parallel"}
    ran.clear()
    model.predict(x, verbose=0)
    model(x)
    assert {mode for training, mode in ran} == {"sequential"}


def test_the_shipped_table_covers_every_backend_and_device():
    with open(scan._TABLE_PATH) as f:
        table = json.load(f)
    assert set(table) >= {"jax", "tensorflow", "torch"}
    for backend in ("jax", "tensorflow", "torch"):
        assert set(table[backend]) == {"cpu", "accelerator"}, backend
        assert table[backend]["accelerator"]["measured"] is False  # no accelerator was lent
        for device, entry in table[backend].items():
            for kind in ("forward", "train"):
                rows = entry[kind]
                assert rows[-1][0] is None, (backend, device, kind)
                bounds = [r[0] for r in rows[:-1]]
                assert bounds == sorted(bounds) and all(isinstance(n, int) for n in bounds)
                assert {r[1] for r in rows} <= {"sequential", "parallel", "chunked"}


# --- bad arguments ---------------------------------------------------------------------

def test_bad_arguments_name_the_argument_and_the_value():
    a = np.ones((2, 5, 3), "float32")
    with pytest.raises(ValueError, match=r"unknown `kind` 'complex'; allowed: diagonal, complex_diagonal, dense"):
        scan.linear_recurrence(a, a, kind="complex")
    with pytest.raises(ValueError, match=r"unknown `mode` 'fast'; allowed: auto, parallel, sequential, chunked"):
        scan.linear_recurrence(a, a, mode="fast")
    with pytest.raises(ValueError, match=r"`a` must have shape \(2, 5, 3\) or one broadcastable to it .*"
                                         r"got shape \(2, 4, 3\)"):
        scan.linear_recurrence(a[:, :4], a)
    with pytest.raises(ValueError, match=r"`h0` must have shape \(batch, …\) = \(2, 3\); got shape \(2, 4\)"):
        scan.linear_recurrence(a, a, np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"`a` must be a pair \(re, im\) of real tensors; got ndarray"):
        scan.linear_recurrence(a, (a, a), kind="complex_diagonal")
    with pytest.raises(ValueError, match=r"`b` must be floating point; got dtype int32"):
        scan.linear_recurrence(a, np.ones((2, 5, 3), "int32"))
    with pytest.raises(ValueError, match=r"`a` must have shape \(2, 5, 3, 3\) or one broadcastable to it "
                                         r"\(kind 'dense'\); got shape \(2, 5, 3\)"):
        scan.linear_recurrence(a, a, kind="dense")
    with pytest.raises(ValueError, match=r"`identity` must have one part per element of `elems` \(2\); got 1"):
        scan.associative_scan(_affine, (a, a), (0.0,))
