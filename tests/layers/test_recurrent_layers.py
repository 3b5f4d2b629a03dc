"""What every recurrent layer (LRU, LRUBlock, RGLRU, RecurrentBlock) must do,
one test per property over a table of cases: chunks with a carried state,
padding, modes, gradients, long sequences, half precision, serialisation and
bad input. Each family's NumPy references, initialisation and weights are in
test_lru.py and test_rglru.py."""

import dataclasses
import inspect

import keras
import numpy as np
import pytest

from glu_zoo.layers import LRU, RGLRU, LRUBlock, RecurrentBlock
from tests import reference as ref
from tests.conftest import to_numpy, weight_grads
from tests.layers.recurrent_helpers import (
    check_fit_step_modes_agree,
    check_input_gradient,
    check_mixed_policy,
    randomise,
    sequences,
    ulp,
)

B, T, D = 2, 12, 4
LRU_RADII = ("nu_log", "theta_log", "gamma_log")  # what randomise() leaves alone: the recurrences' decay
RGLRU_RADII = ("a_param",)


@dataclasses.dataclass(frozen=True)
class Case:
    """One recurrent layer at a tiny size on (B, time, D) inputs.

    reference(x, w, mask=None) -> (y, state): its float64 NumPy reference.
    state_width: the state (batch, state_width) of a one-part state (None: a tuple).
    features: how the rank error names the last input dimension.
    chunk_modes, chunk_split: the modes (None: the default) and (length, split) of the chunked run.
    slow, near_unit: kwargs for a slow decay (half precision) and one near the unit radius.
    """

    cls: type
    kwargs: dict
    reference: object
    skip: tuple
    atol: float = 1e-4
    mixed_rtol: float = 2e-2
    chunk_modes: tuple = (None,)
    chunk_split: tuple = (48, 16)
    state_width: int = None
    features: str = None
    slow: dict = None
    near_unit: dict = None

    def make(self, **kwargs):
        return self.cls(**{**self.kwargs, **kwargs})


CASES = {
    "LRU": Case(LRU, dict(state_dim=4, r_min=0.5, r_max=0.95), lambda x, w, mask=None: ref.lru(x, w, mask=mask),
                LRU_RADII, chunk_modes=("sequential", "parallel", "chunked"), state_width=8, features="features",
                slow=dict(r_min=0.99, r_max=0.999), near_unit=dict(r_min=0.999, r_max=0.9999)),
    "LRUBlock": Case(LRUBlock, dict(state_dim=3, r_min=0.5, r_max=0.95),
                     lambda x, w, mask=None: ref.lru_block(x, w, mask), LRU_RADII, mixed_rtol=3e-2,
                     chunk_split=(40, 25)),
    "RGLRU": Case(RGLRU, dict(width=D, num_heads=2), lambda x, w, mask=None: ref.rglru(x, w, mask=mask),
                  RGLRU_RADII, atol=1e-5, chunk_modes=("sequential", "chunked"), state_width=D, features="4",
                  slow=dict(min_rad=0.99), near_unit=dict(min_rad=0.999)),
    "RecurrentBlock": Case(RecurrentBlock, dict(width=D, lru_width=6, num_heads=2),
                           lambda x, w, mask=None: ref.recurrent_block(x, w), RGLRU_RADII, mixed_rtol=5e-2),
}
ALL = [pytest.param(case, id=name) for name, case in CASES.items()]
CORE = [pytest.param(CASES[name], id=name) for name in ("LRU", "RGLRU")]  # the recurrences without a block


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def _close(a, b, rtol, atol):
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=rtol, atol=atol)


# --- chunks, masks, modes ------------------------------------------------------------------

@pytest.mark.parametrize("case, mode", [pytest.param(case, mode, id=f"{name}-{mode or 'default'}")
                                        for name, case in CASES.items() for mode in case.chunk_modes])
