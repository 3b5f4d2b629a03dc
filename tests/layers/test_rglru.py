"""RGLRU and RecurrentBlock (Griffin, recurrentgemma's semantics) against their NumPy references."""

import inspect

import keras
import numpy as np
import pytest

from glu_zoo.layers import RGLRU, RecurrentBlock
from glu_zoo.layers import rglru as rglru_module
from tests import reference as ref
from tests.conftest import central_difference, input_grads, to_numpy, weight_grads
from tests.layers.recurrent_helpers import (
    MODES,
    check_fit_step_modes_agree,
    check_input_gradient,
    check_mixed_policy,
    randomise,
    ulp,
    weights_below,
)

B, T, D = 2, 12, 4


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def _x(rng, length=T, width=D):
    return rng.normal(size=(B, length, width)).astype("float32")


def _block(rng, x, **kwargs):
    block = RecurrentBlock(D, lru_width=6, num_heads=3, **kwargs)
    block.build(x.shape)
    return block, randomise(block, rng, skip=("a_param",))


@pytest.mark.parametrize("mode", MODES)
def test_rglru_matches_numpy_reference(mode, rng):
    x = _x(rng, width=6)
    layer = RGLRU(6, num_heads=2, c=8.0, mode=mode, return_state=True)
    layer.build(x.shape)
    w = randomise(layer, rng, skip=("a_param",))
    h0 = rng.normal(size=(B, 6)).astype("float32")
    for state in (None, h0):
        y, h = layer(x, initial_state=state)
        y_ref, h_ref = ref.rglru(x, w, 8.0, state)
        np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(to_numpy(h), h_ref, rtol=1e-4, atol=1e-5)


