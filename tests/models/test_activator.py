import keras
import numpy as np
import pytest

import glu_zoo.models
from glu_zoo.layers import FFN, PatchEmbedding
from glu_zoo.models import ActivatorViT
from glu_zoo.models.activator import ARCHITECTURES, ActivatorGatingUnit
from tests import reference as ref
from tests.conftest import to_numpy
from tests.layers.test_embedding import patch_embedding_reference
from tests.models import (
    check_bad_images,
    check_config_round_trip,
    check_fit_step,
    check_keras_round_trip,
    randomise,
)

RNG = np.random.default_rng(7)
IMAGE = (8, 8, 2)
SMALL = dict(image_shape=IMAGE, patch_size=4, num_classes=3, hidden_dim=8, ffn_dim=12, num_layers=2)
X = RNG.normal(size=(3, *IMAGE)).astype("float32")
Y = np.array([0, 1, 2])
CASES = {
    "full": dict(SMALL, variant="full"),
    "reduced": dict(SMALL, variant="reduced"),
    "mixing": dict(SMALL, patch_size=2, token_mixing=True),
    "reduced_mixing": dict(SMALL, variant="reduced", token_mixing=True),
}


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def weights_of(layer):
    """A layer's weights as float64 NumPy arrays, by the last part of their path
    (sub-layer names kept: "norm/gamma")."""
    prefix = layer.path + "/"
    return {w.path[len(prefix):]: to_numpy(w).astype(np.float64) for w in layer.weights}


def gating_reference(x, w, ffn_dim):
    """u = LN'(GELU(x·W1 + b1)), v = LN'(x·W2 + b2) (one LN' for both),
    [ours: v ← v ⊗ (W_t·v + b_t) over tokens], out = (u ⊗ v)·W3 + b3."""
    w1, w2 = w["kernel_in"][:, :ffn_dim], w["kernel_in"][:, ffn_dim:]
    b1, b2 = w["bias_in"][:ffn_dim], w["bias_in"][ffn_dim:]
    u = layer_norm(ref.gelu(x @ w1 + b1), w["norm/gamma"], w["norm/beta"])
    v = layer_norm(x @ w2 + b2, w["norm/gamma"], w["norm/beta"])
    if "token_kernel" in w:
        v = v * (np.einsum("ij,bjf->bif", w["token_kernel"], v) + w["token_bias"][:, None])
    return (u * v) @ w["kernel_out"] + w["bias_out"]


def activator_reference(model, x):
    """The official ACTIVATORImageClassification forward pass, in NumPy."""
    patch = weights_of(model.get_layer("patch_embedding"))
    h = patch_embedding_reference(x, patch["conv/kernel"], patch["conv/bias"], model.patch_size)
    for i in range(model.num_layers):
        norm = weights_of(model.get_layer(f"block_{i}_norm"))
        gating = weights_of(model.get_layer(f"block_{i}_gating"))
        h = h + gating_reference(layer_norm(h, norm["gamma"], norm["beta"]), gating, model.ffn_dim)
        if model.variant == "full":
            f = weights_of(model.get_layer(f"block_{i}_ffn"))
            z = layer_norm(h, norm["gamma"], norm["beta"])  # the same LayerNorm
            h = h + (ref.gelu(z @ f["kernel_in"] + f["bias_in"]) @ f["kernel_out"] + f["bias_out"])
    head = weights_of(model.get_layer("head"))
    return h.mean(axis=1) @ head["kernel"] + head["bias"]