def test_chunked_run_with_carried_state_equals_whole_run(case, mode, rng):
    """Two chunks, the second from the first's final state, equal the whole
    run (outputs and every part of the state), and the whole run equals the
    NumPy reference."""
    length, split = case.chunk_split
    x = sequences(rng, length)
    layer = case.make(return_state=True, **({} if mode is None else {"mode": mode}))
    layer.build(x.shape)
    w = randomise(layer, rng, skip=case.skip)
    whole, h_whole = layer(x)
    first, h = layer(x[:, :split])
    second, h = layer(x[:, split:], initial_state=h)
    _close(keras.ops.concatenate([first, second], 1), whole, rtol=1e-5, atol=1e-5)
    for part, whole_part in zip(keras.tree.flatten(h), keras.tree.flatten(h_whole), strict=True):
        _close(part, whole_part, rtol=1e-5, atol=1e-5)
    _close(whole, case.reference(x, w)[0], rtol=1e-4, atol=case.atol)


@pytest.mark.parametrize("mode", ["sequential", "parallel", "chunked"])
@pytest.mark.parametrize("case", CORE)
def test_padded_batch_equals_unpadded_sequences(case, mode, rng):
    """Right padding (row 0) and left padding (row 1): padded steps keep the
    state and give 0, the valid steps (and the final state) match the
    sequence run alone (for RG-LRU: the reset happens at the first valid step)."""
    x = sequences(rng)
    layer = case.make(mode=mode, return_state=True)
    layer.build(x.shape)
    w = randomise(layer, rng, skip=case.skip)
    mask = np.ones((B, T), bool)
    mask[0, 8:] = False
    mask[1, :3] = False
    y, h = layer(x, mask=mask)
    y_ref, h_ref = case.reference(x, w, mask=mask)
    _close(y, y_ref, rtol=1e-4, atol=case.atol)
    _close(h, h_ref, rtol=1e-4, atol=case.atol)
    y, h = to_numpy(y), to_numpy(h)
    for row, valid in ((0, slice(None, 8)), (1, slice(3, None))):
        alone, h_alone = layer(x[row:row + 1, valid])
        _close(y[row, valid], alone[0], rtol=1e-5, atol=1e-5)
        _close(h[row], h_alone[0], rtol=1e-5, atol=1e-5)
    assert np.all(y[0, 8:] == 0) and np.all(y[1, :3] == 0)


@pytest.mark.parametrize("case", ALL)
def test_modes_agree_in_a_compiled_fit_step(case, rng):
    x, target = sequences(rng, 16), sequences(rng, 16)
    check_fit_step_modes_agree(lambda m: case.make(mode=m), x, target)


# --- gradients -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sequential", "chunked"])
@pytest.mark.parametrize("case", CORE)
def test_input_gradient_matches_finite_differences(case, mode, rng):
    x = sequences(rng, 8)
    layer = case.make(mode=mode)
    layer.build(x.shape)
    w = randomise(layer, rng, skip=case.skip)
    check_input_gradient(layer, lambda v: case.reference(v, w)[0], x, rng)


@pytest.mark.parametrize("case", CORE)
def test_long_sequence_near_unit_radius_is_finite(case, rng):
    x = rng.normal(size=(1, 16_384, D)).astype("float32")
    layer = case.make(mode="chunked", **case.near_unit)
    layer.build(x.shape)
    y = to_numpy(layer(x))
    grads = weight_grads(layer, x)
    assert np.isfinite(y).all() and np.abs(y).max() < 1e3
    assert all(np.isfinite(g).all() for g in grads.values()), {k: np.isfinite(g).all() for k, g in grads.items()}


# --- precision ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", CORE)
def test_half_inputs_equal_the_float32_layer_of_the_rounded_inputs(case, dtype, rng):
    """On half inputs the recurrence computes in float32: it equals the float32
    layer on the half-rounded inputs, rounded to the half dtype (2 ulps, plus
    1e-5 of the largest output for float32 rounding), and returns the half dtype."""
    x = rng.normal(size=(B, 256, D)).astype("float32")
    layer = case.make(**case.slow)
    half = keras.ops.cast(x, dtype)
    y = layer(half)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    expected = to_numpy(layer(keras.ops.cast(half, "float32"))).astype(np.float64)
    error = np.abs(to_numpy(keras.ops.cast(y, "float32")) - expected)
    assert (error <= 2 * ulp(expected, dtype) + 1e-5 * np.abs(expected).max()).all()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("case", ALL)
