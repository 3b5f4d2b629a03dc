"""LRU and LRUBlock (Orvieto et al. 2023) against their NumPy references, on every mode."""

import inspect
import math

import keras
import numpy as np
import pytest

from glu_zoo.layers import LRU, LRUBlock
from tests import reference as ref
from tests.conftest import weight_grads, to_numpy
from tests.layers.recurrent_helpers import (
    MODES,
    check_fit_step_modes_agree,
    check_input_gradient,
    check_mixed_policy,
    randomise,
    ulp,
    weights_below,
)

B, T, D, N = 2, 12, 4, 3


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def _x(rng, length=T, width=D):
    return rng.normal(size=(B, length, width)).astype("float32")


@pytest.mark.parametrize("mode", MODES)
def test_lru_matches_numpy_reference(mode, rng):
    x = _x(rng)
    layer = LRU(N, r_min=0.5, r_max=0.95, mode=mode, return_state=True)
    layer.build(x.shape)
    w = weights_below(layer)
    h0 = rng.normal(size=(B, 2 * N)).astype("float32")
    for state in (None, h0):
        y, h = layer(x, initial_state=state)
        y_ref, h_ref = ref.lru(x, w, state)
        np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(to_numpy(h), h_ref, rtol=1e-4, atol=1e-4)


def test_weight_names_and_shapes():
    lru = LRU(N)
    lru.build((B, T, D))
    assert {w.name: tuple(w.shape) for w in lru.weights} == {
        "nu_log": (N,), "theta_log": (N,), "gamma_log": (N,), "B_re": (D, N), "B_im": (D, N),
        "C_re": (N, D), "C_im": (N, D), "D": (D,)}


def test_initialisation_follows_the_paper():
    lru = LRU(1000, r_min=0.4, r_max=0.9, max_phase=math.pi)
    lru.build((1, 1, 8))
    w = weights_below(lru)
    radius = np.exp(-np.exp(w["nu_log"]))
    assert radius.min() >= 0.4 - 1e-5 and radius.max() <= 0.9 + 1e-5
    # uniform by area: r² uniform on [r_min², r_max²]
    assert abs(np.mean(radius**2) - (0.16 + 0.81) / 2) < 0.02
    phase = np.exp(w["theta_log"])
    assert phase.min() >= 0 and phase.max() <= math.pi + 1e-5 and phase.max() > 0.9 * math.pi
    np.testing.assert_allclose(np.exp(w["gamma_log"]), np.sqrt(1 - radius**2), rtol=1e-4)
    assert abs(w["B_re"].std() - 1 / math.sqrt(16)) < 0.02
    assert abs(w["C_re"].std() - 1 / math.sqrt(1000)) < 0.003
    assert abs(np.corrcoef(w["B_re"].ravel(), w["B_im"].ravel())[0, 1]) < 0.1
    default = LRU(1000)  # r_max = 1: still finite weights
    default.build((1, 1, 8))
    assert all(np.isfinite(v).all() for v in weights_below(default).values())


@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
def test_chunked_run_with_carried_state_equals_whole_run(mode, rng):
    x = _x(rng, 48)
    layer = LRU(N, mode=mode, return_state=True)
    whole, h_whole = layer(x)
    first, h = layer(x[:, :16])
    second, h = layer(x[:, 16:], initial_state=h)
    np.testing.assert_allclose(to_numpy(keras.ops.concatenate([first, second], 1)), to_numpy(whole),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), to_numpy(h_whole), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
def test_padded_batch_equals_unpadded_sequences(mode, rng):
    """Right padding (row 0) and left padding (row 1): padded steps keep the
    state and give 0; the valid steps match the sequence run alone."""
    x = _x(rng)
    layer = LRU(N, mode=mode, return_state=True)
    layer.build(x.shape)
    w = weights_below(layer)
    mask = np.ones((B, T), bool)
    mask[0, 8:] = False
    mask[1, :3] = False
    y, h = layer(x, mask=mask)
    y_ref, h_ref = ref.lru(x, w, mask=mask)
    np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_numpy(h), h_ref, rtol=1e-4, atol=1e-4)
    alone, h_alone = layer(x[:1, :8])
    np.testing.assert_allclose(to_numpy(y)[0, :8], to_numpy(alone)[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h)[0], to_numpy(h_alone)[0], rtol=1e-5, atol=1e-5)
    assert np.all(to_numpy(y)[0, 8:] == 0) and np.all(to_numpy(y)[1, :3] == 0)


