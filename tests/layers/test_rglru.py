"""RGLRU and RecurrentBlock (Griffin, De et al. 2024, arXiv 2402.19427, recurrentgemma's semantics) against
their NumPy references; their initialisation, weights and arguments. What every recurrent layer must do is
in test_recurrent_layers.py."""

import keras
import numpy as np
import pytest

from glu_zoo.layers import RGLRU, RecurrentBlock
from glu_zoo.layers import rglru as rglru_module
from tests import reference as ref
from tests.conftest import central_difference, input_grads, to_numpy
from tests.layers.recurrent_helpers import MODES, randomise, sequences, weights_below

B, T, D = 2, 12, 4


@pytest.fixture
def rng():
    return np.random.default_rng(5)


@pytest.mark.parametrize("mode", MODES)
def test_rglru_matches_numpy_reference(mode, rng):
    x = sequences(rng, width=6)
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
    x = sequences(rng)
    layer = RGLRU(D, num_heads=2)
    layer.build(x.shape)
    w = weights_below(layer)
    gate_x = ref.sigmoid(ref.block_diagonal(x[:, 0].astype(np.float64), w["input_gate_kernel"],
                                            w["input_gate_bias"]))
    np.testing.assert_allclose(to_numpy(layer(x))[:, 0], gate_x * x[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
def test_block_matches_numpy_reference(mode, rng):
    x = sequences(rng)
    block = RecurrentBlock(D, lru_width=6, num_heads=3, mode=mode)
    block.build(x.shape)
    w = randomise(block, rng, skip=("a_param",))
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


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_reset_rows_ignore_the_state(mode, rng):
    """Rows marked by `reset` run as if no state were given (the stream's first
    chunk); the other rows carry theirs, for RGLRU and RecurrentBlock."""
    x = sequences(rng, width=6)
    reset = np.array([True, False])
    rg = RGLRU(6, num_heads=2, mode=mode, return_state=True)
    rg.build(x.shape)
    w = randomise(rg, rng, skip=("a_param",))
    h0 = rng.normal(size=(B, 6)).astype("float32")
    y, h = rg(x, initial_state=h0, reset=reset)
    fresh_y, fresh_h = ref.rglru(x[:1], w)
    kept_y, kept_h = ref.rglru(x[1:], w, h0=h0[1:])
    np.testing.assert_allclose(to_numpy(y), np.concatenate([fresh_y, kept_y]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h), np.concatenate([fresh_h, kept_h]), rtol=1e-4, atol=1e-5)

    block = RecurrentBlock(D, lru_width=6, num_heads=3, mode=mode, return_state=True)
    block.build((B, T, D))
    w = randomise(block, rng, skip=("a_param",))
    x = sequences(rng)
    state = (rng.normal(size=(B, 3, 6)).astype("float32"), rng.normal(size=(B, 6)).astype("float32"))
    y, (conv, lru) = block(x, initial_state=state, reset=reset)
    fresh, (fresh_conv, fresh_lru) = ref.recurrent_block(x[:1], w)
    kept, (kept_conv, kept_lru) = ref.recurrent_block(x[1:], w, state=(state[0][1:], state[1][1:]))
    np.testing.assert_allclose(to_numpy(y), np.concatenate([fresh, kept]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_numpy(conv), np.concatenate([fresh_conv, kept_conv]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_numpy(lru), np.concatenate([fresh_lru, kept_lru]), rtol=1e-4, atol=1e-4)
    # Without the reset, the first row's zero state is not the same as no state (√(1 − a²) ≠ 1).
    zero = (np.zeros((B, 3, 6), "float32"), np.zeros((B, 6), "float32"))
    assert np.abs(to_numpy(block(x, initial_state=zero)[0])[:1] - fresh).max() > 1e-3


def test_trecvit_initialisation_arguments():
    """TRecViT's official init: gate kernels N(0, 1/lru_width) over all heads,
    linear_out N(0, (2/depth)/lru_width)."""
    block = RecurrentBlock(64, lru_width=1024, num_heads=8, gate_stddev=np.sqrt(1 / 1024), out_init_scale=0.25)
    block.build((1, 2, 64))
    w = weights_below(block)
    assert abs(w["rg_lru/a_gate_kernel"].std() - np.sqrt(1 / 1024)) < 0.002
    assert abs(w["rg_lru/input_gate_kernel"].std() - np.sqrt(1 / 1024)) < 0.002
    assert abs(w["linear_out_kernel"].std() - np.sqrt(0.25 / 1024)) < 0.001
    default = RecurrentBlock(64, lru_width=1024, num_heads=8)
    default.build((1, 2, 64))
    assert abs(weights_below(default)["rg_lru/a_gate_kernel"].std() - np.sqrt(1 / 128)) < 0.005
    assert abs(weights_below(default)["linear_out_kernel"].std() - np.sqrt(1 / 1024)) < 0.002


# --- the gradient of √ -------------------------------------------------------------------------

def test_sqrt_bound_derivative():
    x = np.array([0.05, 0.3, 1.0, 2.5], "float32")
    (grad,) = input_grads(lambda t: keras.ops.sum(rglru_module._sqrt_bound_derivative(t)), x)
    np.testing.assert_allclose(grad, central_difference(np.sqrt, x, eps=1e-5), rtol=1e-4)
    np.testing.assert_allclose(to_numpy(rglru_module._sqrt_bound_derivative(x)), np.sqrt(x), rtol=1e-6)
    (grad,) = input_grads(lambda t: keras.ops.sum(rglru_module._sqrt_bound_derivative(t)),
                          np.array([0.0, 1e-12], "float32"))
    np.testing.assert_allclose(grad, [1000.0, 1000.0], rtol=1e-5)


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


def test_block_bad_inputs_and_state(rng):
    x = sequences(rng)
    block = RecurrentBlock(D, lru_width=6, num_heads=2)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, 4\) with a known last "
                                         r"dimension; got shape \(2, 12, 5\)"):
        block(sequences(rng, width=5))
    with pytest.raises(ValueError, match=r"`conv_state` must have shape \(2, 3, 6\); got shape \(2, 2, 6\)"):
        block(x, initial_state=(np.zeros((B, 2, 6), "float32"), np.zeros((B, 6), "float32")))
    with pytest.raises(ValueError, match=r"`initial_state` must be a tuple \(conv_state, lru_state\); got \w+"):
        block(x, initial_state=np.zeros((B, 6), "float32"))
    with pytest.raises(ValueError, match=r"`lru_state` must have shape \(2, 6\); got shape \(2, 7\)"):
        block(x, initial_state=(np.zeros((B, 3, 6), "float32"), np.zeros((B, 7), "float32")))
    state = (np.zeros((B, 3, 6), "float32"), np.zeros((B, 6), "float32"))
    with pytest.raises(ValueError, match=r"`reset` must have shape \(2,\) \(one flag per row\); got shape \(2, 1\)"):
        block(x, initial_state=state, reset=np.zeros((B, 1), bool))
    with pytest.raises(ValueError, match=r"`gate_stddev` must be a number in \(0.0, inf\); got -1"):
        RecurrentBlock(D, gate_stddev=-1)
    with pytest.raises(ValueError, match=r"`out_init_scale` must be a number in \(0.0, inf\); got 0"):
        RecurrentBlock(D, out_init_scale=0)
