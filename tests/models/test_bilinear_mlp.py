import numpy as np
import pytest

from glu_zoo.layers import GatedFFN
from glu_zoo.models import BilinearMLP, build
from tests.conftest import to_numpy
from tests.models import (
    check_bad_images,
    check_config_round_trip,
    check_fit_step,
    check_keras_round_trip,
    randomise,
    weights_of,
)

IMAGE = (4, 4, 1)
SMALL = dict(image_shape=IMAGE, num_classes=3, embed_dim=6, hidden_dim=5)


def reference(x, weights, num_layers):
    """The paper's forward pass from its formula: e = x·E; e ← e + ((eW)⊗(eV))·P
    for every layer but the last; logits = ((eW)⊗(eV))·P of the last."""
    e = x.reshape(len(x), -1) @ weights["embed/kernel"]
    for i in range(num_layers):
        kernel = weights[f"bilinear_{i}/kernel_in"]
        h = kernel.shape[1] // 2
        g = ((e @ kernel[:, :h]) * (e @ kernel[:, h:])) @ weights[f"bilinear_{i}/kernel_out"]
        e = g if i == num_layers - 1 else e + g
    return e


@pytest.fixture
def x():
    return np.random.default_rng(4).normal(size=(5, *IMAGE)).astype("float32")


@pytest.mark.parametrize("num_layers", [1, 2])
def test_matches_the_formula_and_has_no_bias(num_layers, x):
    model = BilinearMLP(**SMALL, num_layers=num_layers)
    randomise(model, np.random.default_rng(1))
    expected = reference(x.astype("float64"), weights_of(model), num_layers)
    np.testing.assert_allclose(to_numpy(model(x)), expected, rtol=1e-5, atol=1e-5)
    layers = [model.get_layer(f"bilinear_{i}") for i in range(num_layers)]
    assert all(isinstance(l, GatedFFN) and l.variant == "bilinear" and not l.use_bias for l in layers)
    assert tuple(layers[-1].kernel_out.shape) == (5, 3)
    # E, then W and V, then P: no bias anywhere.
    d, hidden = 6, 5
    per_layer = d * 2 * hidden + hidden * d
    assert model.count_params() == 16 * d + (num_layers - 1) * per_layer + d * 2 * hidden + hidden * 3


def test_input_noise_acts_only_in_training(x):
    model = BilinearMLP(**SMALL, input_noise=0.4)
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(model(x)))
    assert not np.allclose(to_numpy(model(x, training=True)), to_numpy(model(x)))


def test_fit_save_load_and_config(x, tmp_path):
    model = BilinearMLP(**SMALL, num_layers=2, input_noise=0.1)
    check_fit_step(model, x, np.array([0, 1, 2, 0, 1]))
    check_keras_round_trip(model, x, tmp_path)
    check_config_round_trip(model, x)


def test_named_sizes():
    assert build("bilinear_mlp_digits").count_params() == 64 * 64 + 64 * 128 + 64 * 10
    # The paper's MNIST model: 784 → 256, 256 bilinear units, 10 classes.
    assert build("bilinear_mlp_mnist").count_params() == 784 * 256 + 256 * 512 + 256 * 10


def test_bad_arguments_and_images():
    for kwargs, match in [(dict(embed_dim=0), "embed_dim"), (dict(num_layers=1.5), "num_layers"),
                          (dict(input_noise=-0.1), "input_noise"), (dict(hidden_dim=True), "hidden_dim")]:
        with pytest.raises(ValueError, match=match):
            BilinearMLP(**{**SMALL, **kwargs})
    check_bad_images(BilinearMLP(**SMALL), IMAGE, np.zeros((2, 4, 4, 3), "float32"))