def test_rglru_resets_at_the_first_step(rng):
    """h_0 = gate_x ⊗ x_0: no decay and multiplier 1 without a carried state."""
    x = _x(rng)
    layer = RGLRU(D, num_heads=2)
    layer.build(x.shape)
    w = weights_below(layer)
    gate_x = ref.sigmoid(ref.block_diagonal(x[:, 0].astype(np.float64), w["input_gate_kernel"],
                                            w["input_gate_bias"]))
    np.testing.assert_allclose(to_numpy(layer(x))[:, 0], gate_x * x[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
def test_block_matches_numpy_reference(mode, rng):
    x = _x(rng)
    block, w = _block(rng, x, mode=mode)
    np.testing.assert_allclose(to_numpy(block(x)), ref.recurrent_block(x, w)[0], rtol=1e-4, atol=1e-4)


def test_weight_names_and_shapes():
    rg = RGLRU(6, num_heads=3)
    rg.build((B, T, 6))
    assert {w.name: tuple(w.shape) for w in rg.weights} == {
        "a_param": (6,), "input_gate_kernel": (3, 2, 2), "input_gate_bias": (3, 2),
        "a_gate_kernel": (3, 2, 2), "a_gate_bias": (3, 2)}
    block = RecurrentBlock(D, lru_width=6, num_heads=3)
    block.build((B, T, D))
    assert {k: tuple(v.shape) for k, v in weights_below(block).items()} == {
        "norm_scale": (4,), "linear_y_kernel": (4, 6), "linear_y_bias": (6,), "linear_x_kernel": (4, 6),
        "linear_x_bias": (6,), "conv_kernel": (4, 6), "conv_bias": (6,), "linear_out_kernel": (6, 4),
        "linear_out_bias": (4,), "rg_lru/a_param": (6,), "rg_lru/input_gate_kernel": (3, 2, 2),
        "rg_lru/input_gate_bias": (3, 2), "rg_lru/a_gate_kernel": (3, 2, 2), "rg_lru/a_gate_bias": (3, 2)}


def test_block_parameter_count_matches_trecvit_b():
    """TRecViT-B's recurrent block (768 → LRU width 1536, 12 heads; arXiv
    2412.14294) holds 3,949,056 weights, RMSNorm scale included."""
    block = RecurrentBlock(768, lru_width=1536, num_heads=12)
    block.build((1, 4, 768))
    assert block.count_params() == 3_949_056
    assert tuple(block.rg_lru.a_gate_kernel.shape) == (12, 128, 128)


def test_initialisation_follows_griffin():
    rg = RGLRU(1000, num_heads=10, min_rad=0.5)
    rg.build((1, 1, 1000))
    w = weights_below(rg)
    assert abs(w["a_gate_kernel"].std() - 0.1) < 0.01  # N(0, 1/(width/num_heads))
    a = np.exp(-np.log1p(np.exp(w["a_param"])))  # a = exp(−softplus(a_param))
    assert a.min() >= 0.5 - 1e-4 and a.max() <= 0.999 + 1e-4
    assert abs(np.mean(a**2) - (0.25 + 0.999**2) / 2) < 0.02


# --- chunks, masks, modes ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sequential", "chunked"])
def test_chunked_run_with_carried_state_equals_whole_run(mode, rng):
    x = _x(rng, 48)
    layer = RGLRU(D, mode=mode, return_state=True)
    whole, h_whole = layer(x)
    first, h = layer(x[:, :16])
    second, h = layer(x[:, 16:], initial_state=h)
    np.testing.assert_allclose(to_numpy(keras.ops.concatenate([first, second], 1)), to_numpy(whole),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), to_numpy(h_whole), rtol=1e-5, atol=1e-5)


def test_block_chunked_run_with_carried_state_equals_whole_run(rng):
    x = _x(rng, 48)
    block, w = _block(rng, x, return_state=True)
    whole, _ = block(x)
    first, state = block(x[:, :16])
    second, _ = block(x[:, 16:], initial_state=state)
    np.testing.assert_allclose(to_numpy(keras.ops.concatenate([first, second], 1)), to_numpy(whole),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(whole), ref.recurrent_block(x, w)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
def test_padded_batch_equals_unpadded_sequences(mode, rng):
    """Right padding (row 0) and left padding (row 1): padded steps keep the
    state and give 0, the reset happens at the first valid step."""
    x = _x(rng)
    layer = RGLRU(D, num_heads=2, mode=mode, return_state=True)
    layer.build(x.shape)
    w = randomise(layer, rng, skip=("a_param",))
    mask = np.ones((B, T), bool)
    mask[0, 8:] = False
    mask[1, :3] = False
    y, h = layer(x, mask=mask)
    y_ref, h_ref = ref.rglru(x, w, mask=mask)
    np.testing.assert_allclose(to_numpy(y), y_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), h_ref, rtol=1e-4, atol=1e-5)
    alone = layer(x[1:, 3:])[0]
    np.testing.assert_allclose(to_numpy(y)[1, 3:], to_numpy(alone)[0], rtol=1e-5, atol=1e-5)


def test_modes_agree_in_a_compiled_fit_step(rng):
    x, target = _x(rng, 16), _x(rng, 16)
    check_fit_step_modes_agree(lambda m: RGLRU(D, num_heads=2, mode=m), x, target)
    check_fit_step_modes_agree(lambda m: RecurrentBlock(D, lru_width=6, num_heads=2, mode=m), x, target)


# --- gradients -------------------------------------------------------------------------

def test_rglru_input_gradient_matches_finite_differences(rng):
    x = _x(rng, 8)
    for mode in ("sequential", "chunked"):
        layer = RGLRU(D, num_heads=2, mode=mode)
        layer.build(x.shape)
        w = randomise(layer, rng, skip=("a_param",))
        check_input_gradient(layer, lambda v: ref.rglru(v, w)[0], x, rng)


def test_sqrt_bound_derivative():
    x = np.array([0.05, 0.3, 1.0, 2.5], "float32")
    (grad,) = input_grads(lambda t: keras.ops.sum(rglru_module._sqrt_bound_derivative(t)), x)
    np.testing.assert_allclose(grad, central_difference(np.sqrt, x, eps=1e-5), rtol=1e-4)
    np.testing.assert_allclose(to_numpy(rglru_module._sqrt_bound_derivative(x)), np.sqrt(x), rtol=1e-6)
    (grad,) = input_grads(lambda t: keras.ops.sum(rglru_module._sqrt_bound_derivative(t)),
                          np.array([0.0, 1e-12], "float32"))
    np.testing.assert_allclose(grad, [1000.0, 1000.0], rtol=1e-5)


def test_long_sequence_near_unit_radius_is_finite(rng):
    x = rng.normal(size=(1, 16_384, 4)).astype("float32")
    layer = RGLRU(4, min_rad=0.999, mode="chunked")
    layer.build(x.shape)
    y = to_numpy(layer(x))
    grads = weight_grads(layer, x)
    assert np.isfinite(y).all() and np.abs(y).max() < 1e3
    assert all(np.isfinite(g).all() for g in grads.values()), {k: np.isfinite(g).all() for k, g in grads.items()}


# --- precision ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_inputs_equal_the_float32_layer_of_the_rounded_inputs(dtype, rng):
    x = rng.normal(size=(B, 256, D)).astype("float32")
    layer = RGLRU(D, min_rad=0.99)
    half = keras.ops.cast(x, dtype)
    y = layer(half)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    expected = to_numpy(layer(keras.ops.cast(half, "float32"))).astype(np.float64)
    error = np.abs(to_numpy(keras.ops.cast(y, "float32")) - expected)
    assert (error <= 2 * ulp(expected, dtype) + 1e-5 * np.abs(expected).max()).all()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_rglru_under_mixed_precision(policy, rng):
    x = _x(rng)
    check_mixed_policy(lambda: RGLRU(D, num_heads=2), x, lambda layer: ref.rglru(x, weights_below(layer))[0],
                       policy, rtol=2e-2)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_block_under_mixed_precision(policy, rng):
    x = _x(rng)
    check_mixed_policy(lambda: RecurrentBlock(D, lru_width=6, num_heads=2), x,
                       lambda block: ref.recurrent_block(x, randomise(block, rng, skip=("a_param",)))[0],
                       policy, rtol=5e-2)


# --- serialisation ---------------------------------------------------------------------

LAYERS = {
    "rglru": lambda: RGLRU(D, num_heads=2, c=6.0, min_rad=0.8, mode="sequential", name="rec"),
    "block": lambda: RecurrentBlock(D, lru_width=6, num_heads=3, conv_width=3, min_rad=0.5, mode="chunked",
                                    name="rec"),
}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_save_and_load_round_trip(kind, tmp_path, rng):
    x = _x(rng)
    inputs = keras.Input((T, D))
    layer = LAYERS[kind]()
    model = keras.Model(inputs, layer(inputs))
    randomise(layer, rng, scale=0.3, skip=("a_param",))
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


@pytest.mark.parametrize("cls", [RGLRU, RecurrentBlock])
def test_unknown_mode_lists_the_allowed_ones(cls):
    with pytest.raises(ValueError, match=r"unknown `mode` 'fast'; allowed: auto, parallel, sequential, chunked"):
        cls(4, mode="fast")


def test_wrong_rank_width_dtype_and_state(rng):
    x = _x(rng)
    layer = RGLRU(D)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, 4\) with a known last "
                                         r"dimension; got shape \(2, 4\)"):
        layer(x[:, 0])
    layer(x)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, 4\); got shape \(2, 12, 5\)"):
        layer(_x(rng, width=5))
    with pytest.raises(ValueError, match=r"`inputs` must be floating point; got dtype int32"):
        layer(np.ones((B, T, D), "int32"))
    with pytest.raises(ValueError, match=r"`initial_state` must have shape \(2, 4\); got shape \(2, 5\)"):
        layer(x, initial_state=np.zeros((B, D + 1), "float32"))


def test_block_bad_inputs_and_state(rng):
    x = _x(rng)
    block = RecurrentBlock(D, lru_width=6, num_heads=2)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, 4\) with a known last "
                                         r"dimension; got shape \(2, 12, 5\)"):
        block(_x(rng, width=5))
    with pytest.raises(ValueError, match=r"`conv_state` must have shape \(2, 3, 6\); got shape \(2, 2, 6\)"):
        block(x, initial_state=(np.zeros((B, 2, 6), "float32"), np.zeros((B, 6), "float32")))
    with pytest.raises(ValueError, match=r"`initial_state` must be a tuple \(conv_state, lru_state\); got \w+"):
        block(x, initial_state=np.zeros((B, 6), "float32"))
    with pytest.raises(ValueError, match=r"`lru_state` must have shape \(2, 6\); got shape \(2, 7\)"):
        block(x, initial_state=(np.zeros((B, 3, 6), "float32"), np.zeros((B, 7), "float32")))
