"""ActivatorGatingUnit (arXiv 2405.15953) and PyTorch's default init."""

import json

import keras
import numpy as np
import pytest

from glu_zoo.layers import ActivatorGatingUnit, torch_linear_init
from tests import reference as ref
from tests.conftest import to_numpy
from tests.models import randomise, weights_of


@pytest.mark.parametrize("token_mixing", [False, True], ids=["paper", "mixing"])
def test_gating_unit_matches_numpy_reference(token_mixing):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 5, 6)).astype("float32")
    layer = ActivatorGatingUnit(6, 7, token_mixing=token_mixing)
    layer.build(x.shape)
    shapes = {k: v.shape for k, v in weights_of(layer).items()}
    expected = {"kernel_in": (6, 14), "bias_in": (14,), "norm/gamma": (7,), "norm/beta": (7,),
                "kernel_out": (7, 6), "bias_out": (6,)}
    if token_mixing:
        expected.update(token_kernel=(5, 5), token_bias=(5,))
    assert shapes == expected
    randomise(layer, rng)
    np.testing.assert_allclose(to_numpy(layer(x)), ref.activator_gating_unit(x, weights_of(layer), 7),
                               rtol=1e-5, atol=1e-5)


def test_gating_unit_init_is_torch_like_and_token_mixing_starts_as_identity():
    layer = ActivatorGatingUnit(64, 32, token_mixing=True)
    layer.build((None, 4, 64))
    w = weights_of(layer)
    bound = 1 / np.sqrt(64)  # PyTorch's nn.Linear: U(±1/√fan_in)
    assert np.abs(w["kernel_in"]).max() <= bound and np.abs(w["kernel_in"]).max() > 0.9 * bound
    assert np.abs(w["kernel_out"]).max() <= 1 / np.sqrt(32)
    assert not np.all(w["kernel_in"][:, :32] == w["kernel_in"][:, 32:])
    np.testing.assert_array_equal(w["bias_in"], 0.0)
    np.testing.assert_array_equal(w["token_kernel"], 0.0)
    np.testing.assert_array_equal(w["token_bias"], 1.0)


def test_torch_linear_init_is_uniform_within_one_over_root_fan_in():
    values = to_numpy(torch_linear_init()((400, 300)))
    bound = 1 / np.sqrt(400)
    assert 0.99 * bound < np.abs(values).max() <= bound * (1 + 1e-6)  # float32 rounding of the bound
    # U(±b) has variance b²/3.
    np.testing.assert_allclose(values.var(), bound**2 / 3, rtol=0.05)


@pytest.mark.parametrize("token_mixing", [False, True], ids=["paper", "mixing"])
def test_config_round_trip(token_mixing):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 5, 6)).astype("float32")
    layer = ActivatorGatingUnit(6, 7, token_mixing=token_mixing)
    layer.build(x.shape)
    randomise(layer, rng)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is ActivatorGatingUnit and clone.get_config() == layer.get_config()
    assert clone.built  # from the build config
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(x)), to_numpy(layer(x)))


@pytest.mark.parametrize("kwargs, shape, message", [
    (dict(hidden_dim=0, ffn_dim=4), None, r"`hidden_dim` must be a positive integer; got 0"),
    (dict(hidden_dim=6, ffn_dim=4, token_mixing="yes"), None, r"`token_mixing` must be True or False; got 'yes'"),
    (dict(hidden_dim=6, ffn_dim=4), (2, 5, 5), r"`inputs` must have shape \(\.\.\., 6\); got shape \(2, 5, 5\)"),
    (dict(hidden_dim=6, ffn_dim=4, token_mixing=True), (10, 6),
     r"with token_mixing=True `inputs` must have shape \(batch, tokens, 6\); got shape \(10, 6\)"),
])
def test_bad_arguments_and_inputs(kwargs, shape, message):
    with pytest.raises(ValueError, match=message):
        layer = ActivatorGatingUnit(**kwargs)
        layer(np.ones(shape, "float32"))


def test_integer_input_is_rejected():
    with pytest.raises(ValueError, match=r"`inputs` must be floating point; got dtype int"):
        ActivatorGatingUnit(6, 4)(np.ones((2, 5, 6), "int32"))
