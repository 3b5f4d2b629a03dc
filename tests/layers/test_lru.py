"""LRU and LRUBlock (Orvieto et al. 2023, arXiv 2303.06349) against their NumPy references, on every
mode; their initialisation, weights and arguments. What every recurrent layer must do is in
test_recurrent_layers.py."""

import math

import keras
import numpy as np
import pytest

from glu_zoo.layers import LRU, LRUBlock
from tests import reference as ref
from tests.conftest import to_numpy
from tests.layers.recurrent_helpers import MODES, randomise, sequences, weights_below

B, T, D, N = 2, 12, 4, 3


@pytest.fixture
def rng():
    return np.random.default_rng(3)


@pytest.mark.parametrize("mode", MODES)
def test_lru_matches_numpy_reference(mode, rng):
    x = sequences(rng)
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
    block = LRUBlock(N)
    block.build((B, T, D))
    assert {w.name: tuple(w.shape) for w in block.lru.weights} == {
        "nu_log": (N,), "theta_log": (N,), "gamma_log": (N,), "B_re": (D, N), "B_im": (D, N),
        "C_re": (N, D), "C_im": (N, D), "D": (D,)}
    assert sorted(weights_below(block)) == sorted(
        ["lru/nu_log", "lru/theta_log", "lru/gamma_log", "lru/B_re", "lru/B_im", "lru/C_re", "lru/C_im",
         "lru/D", "glu/kernel", "glu/bias", "norm/gamma", "norm/beta"])
    assert tuple(block.glu.kernel.shape) == (D, 2 * D)


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


def test_return_sequences_false_gives_the_last_valid_step(rng):
    x = sequences(rng)
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
    x = sequences(rng)
    inputs = keras.Input((None, D))
    masked = keras.layers.Masking(0.0)(inputs)
    layer = LRU(N, return_sequences=False, mode=mode)
    model = keras.Model(inputs, layer(masked))
    padded = x.copy()
    padded[0, 5:] = 0.0
    alone = to_numpy(layer(x[:1, :5]))
    np.testing.assert_allclose(model.predict(padded, verbose=0)[:1], alone, rtol=1e-5, atol=1e-6)


# --- LRUBlock -----------------------------------------------------------------------------

@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
def test_lru_block_matches_numpy_reference(mode, norm_first, rng):
    x = sequences(rng)
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


def test_lru_block_dropout_only_in_training(rng):
    x = sequences(rng)
    block = LRUBlock(N, dropout=0.5)
    block.build(x.shape)
    w = weights_below(block)
    expected = ref.lru_block(x, w)[0]
    np.testing.assert_allclose(to_numpy(block(x)), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_numpy(block(x, training=False)), expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(to_numpy(block(x, training=True)), expected, atol=1e-3)


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


def test_lru_block_bad_arguments():
    with pytest.raises(ValueError, match=r"LRUBlock: `dropout` must be a number in \[0, 1\); got 1.0"):
        LRUBlock(N, dropout=1.0)
    with pytest.raises(ValueError, match=r"LRUBlock: `norm_first` must be True or False; got 'yes'"):
        LRUBlock(N, norm_first="yes")
    with pytest.raises(ValueError, match=r"LRU: `r_min` must be smaller than `r_max`"):
        LRUBlock(N, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, features\)"):
        LRUBlock(N)(np.zeros((B, D), "float32"))