def test_return_sequences_false_gives_the_last_valid_step(rng):
    x = _x(rng)
    layer = LRU(N, return_sequences=False)
    layer.build(x.shape)
    w = weights_below(layer)
    mask = np.ones((B, T), bool)
    mask[0, 5:] = False
    y_ref, _ = ref.lru(x, w, mask=mask)
    np.testing.assert_allclose(to_numpy(layer(x, mask=mask)), y_ref[[0, 1], [4, T - 1]], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_numpy(layer(x)), ref.lru(x, w)[0][:, -1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["sequential", "chunked"])
def test_mask_from_a_masking_layer_in_a_model_of_unknown_length(mode, rng):
    x = _x(rng)
    inputs = keras.Input((None, D))
    masked = keras.layers.Masking(0.0)(inputs)
    layer = LRU(N, return_sequences=False, mode=mode)
    model = keras.Model(inputs, layer(masked))
    padded = x.copy()
    padded[0, 5:] = 0.0
    alone = to_numpy(layer(x[:1, :5]))
    np.testing.assert_allclose(model.predict(padded, verbose=0)[:1], alone, rtol=1e-5, atol=1e-6)


def test_modes_agree_in_a_compiled_fit_step(rng):
    x, target = _x(rng, 16), _x(rng, 16)
    check_fit_step_modes_agree(lambda m: LRU(N, r_min=0.5, r_max=0.95, mode=m), x, target)
    check_fit_step_modes_agree(lambda m: LRUBlock(N, mode=m), x, target)


def test_lru_input_gradient_matches_finite_differences(rng):
    x = _x(rng, 8)
    for mode in ("sequential", "chunked"):
        layer = LRU(N, r_min=0.5, r_max=0.95, mode=mode)
        layer.build(x.shape)
        w = weights_below(layer)
        check_input_gradient(layer, lambda v: ref.lru(v, w)[0], x, rng)


def test_long_sequence_near_unit_radius_is_finite(rng):
    x = rng.normal(size=(1, 16_384, 4)).astype("float32")
    layer = LRU(4, r_min=0.999, r_max=0.9999, mode="chunked")
    layer.build(x.shape)
    y = to_numpy(layer(x))
    grads = weight_grads(layer, x)
    assert np.isfinite(y).all() and np.abs(y).max() < 1e3
    assert all(np.isfinite(g).all() for g in grads.values()), {k: np.isfinite(g).all() for k, g in grads.items()}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_inputs_equal_the_float32_layer_of_the_rounded_inputs(dtype, rng):
    """LRU on half inputs computes in float32: it equals the float32 layer on
    the half-rounded inputs, rounded to the half dtype (2 ulps, plus 1e-5 of
    the largest output for float32 rounding), and returns the half dtype."""
    x = rng.normal(size=(B, 256, D)).astype("float32")
    layer = LRU(N, r_min=0.99, r_max=0.999)
    half = keras.ops.cast(x, dtype)
    y = layer(half)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    expected = to_numpy(layer(keras.ops.cast(half, "float32"))).astype(np.float64)
    error = np.abs(to_numpy(keras.ops.cast(y, "float32")) - expected)
    assert (error <= 2 * ulp(expected, dtype) + 1e-5 * np.abs(expected).max()).all()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_lru_under_mixed_precision(policy, rng):
    x = _x(rng)
    check_mixed_policy(lambda: LRU(N, r_min=0.5, r_max=0.95), x, lambda layer: ref.lru(x, weights_below(layer))[0],
                       policy, rtol=2e-2)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_lru_block_under_mixed_precision(policy, rng):
    x = _x(rng)

    def make():
        return LRUBlock(N, r_min=0.5, r_max=0.95)

    check_mixed_policy(make, x, lambda block: ref.lru_block(x, weights_below(block))[0], policy, rtol=3e-2)


# --- LRUBlock -----------------------------------------------------------------------------

@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
def test_lru_block_matches_numpy_reference(mode, norm_first, rng):
    x = _x(rng)
    block = LRUBlock(N, r_min=0.5, r_max=0.95, norm_first=norm_first, mode=mode, return_state=True)
    block.build(x.shape)
    w = randomise(block, rng, skip=("nu_log", "theta_log", "gamma_log"))
    mask = np.ones((B, T), bool)
    mask[0, 9:] = False
    h0 = rng.normal(size=(B, 2 * N)).astype("float32")
    for kwargs in (dict(), dict(mask=mask), dict(initial_state=h0)):
        y, h = block(x, **kwargs)
        y_ref, h_ref = ref.lru_block(x, w, kwargs.get("mask"), norm_first, kwargs.get("initial_state"))
        np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(to_numpy(h), h_ref, rtol=1e-4, atol=1e-4)


def test_lru_block_weights_and_chunked_run(rng):
    block = LRUBlock(N, return_state=True)
    x = _x(rng, 40)
    whole, h_whole = block(x)
    assert sorted(weights_below(block)) == sorted(
        ["lru/nu_log", "lru/theta_log", "lru/gamma_log", "lru/B_re", "lru/B_im", "lru/C_re", "lru/C_im",
         "lru/D", "glu/kernel", "glu/bias", "norm/gamma", "norm/beta"])
    assert tuple(block.glu.kernel.shape) == (D, 2 * D)
    first, h = block(x[:, :25])
    second, h = block(x[:, 25:], initial_state=h)
    np.testing.assert_allclose(to_numpy(keras.ops.concatenate([first, second], 1)), to_numpy(whole),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), to_numpy(h_whole), rtol=1e-5, atol=1e-5)


