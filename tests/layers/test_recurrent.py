import inspect
import math

import keras
import numpy as np
import pytest

from glu_zoo.layers import LRU, RGLRU, LRUBlock, RecurrentBlock
from glu_zoo.layers import recurrent
from tests.conftest import BACKEND, central_difference, input_grads, to_numpy, weight_grads

RNG = np.random.default_rng(3)
B, T, D, N = 2, 12, 4, 3
X = RNG.normal(size=(B, T, D)).astype("float32")
MODES = ["parallel", "sequential", "auto"]
# The fastest mode per backend for long sequences on CPU (eager torch and TF
# pay a Python or while-loop step per time step in "sequential").
FAST = {"jax": "sequential", "tensorflow": "parallel", "torch": "parallel"}


def _weights(layer):
    return {w.name: to_numpy(w).astype(np.float64) for w in layer.weights}


def _randomise(layer, scale=0.5, skip=()):
    """Random values for the weights not in `skip`; returns all weights as float64."""
    for w in layer.weights:
        if w.name not in skip:
            w.assign(RNG.normal(size=w.shape).astype("float32") * scale)
    return _weights(layer)


# --- NumPy references (float64 / complex128), one step at a time ---------------------

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lru_ref(x, w, h0=None, mask=None):
    x = x.astype(np.float64)
    lam = np.exp(-np.exp(w["nu_log"]) + 1j * np.exp(w["theta_log"]))
    gamma = np.exp(w["gamma_log"])
    b_mat = w["B_re"] + 1j * w["B_im"]
    c_mat = w["C_re"] + 1j * w["C_im"]
    n = lam.shape[0]
    h = np.zeros((x.shape[0], n), np.complex128) if h0 is None else h0[:, :n] + 1j * h0[:, n:]
    mask = np.ones(x.shape[:2], bool) if mask is None else mask
    ys = []
    for t in range(x.shape[1]):
        m = mask[:, t, None]
        h = np.where(m, lam * h + gamma * (x[:, t] @ b_mat), h)
        ys.append(np.where(m, (h @ c_mat).real + w["D"] * x[:, t], 0.0))
    return np.stack(ys, 1), np.concatenate([h.real, h.imag], -1)


def _block_diag(x, kernel, bias):
    heads, block = kernel.shape[:2]
    xh = x.reshape(x.shape[0], heads, block)
    return (np.einsum("bhi,hij->bhj", xh, kernel) + bias).reshape(x.shape[0], -1)


def rglru_ref(x, w, c=8.0, h0=None, mask=None):
    x = x.astype(np.float64)
    h = np.zeros((x.shape[0], x.shape[2])) if h0 is None else h0.astype(np.float64)
    mask = np.ones(x.shape[:2], bool) if mask is None else mask
    seen = np.zeros(x.shape[0], bool) if h0 is None else np.ones(x.shape[0], bool)
    ys = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        gate_x = _sigmoid(_block_diag(xt, w["input_gate_kernel"], w["input_gate_bias"]))
        gate_a = _sigmoid(_block_diag(xt, w["a_gate_kernel"], w["a_gate_bias"]))
        a = np.exp(-c * gate_a * np.log1p(np.exp(w["a_param"])))
        mult = np.sqrt(1.0 - a**2)
        reset = (mask[:, t] & ~seen)[:, None]
        a, mult = np.where(reset, 0.0, a), np.where(reset, 1.0, mult)
        m = mask[:, t, None]
        h = np.where(m, a * h + mult * gate_x * xt, h)
        seen |= mask[:, t]
        ys.append(np.where(m, h, 0.0))
    return np.stack(ys, 1), h