@pytest.mark.parametrize("token_mixing", [False, True], ids=["paper", "mixing"])
def test_gating_unit_matches_numpy_reference(token_mixing):
    x = RNG.normal(size=(2, 5, 6)).astype("float32")
    layer = ActivatorGatingUnit(6, 7, token_mixing=token_mixing)
    layer.build(x.shape)
    shapes = {k: v.shape for k, v in weights_of(layer).items()}
    expected = {"kernel_in": (6, 14), "bias_in": (14,), "norm/gamma": (7,), "norm/beta": (7,),
                "kernel_out": (7, 6), "bias_out": (6,)}
    if token_mixing:
        expected.update(token_kernel=(5, 5), token_bias=(5,))
    assert shapes == expected
    randomise(layer, RNG)
    np.testing.assert_allclose(to_numpy(layer(x)), gating_reference(x, weights_of(layer), 7),
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


@pytest.mark.parametrize("case", CASES)
def test_model_matches_numpy_reference(case):
    model = ActivatorViT(**CASES[case])
    randomise(model, RNG)
    np.testing.assert_allclose(to_numpy(model(X)), activator_reference(model, X), rtol=1e-5, atol=1e-5)


def test_structure_follows_the_official_code():
    model = ActivatorViT(**CASES["full"])
    norms = [l for l in model.layers if isinstance(l, keras.layers.LayerNormalization)]
    assert [l.name for l in norms] == ["block_0_norm", "block_1_norm"]  # one per block
    assert all(l.epsilon == 1e-5 for l in norms)
    assert all(len(l._inbound_nodes) == 2 for l in norms)  # pre-norm of both sub-layers
    assert isinstance(model.get_layer("patch_embedding"), PatchEmbedding)
    ffn = model.get_layer("block_0_ffn")
    assert isinstance(ffn, FFN) and ffn.activation == "gelu" and ffn.use_bias
    names = {l.name for l in model.layers}
    assert not any("position" in n or "class" in n or "attention" in n for n in names)
    reduced = ActivatorViT(**CASES["reduced"])
    assert not [l for l in reduced.layers if isinstance(l, (FFN, keras.layers.Dropout))]
    # tokens (64 patches of 4×4 in 32×32) and sizes of the paper's CIFAR-10 model
    cls, config = ARCHITECTURES["activator_vit_tiny"]
    assert cls is ActivatorViT and config["image_shape"] == (32, 32, 3) and config["patch_size"] == 4
    assert (config["hidden_dim"], config["ffn_dim"], config["num_layers"], config["dropout"]) == (256, 512, 4, 0.5)


def test_token_mixing_at_init_is_the_papers_model():
    mixing = ActivatorViT(**CASES["mixing"])
    paper = ActivatorViT(**dict(CASES["mixing"], token_mixing=False))
    randomise(paper, RNG)
    values = {w.path: w for w in paper.weights}  # the layers have the same names
    for w in mixing.weights:
        if "token_" not in w.path:
            w.assign(values[w.path])
    np.testing.assert_allclose(to_numpy(mixing(X)), to_numpy(paper(X)), rtol=1e-5, atol=1e-5)


def test_dropout_acts_only_in_training():
    model = ActivatorViT(**dict(CASES["full"], dropout=0.5))
    np.testing.assert_array_equal(to_numpy(model(X)), to_numpy(model(X)))
    assert not np.allclose(to_numpy(model(X, training=True)), to_numpy(model(X)))


@pytest.mark.parametrize("case", ["full", "reduced", "mixing"])
def test_fit_save_load_and_config(case, tmp_path):
    model = ActivatorViT(**CASES[case])
    logits = model(X)
    assert tuple(logits.shape) == (3, 3)
    check_fit_step(model, X, Y)
    check_keras_round_trip(model, X, tmp_path)
    check_config_round_trip(model, X)


def test_bad_images():
    model = ActivatorViT(**CASES["full"])
    check_bad_images(model, IMAGE, np.zeros((2, 16, 16, 2), "float32"))
    check_bad_images(model, IMAGE, np.zeros((2, 8, 8, 3), "float32"))


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="tiny"), r"`variant`.*full, reduced"),
    (dict(variant="reduced", dropout=0.1), r"`dropout`.*reduced"),
    (dict(patch_size=3), r"`patch_size`.*\(8, 8, 2\)"),
    (dict(dropout=1.0), "`dropout`"),
    (dict(hidden_dim=0), "`hidden_dim`"),
    (dict(token_mixing="yes"), "`token_mixing`"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ActivatorViT(**{**SMALL, **kwargs})


def test_build_named_architectures():
    model = glu_zoo.models.build("activator_vit_digits", num_layers=2)
    assert isinstance(model, ActivatorViT) and model.num_layers == 2 and model.hidden_dim == 64
    assert tuple(model(np.zeros((1, 8, 8, 1), "float32")).shape) == (1, 10)
    names = glu_zoo.models.list_architectures()
    for name in ["activator_vit_digits", "activator_vit_reduced_digits",
                 "activator_vit_mixing_digits", "activator_vit_tiny", "vit_digits", "vit_tiny", "vit_base"]:
        assert name in names
    with pytest.raises(ValueError, match="unknown architecture 'nope'.*activator_vit_digits"):
        glu_zoo.models.build("nope")