def test_lru_block_dropout_only_in_training(rng):
    x = _x(rng)
    block = LRUBlock(N, dropout=0.5)
    block.build(x.shape)
    w = weights_below(block)
    expected = ref.lru_block(x, w)[0]
    np.testing.assert_allclose(to_numpy(block(x)), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_numpy(block(x, training=False)), expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(to_numpy(block(x, training=True)), expected, atol=1e-3)


# --- serialisation ---------------------------------------------------------------------

LAYERS = {
    "lru": lambda: LRU(N, r_min=0.2, r_max=0.9, max_phase=3.0, mode="parallel", name="rec"),
    "lru_last": lambda: LRU(N, return_sequences=False, mode="chunked", name="rec"),
    "lru_block": lambda: LRUBlock(N, r_min=0.1, r_max=0.8, dropout=0.2, norm_first=True, mode="chunked",
                                  name="rec"),
}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_save_and_load_round_trip(kind, tmp_path, rng):
    x = _x(rng)
    inputs = keras.Input((T, D))
    layer = LAYERS[kind]()
    model = keras.Model(inputs, layer(inputs))
    randomise(layer, rng, scale=0.3, skip=("nu_log", "theta_log", "gamma_log"))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras").get_layer("rec")
    assert type(loaded) is type(layer) and loaded.get_config() == layer.get_config()
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(layer(x)), rtol=1e-6, atol=1e-6)
    assert [w.path for w in loaded.weights] == [w.path for w in layer.weights]


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


@pytest.mark.parametrize("cls", [LRU, LRUBlock])
def test_unknown_mode_lists_the_allowed_ones(cls):
    with pytest.raises(ValueError, match=r"unknown `mode` 'fast'; allowed: auto, parallel, sequential, chunked"):
        cls(4, mode="fast")


def test_wrong_rank_width_dtype_and_state(rng):
    x = _x(rng)
    layer = LRU(D)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, features\) with a known last "
                                         r"dimension; got shape \(2, 4\)"):
        layer(x[:, 0])
    layer(x)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, 4\); got shape \(2, 12, 5\)"):
        layer(_x(rng, width=5))
    with pytest.raises(ValueError, match=r"`inputs` must be floating point; got dtype int32"):
        layer(np.ones((B, T, D), "int32"))
    with pytest.raises(ValueError, match=r"`initial_state` must have shape \(2, 8\); got shape \(2, 9\)"):
        layer(x, initial_state=np.zeros((B, 2 * D + 1), "float32"))
    with pytest.raises(ValueError, match=r"`initial_state` must have shape \(2, 8\); got shape \(3, 8\)"):
        layer(x, initial_state=np.zeros((B + 1, 2 * D), "float32"))


def test_lru_block_bad_arguments():
    with pytest.raises(ValueError, match=r"LRUBlock: `dropout` must be a number in \[0, 1\); got 1.0"):
        LRUBlock(N, dropout=1.0)
    with pytest.raises(ValueError, match=r"LRUBlock: `norm_first` must be True or False; got 'yes'"):
        LRUBlock(N, norm_first="yes")
    with pytest.raises(ValueError, match=r"LRU: `r_min` must be smaller than `r_max`"):
        LRUBlock(N, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, features\)"):
        LRUBlock(N)(np.zeros((B, D), "float32"))