def test_under_mixed_precision(case, policy, rng):
    x = sequences(rng)
    check_mixed_policy(case.make, x, lambda layer: case.reference(x, randomise(layer, rng, skip=case.skip))[0],
                       policy, rtol=case.mixed_rtol)


# --- serialisation ---------------------------------------------------------------------

CONFIGURED = {  # every argument away from its default, where it can be
    "lru": (lambda: LRU(3, r_min=0.2, r_max=0.9, max_phase=3.0, mode="parallel", name="rec"), LRU_RADII),
    "lru_last": (lambda: LRU(3, return_sequences=False, mode="chunked", name="rec"), LRU_RADII),
    "lru_block": (lambda: LRUBlock(3, r_min=0.1, r_max=0.8, dropout=0.2, norm_first=True, mode="chunked",
                                   name="rec"), LRU_RADII),
    "rglru": (lambda: RGLRU(D, num_heads=2, c=6.0, min_rad=0.8, mode="sequential", name="rec"), RGLRU_RADII),
    "block": (lambda: RecurrentBlock(D, lru_width=6, num_heads=3, conv_width=3, min_rad=0.5, mode="chunked",
                                     name="rec"), RGLRU_RADII),
}


@pytest.mark.parametrize("kind", list(CONFIGURED))
def test_save_and_load_round_trip(kind, tmp_path, rng):
    x = sequences(rng)
    make, skip = CONFIGURED[kind]
    inputs = keras.Input((T, D))
    layer = make()
    model = keras.Model(inputs, layer(inputs))
    randomise(layer, rng, scale=0.3, skip=skip)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras").get_layer("rec")
    assert type(loaded) is type(layer) and loaded.get_config() == layer.get_config()
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(layer(x)), rtol=1e-6, atol=1e-6)
    assert [w.path for w in loaded.weights] == [w.path for w in layer.weights]


@pytest.mark.parametrize("kind", list(CONFIGURED))
def test_get_config_is_complete(kind):
    layer = CONFIGURED[kind][0]()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    args = set(inspect.signature(type(layer).__init__).parameters) - {"self", "kwargs"}
    assert args <= set(config), args - set(config)


# --- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("case", ALL)
def test_unknown_mode_lists_the_allowed_ones(case):
    with pytest.raises(ValueError, match=r"unknown `mode` 'fast'; allowed: auto, parallel, sequential, chunked"):
        case.cls(4, mode="fast")


@pytest.mark.parametrize("case", CORE)
def test_wrong_rank_width_dtype_and_state(case, rng):
    x = sequences(rng)
    layer = case.make()
    n = case.state_width
    with pytest.raises(ValueError, match=rf"`inputs` must have shape \(batch, time, {case.features}\) with a known "
                                         r"last dimension; got shape \(2, 4\)"):
        layer(x[:, 0])
    layer(x)
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, time, 4\); got shape \(2, 12, 5\)"):
        layer(sequences(rng, width=5))
    with pytest.raises(ValueError, match=r"`inputs` must be floating point; got dtype int32"):
        layer(np.ones((B, T, D), "int32"))
    with pytest.raises(ValueError, match=rf"`initial_state` must have shape \(2, {n}\); got shape \(2, {n + 1}\)"):
        layer(x, initial_state=np.zeros((B, n + 1), "float32"))
    with pytest.raises(ValueError, match=rf"`initial_state` must have shape \(2, {n}\); got shape \(3, {n}\)"):
        layer(x, initial_state=np.zeros((B + 1, n), "float32"))


@pytest.mark.parametrize("case", ALL)
def test_no_time_steps_is_a_clear_error(case, rng):
    layer = case.make()
    layer(sequences(rng))
    with pytest.raises(ValueError, match=r"`inputs` must have at least one time step; got shape \(2, 0, 4\)"):
        layer(np.zeros((B, 0, D), "float32"))