def block_ref(x, w, conv_width=4, state=None):
    x = x.astype(np.float64)
    normed = x / np.sqrt(np.mean(x**2, -1, keepdims=True) + 1e-6) * (1 + w["norm_scale"])
    z = normed @ w["linear_y_kernel"] + w["linear_y_bias"]
    y = 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))
    u = normed @ w["linear_x_kernel"] + w["linear_x_bias"]
    conv_state, lru_state = (None, None) if state is None else state
    prev = np.zeros((x.shape[0], conv_width - 1, u.shape[-1])) if conv_state is None else conv_state
    padded = np.concatenate([prev, u], 1)
    conv = w["conv_bias"] + sum(
        padded[:, tap:tap + x.shape[1]] * w["conv_kernel"][tap] for tap in range(conv_width))
    h, last = rglru_ref(conv, w, h0=lru_state)
    return x + (h * y) @ w["linear_out_kernel"] + w["linear_out_bias"], (padded[:, -(conv_width - 1):], last)


def _block_weights(block):
    block.build(X.shape)
    return _randomise(block, skip=("a_param",))


# --- against the references ------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_lru_matches_numpy_reference(mode):
    layer = LRU(N, r_min=0.5, r_max=0.95, mode=mode, return_state=True)
    layer.build(X.shape)
    w = _weights(layer)
    h0 = RNG.normal(size=(B, 2 * N)).astype("float32")
    for state in (None, h0):
        y, h = layer(X, initial_state=state)
        y_ref, h_ref = lru_ref(X, w, state)
        np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(to_numpy(h), h_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_rglru_matches_numpy_reference(mode):
    layer = RGLRU(6, num_heads=2, c=8.0, mode=mode, return_state=True)
    x = RNG.normal(size=(B, T, 6)).astype("float32")
    layer.build(x.shape)
    w = _randomise(layer, skip=("a_param",))
    h0 = RNG.normal(size=(B, 6)).astype("float32")
    for state in (None, h0):
        y, h = layer(x, initial_state=state)
        y_ref, h_ref = rglru_ref(x, w, 8.0, state)
        np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(to_numpy(h), h_ref, rtol=1e-4, atol=1e-5)


def test_rglru_resets_at_the_first_step():
    """h_0 = gate_x ⊗ x_0: no decay and multiplier 1 without a carried state."""
    layer = RGLRU(D, num_heads=2)
    layer.build(X.shape)
    w = _weights(layer)
    gate_x = _sigmoid(_block_diag(X[:, 0].astype(np.float64), w["input_gate_kernel"], w["input_gate_bias"]))
    np.testing.assert_allclose(to_numpy(layer(X))[:, 0], gate_x * X[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_block_matches_numpy_reference(mode):
    block = RecurrentBlock(D, lru_width=6, num_heads=3, mode=mode)
    w = _block_weights(block)
    np.testing.assert_allclose(to_numpy(block(X)), block_ref(X, w)[0], rtol=1e-4, atol=1e-4)


def test_weight_names_and_shapes():
    lru = LRU(N)
    lru.build(X.shape)
    assert {w.name: tuple(w.shape) for w in lru.weights} == {
        "nu_log": (N,), "theta_log": (N,), "gamma_log": (N,), "B_re": (D, N), "B_im": (D, N),
        "C_re": (N, D), "C_im": (N, D), "D": (D,)}
    rg = RGLRU(6, num_heads=3)
    rg.build((B, T, 6))
    assert {w.name: tuple(w.shape) for w in rg.weights} == {
        "a_param": (6,), "input_gate_kernel": (3, 2, 2), "input_gate_bias": (3, 2),
        "a_gate_kernel": (3, 2, 2), "a_gate_bias": (3, 2)}


def test_block_parameter_count_matches_trecvit_b():
    """REFERENCE §5: TRecViT-B's recurrent block (768 → LRU width 1536, 12
    heads) holds 3,949,056 weights, RMSNorm scale included."""
    block = RecurrentBlock(768, lru_width=1536, num_heads=12)
    block.build((1, 4, 768))
    assert block.count_params() == 3_949_056
    assert tuple(block.rg_lru.a_gate_kernel.shape) == (12, 128, 128)


def test_initialisation_follows_the_papers():
    lru = LRU(1000, r_min=0.4, r_max=0.9, max_phase=math.pi)
    lru.build((1, 1, 8))
    w = _weights(lru)
    radius = np.exp(-np.exp(w["nu_log"]))
    assert radius.min() >= 0.4 - 1e-5 and radius.max() <= 0.9 + 1e-5
    # uniform by area: r² uniform on [r_min², r_max²]
    assert abs(np.mean(radius**2) - (0.16 + 0.81) / 2) < 0.02
    phase = np.exp(w["theta_log"])
    assert phase.min() >= 0 and phase.max() <= math.pi + 1e-5
    np.testing.assert_allclose(np.exp(w["gamma_log"]), np.sqrt(1 - radius**2), rtol=1e-4)
    assert abs(w["B_re"].std() - 1 / math.sqrt(16)) < 0.02
    assert abs(np.corrcoef(w["B_re"].ravel(), w["B_im"].ravel())[0, 1]) < 0.1
    default = LRU(1000)  # r_max = 1: still finite weights
    default.build((1, 1, 8))
    assert all(np.isfinite(v).all() for v in _weights(default).values())
    rg = RGLRU(1000, num_heads=10, min_rad=0.5)
    rg.build((1, 1, 1000))
    assert abs(_weights(rg)["a_gate_kernel"].std() - 0.1) < 0.01  # N(0, 1/(width/num_heads))
    a = np.exp(-np.log1p(np.exp(_weights(rg)["a_param"])))  # a = exp(−softplus(a_param))
    assert a.min() >= 0.5 - 1e-4 and a.max() <= 0.999 + 1e-4
    assert abs(np.mean(a**2) - (0.25 + 0.999**2) / 2) < 0.02


# --- modes, jit, chunks, masks ---------------------------------------------------------

def _model(kind, mode, t=16):
    inputs = keras.Input((t, D))
    layer = {"lru": lambda: LRU(N, r_min=0.5, r_max=0.95, mode=mode),
             "rglru": lambda: RGLRU(D, num_heads=2, mode=mode),
             "block": lambda: RecurrentBlock(D, lru_width=6, num_heads=2, mode=mode)}[kind]()
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize("kind", ["lru", "rglru", "block"])
def test_modes_agree_in_a_compiled_fit_step(kind):
    """One SGD step under XLA (jit_compile=True on JAX and TensorFlow; eager on
    torch): parallel and sequential give the same outputs and updated weights."""
    x = RNG.normal(size=(B, 16, D)).astype("float32")
    target = RNG.normal(size=(B, 16, D)).astype("float32")
    results = []
    weights = None
    for mode in ("parallel", "sequential"):
        model = _model(kind, mode)
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=BACKEND != "torch")
        history = model.fit(x, target, batch_size=B, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        results.append((model.predict(x, verbose=0), model.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(weights, results[0][1]))


@pytest.mark.parametrize("cls, mode", [(LRU, "parallel"), (LRU, "sequential"), (RGLRU, "auto")])
def test_chunked_run_with_carried_state_equals_whole_run(cls, mode):
    x = RNG.normal(size=(B, 48, D)).astype("float32")
    layer = cls(N, mode=mode, return_state=True) if cls is LRU else cls(D, mode=mode, return_state=True)
    whole, h_whole = layer(x)
    first, h = layer(x[:, :16])
    second, h = layer(x[:, 16:], initial_state=h)
    np.testing.assert_allclose(to_numpy(keras.ops.concatenate([first, second], 1)), to_numpy(whole),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), to_numpy(h_whole), rtol=1e-5, atol=1e-5)


def test_block_chunked_run_with_carried_state_equals_whole_run():
    x = RNG.normal(size=(B, 48, D)).astype("float32")
    block = RecurrentBlock(D, lru_width=6, num_heads=2, return_state=True)
    w = _block_weights(block)
    whole, _ = block(x)
    first, state = block(x[:, :16])
    second, _ = block(x[:, 16:], initial_state=state)
    np.testing.assert_allclose(to_numpy(keras.ops.concatenate([first, second], 1)), to_numpy(whole),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(whole), block_ref(x, w)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
@pytest.mark.parametrize("cls", [LRU, RGLRU])
def test_padded_batch_equals_unpadded_sequences(cls, mode):
    """Right padding (row 0) and left padding (row 1): padded steps keep the
    state, give 0, and the valid steps match the sequence run alone."""
    make = (lambda **k: LRU(N, mode=mode, **k)) if cls is LRU else (lambda **k: RGLRU(D, mode=mode, **k))
    layer = make(return_state=True)
    layer.build(X.shape)
    mask = np.ones((B, T), bool)
    mask[0, 7:] = False
    mask[1, :3] = False
    y, h = layer(X, mask=mask)
    y, h = to_numpy(y), to_numpy(h)
    assert np.all(y[~mask] == 0)
    for row, valid in ((0, slice(0, 7)), (1, slice(3, T))):
        alone, h_alone = layer(X[row:row + 1, valid])
        np.testing.assert_allclose(y[row:row + 1, valid], to_numpy(alone), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h[row:row + 1], to_numpy(h_alone), rtol=1e-5, atol=1e-6)
    if cls is LRU:
        ref_y, ref_h = lru_ref(X, _weights(layer), mask=mask)
        np.testing.assert_allclose(y, ref_y, rtol=1e-4, atol=1e-4)
        last = LRU.from_config({**layer.get_config(), "return_sequences": False, "return_state": False})
        last.build(X.shape)
        last.set_weights(layer.get_weights())
        np.testing.assert_allclose(to_numpy(last(X, mask=mask)), y[[0, 1], [6, T - 1]], rtol=1e-5, atol=1e-6)
    else:
        ref_y, ref_h = rglru_ref(X, _weights(layer), mask=mask)
        np.testing.assert_allclose(y, ref_y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_mask_from_a_masking_layer_in_a_model_of_unknown_length(mode):
    inputs = keras.Input((None, D))
    masked = keras.layers.Masking(0.0)(inputs)
    layer = LRU(N, return_sequences=False, mode=mode)
    model = keras.Model(inputs, layer(masked))
    x = X.copy()
    x[0, 5:] = 0.0
    alone = to_numpy(layer(X[:1, :5]))
    np.testing.assert_allclose(model.predict(x, verbose=0)[:1], alone, rtol=1e-5, atol=1e-6)


def test_auto_mode_table():
    assert set(recurrent._AUTO_MODE) == {"jax", "tensorflow", "torch"}
    for backend, devices in recurrent._AUTO_MODE.items():
        assert set(devices) == {"cpu", "accelerator"}
        for rows in devices.values():
            assert rows[-1][0] is None  # the last row takes any T
            bounds = [r[0] for r in rows[:-1]]
            assert bounds == sorted(bounds) and all(isinstance(b, int) for b in bounds)
            assert all(m in ("parallel", "sequential") for r in rows for m in r[1:])
    rows = recurrent._AUTO_MODE[BACKEND]["cpu"]
    for length in (1, 256, 257, 4096, 16384, None):
        for training in (True, False):
            row = next(r for r in rows if r[0] is None or (length is not None and length <= r[0]))
            assert recurrent._resolve_mode("auto", length, training) == row[1 if training else 2]
    assert recurrent._resolve_mode("parallel", 16384, True) == "parallel"
    assert recurrent._resolve_mode("sequential", 1, False) == "sequential"


def test_auto_follows_the_training_flag_that_keras_passes(monkeypatch):
    """fit passes training=True down to the scan; predict passes False."""
    seen = []
    resolve = recurrent._resolve_mode
    monkeypatch.setattr(recurrent, "_resolve_mode", lambda m, n=None, t=None: seen.append(t) or resolve(m, n, t))
    model = keras.Sequential([keras.Input((T, D)), LRU(N)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(X, X, epochs=1, verbose=0)
    assert True in seen
    seen.clear()
    model.predict(X, verbose=0)
    assert seen and not any(seen)


# --- gradients -------------------------------------------------------------------------

def _check_input_gradient(layer, ref, x, entries=4):
    r = RNG.normal(size=x.shape)
    grad = input_grads(lambda t: keras.ops.sum(layer(t) * keras.ops.convert_to_tensor(r, "float32")), x)[0]
    flat = x.astype(np.float64).reshape(-1)
    for i in RNG.choice(flat.size, entries, replace=False):
        def f(v, i=i):
            p = flat.copy()
            p[i] = v
            return (ref(p.reshape(x.shape)) * r).sum()
        np.testing.assert_allclose(grad.reshape(-1)[i], central_difference(f, flat[i]), rtol=2e-3, atol=2e-4)


def test_lru_input_gradient_matches_finite_differences():
    layer = LRU(N, r_min=0.5, r_max=0.95, mode="parallel")
    x = X[:, :8]
    layer.build(x.shape)
    w = _weights(layer)
    _check_input_gradient(layer, lambda v: lru_ref(v, w)[0], x)


def test_rglru_input_gradient_matches_finite_differences():
    layer = RGLRU(D, num_heads=2, mode="sequential")
    x = X[:, :8]
    layer.build(x.shape)
    w = _randomise(layer, skip=("a_param",))
    _check_input_gradient(layer, lambda v: rglru_ref(v, w)[0], x)


def test_sqrt_bound_derivative():
    x = np.array([0.05, 0.3, 1.0, 2.5], "float32")
    (grad,) = input_grads(lambda t: keras.ops.sum(recurrent._sqrt_bound_derivative(t)), x)
    np.testing.assert_allclose(grad, central_difference(np.sqrt, x, eps=1e-5), rtol=1e-4)
    np.testing.assert_allclose(to_numpy(recurrent._sqrt_bound_derivative(x)), np.sqrt(x), rtol=1e-6)
    (grad,) = input_grads(lambda t: keras.ops.sum(recurrent._sqrt_bound_derivative(t)),
                          np.array([0.0, 1e-12], "float32"))
    np.testing.assert_allclose(grad, [1000.0, 1000.0], rtol=1e-5)


# --- numerics --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lru", "rglru"])
def test_long_sequence_near_unit_radius_is_finite(kind):
    x = RNG.normal(size=(1, 16_384, 4)).astype("float32")
    if kind == "lru":
        layer = LRU(4, r_min=0.999, r_max=0.9999, mode=FAST[BACKEND])
    else:
        layer = RGLRU(4, min_rad=0.999, mode=FAST[BACKEND])
    layer.build(x.shape)
    y = to_numpy(layer(x))
    grads = weight_grads(layer, x)
    assert np.isfinite(y).all() and np.abs(y).max() < 1e3
    assert all(np.isfinite(g).all() for g in grads.values()), {k: np.isfinite(g).all() for k, g in grads.items()}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_accumulates_in_float32(dtype):
    a = RNG.uniform(0.99, 0.999, size=(1, 512, 4)).astype("float32")
    b = RNG.normal(size=(1, 512, 4)).astype("float32") * 0.05
    full = to_numpy(recurrent._linear_scan([a], [b], mode="parallel")[0])
    for mode in ("parallel", "sequential"):
        half = recurrent._linear_scan([keras.ops.cast(a, dtype)], [keras.ops.cast(b, dtype)], mode=mode)[0]
        assert keras.backend.standardize_dtype(half.dtype) == dtype
        # a half-precision accumulator would drift by far more over 512 steps
        np.testing.assert_allclose(to_numpy(keras.ops.cast(half, "float32")), full,
                                   rtol=2e-2, atol=2e-2 * np.abs(full).max())
    layer = LRU(N, r_min=0.9, r_max=0.99)
    y32 = to_numpy(layer(X))
    y = layer(keras.ops.cast(X, dtype))
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    np.testing.assert_allclose(to_numpy(keras.ops.cast(y, "float32")), y32, rtol=5e-2,
                               atol=5e-2 * np.abs(y32).max())


def test_mixed_bfloat16_block():
    keras.config.set_dtype_policy("mixed_bfloat16")
    block = RecurrentBlock(D, lru_width=6, num_heads=2)
    w = _block_weights(block)
    y = block(X)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert {keras.backend.standardize_dtype(v.dtype) for v in block.weights} == {"float32"}
    expected = block_ref(X, w)[0]
    np.testing.assert_allclose(to_numpy(keras.ops.cast(y, "float32")), expected,
                               rtol=5e-2, atol=5e-2 * np.abs(expected).max())


# --- serialisation ---------------------------------------------------------------------

LAYERS = {
    "lru": lambda: LRU(N, r_min=0.2, r_max=0.9, max_phase=3.0, mode="parallel", name="rec"),
    "lru_last": lambda: LRU(N, return_sequences=False, name="rec"),
    "rglru": lambda: RGLRU(D, num_heads=2, c=6.0, min_rad=0.8, mode="sequential", name="rec"),
    "block": lambda: RecurrentBlock(D, lru_width=6, num_heads=3, conv_width=3, min_rad=0.5, name="rec"),
    "lru_block": lambda: LRUBlock(N, r_min=0.1, r_max=0.8, dropout=0.2, norm_first=True, mode="parallel",
                                  name="rec"),
}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_save_and_load_round_trip(kind, tmp_path):
    inputs = keras.Input((T, D))
    layer = LAYERS[kind]()
    model = keras.Model(inputs, layer(inputs))
    _randomise(layer, scale=0.3, skip=("a_param", "nu_log", "theta_log", "gamma_log"))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras").get_layer("rec")
    assert type(loaded) is type(layer) and loaded.get_config() == layer.get_config()
    np.testing.assert_allclose(to_numpy(loaded(X)), to_numpy(layer(X)), rtol=1e-6, atol=1e-6)
    assert [w.name for w in loaded.weights] == [w.name for w in layer.weights]


@pytest.mark.parametrize("kind", list(LAYERS))
def test_get_config_is_complete(kind):
    layer = LAYERS[kind]()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    args = set(inspect.signature(type(layer).__init__).parameters) - {"self", "kwargs"}
    assert args <= set(config), args - set(config)


# --- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("r_min, r_max", [(0.9, 0.9), (0.95, 0.5)])
def test_r_min_must_be_below_r_max(r_min, r_max):
    with pytest.raises(ValueError, match=r"`r_min` must be smaller than `r_max`"):
        LRU(4, r_min=r_min, r_max=r_max)


@pytest.mark.parametrize("kwargs, name", [({"r_min": -0.1}, "r_min"), ({"r_min": 1.0}, "r_min"),
                                          ({"r_max": 1.5}, "r_max"), ({"r_max": 0.0}, "r_max"),
                                          ({"max_phase": 0.0}, "max_phase")])
def test_radii_outside_the_unit_interval(kwargs, name):
    with pytest.raises(ValueError, match=rf"`{name}` must be a number in .*got {list(kwargs.values())[0]!r}"):
        LRU(4, **kwargs)


@pytest.mark.parametrize("state_dim", [0, -2, 1.5, True])
def test_bad_state_dim(state_dim):
    with pytest.raises(ValueError, match=rf"`state_dim` must be a positive integer; got {state_dim!r}"):
        LRU(state_dim)


def test_rglru_bad_arguments():
    with pytest.raises(ValueError, match=r"`width` must be divisible by `num_heads`; got width=6, num_heads=4"):
        RGLRU(6, num_heads=4)
    with pytest.raises(ValueError, match=r"`c` must be a number in \(0.0, inf\); got -1.0"):
        RGLRU(4, c=-1.0)
    for min_rad in (0.0, 1.0, 1.2):
        with pytest.raises(ValueError, match=rf"`min_rad` must be a number in \(0.0, 1.0\); got {min_rad!r}"):
            RGLRU(4, min_rad=min_rad)
    with pytest.raises(ValueError, match=r"`lru_width` \(default `width`\) must be divisible by `num_heads`; "
                                         r"got lru_width=6, num_heads=4"):
        RecurrentBlock(8, lru_width=6, num_heads=4)


@pytest.mark.parametrize("cls", [LRU, RGLRU, RecurrentBlock])
def test_unknown_mode_lists_the_allowed_ones(cls):
    with pytest.raises(ValueError, match=r"unknown `mode` 'fast'; allowed: auto, parallel, sequential"):
        cls(4, mode="fast")


@pytest.mark.parametrize("cls", [LRU, RGLRU])
def test_wrong_rank_width_dtype_and_state(cls):
    layer = cls(D)
    with pytest.raises(ValueError, match=r"rank 3 \(batch, time, features\); got shape \(2, 4\)"):
        layer(X[:, 0])
    layer(X)
    with pytest.raises(ValueError, match=r"built for inputs with last dimension 4; got `inputs` of shape"):
        layer(RNG.normal(size=(B, T, 5)).astype("float32"))
    with pytest.raises(ValueError, match=r"`inputs` must be floating point; got dtype int32"):
        layer(np.ones((B, T, D), "int32"))
    size = 2 * D if cls is LRU else D
    with pytest.raises(ValueError, match=rf"`initial_state` must have shape \(batch, {size}\) = "
                                         rf"\(2, {size}\); got shape \(2, {size + 1}\)"):
        layer(X, initial_state=np.zeros((B, size + 1), "float32"))
    with pytest.raises(ValueError, match=r"`initial_state` must have shape"):
        layer(X, initial_state=np.zeros((B + 1, size), "float32"))


@pytest.mark.parametrize("n", [1, 2], ids=["real", "complex"])
def test_backend_scans_agree_with_keras_associative_scan(n):
    """`_doubling_scan` (TensorFlow) and `_associative_scan` (jitted on JAX)
    against `ops.associative_scan`."""
    elems = tuple(keras.ops.convert_to_tensor(RNG.normal(size=(13, 2, 3)).astype("float32") * 0.7)
                  for _ in range(2 * n))
    combine = recurrent._combine_real if n == 1 else recurrent._combine_complex
    theirs = keras.ops.associative_scan(combine, elems, axis=0)
    for ours in (recurrent._doubling_scan(combine, elems, n), recurrent._associative_scan(combine, elems, n)):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-5, atol=1e-6)


def test_sequential_scan_agrees_with_keras_scan():
    """`_sequential_scan` (tf.scan on TensorFlow) against `ops.scan`."""
    xs = tuple(keras.ops.convert_to_tensor(RNG.normal(size=(9, 2, 3)).astype("float32")) for _ in range(2))

    def step(carry, x):
        new = (x[0] * carry[0] + x[1],)
        return new, new

    init = (keras.ops.zeros((2, 3)),)
    ours = recurrent._sequential_scan(step, init, xs)
    theirs = keras.ops.scan(step, init, xs)[1]
    np.testing.assert_allclose(to_numpy(ours[0]), to_numpy(theirs[0]), rtol=1e-6)


def test_block_bad_inputs_and_state():
    block = RecurrentBlock(D, lru_width=6, num_heads=2)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, 4\); got shape \(2, 12, 5\)"):
        block(RNG.normal(size=(B, T, 5)).astype("float32"))
    with pytest.raises(ValueError, match=r"conv_state must have shape \(2, 3, 6\); got shape \(2, 2, 6\)"):
        block(X, initial_state=(np.zeros((B, 2, 6), "float32"), np.zeros((B, 6), "float32")))
    with pytest.raises(ValueError, match=r"`initial_state` must be a pair"):
        block(X, initial_state=np.zeros((B, 6), "float32"))


# --- LRUBlock (Orvieto et al.'s block) -------------------------------------------------

def _layer_norm(x, gamma, beta, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * gamma + beta


def lru_block_ref(x, w, mask=None, norm_first=False, h0=None):
    """LN(x + value ⊗ σ(gate)), [value | gate] = GELU(LRU(x))·W + b (pre-norm: LN first)."""
    x = x.astype(np.float64)
    ln = lambda t: _layer_norm(t, w["gamma"], w["beta"])  # noqa: E731
    y, h = lru_ref(ln(x) if norm_first else x, w, h0, mask)
    g = (0.5 * y * (1 + np.vectorize(math.erf)(y / math.sqrt(2)))) @ w["kernel"] + w["bias"]
    d = x.shape[-1]
    out = x + g[..., :d] * _sigmoid(g[..., d:])
    return (out if norm_first else ln(out)), h


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_lru_block_matches_numpy_reference(mode, norm_first):
    block = LRUBlock(N, r_min=0.5, r_max=0.95, norm_first=norm_first, mode=mode, return_state=True)
    block.build(X.shape)
    w = _randomise(block, skip=("nu_log", "theta_log", "gamma_log"))
    mask = np.ones((B, T), bool)
    mask[0, 9:] = False
    h0 = RNG.normal(size=(B, 2 * N)).astype("float32")
    for kwargs in (dict(), dict(mask=mask), dict(initial_state=h0)):
        y, h = block(X, **kwargs)
        y_ref, h_ref = lru_block_ref(X, w, kwargs.get("mask"), norm_first, kwargs.get("initial_state"))
        np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(to_numpy(h), h_ref, rtol=1e-4, atol=1e-4)


def test_lru_block_weights_and_chunked_run():
    block = LRUBlock(N, return_state=True)
    x = RNG.normal(size=(B, 40, D)).astype("float32")
    whole, h_whole = block(x)
    assert sorted(w.path.split("/", 1)[1] for w in block.weights) == sorted(
        ["lru/nu_log", "lru/theta_log", "lru/gamma_log", "lru/B_re", "lru/B_im", "lru/C_re", "lru/C_im",
         "lru/D", "glu/kernel", "glu/bias", "norm/gamma", "norm/beta"])
    assert tuple(block.glu.kernel.shape) == (D, 2 * D)
    first, h = block(x[:, :25])
    second, h = block(x[:, 25:], initial_state=h)
    np.testing.assert_allclose(to_numpy(keras.ops.concatenate([first, second], 1)), to_numpy(whole),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), to_numpy(h_whole), rtol=1e-5, atol=1e-5)


def test_lru_block_dropout_only_in_training():
    block = LRUBlock(N, dropout=0.5)
    a, b = to_numpy(block(X)), to_numpy(block(X, training=False))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # "auto" may pick another scan on torch
    assert not np.allclose(to_numpy(block(X, training=True)), a, atol=1e-3)


def test_lru_block_bad_arguments():
    with pytest.raises(ValueError, match=r"LRUBlock: `dropout` must be a number in \[0, 1\); got 1.0"):
        LRUBlock(N, dropout=1.0)
    with pytest.raises(ValueError, match=r"LRUBlock: `norm_first` must be True or False; got 'yes'"):
        LRUBlock(N, norm_first="yes")
    with pytest.raises(ValueError, match=r"LRU: `r_min` must be smaller than `r_max`"):
        LRUBlock(N, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match=r"unknown `mode` 'fast'"):
        LRUBlock(N, mode="fast")
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, features\)"):
        LRUBlock(N)(np.zeros((B, D), "float32"))
