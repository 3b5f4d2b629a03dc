import keras
import numpy as np
import pytest

import glu_zoo.models
from glu_zoo.layers import FFN, PatchEmbedding
from glu_zoo.models import ActivatorViT
from glu_zoo.models.activator import ARCHITECTURES
from tests import reference as ref
from tests.conftest import to_numpy
from tests.models import (
    check_bad_images,
    check_config_round_trip,
    check_dtype_policy_round_trip,
    check_fit_step,
    check_keras_round_trip,
    randomise,
    weights_of,
)

IMAGE = (8, 8, 2)
SMALL = dict(image_shape=IMAGE, patch_size=4, num_classes=3, hidden_dim=8, ffn_dim=12, num_layers=2)
X = np.random.default_rng(7).normal(size=(3, *IMAGE)).astype("float32")
Y = np.array([0, 1, 2])
CASES = {
    "full": dict(SMALL, variant="full"),
    "reduced": dict(SMALL, variant="reduced"),
    "mixing": dict(SMALL, patch_size=2, token_mixing=True),
    "reduced_mixing": dict(SMALL, variant="reduced", token_mixing=True),
}


@pytest.mark.parametrize("case", CASES)
def test_model_matches_numpy_reference(case):
    model = ActivatorViT(**CASES[case])
    randomise(model, np.random.default_rng(1))
    expected = ref.activator_vit(X.astype(np.float64), weights_of(model), model.patch_size, model.num_layers,
                                 model.ffn_dim, model.variant)
    np.testing.assert_allclose(to_numpy(model(X)), expected, rtol=1e-5, atol=1e-5)


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
    randomise(paper, np.random.default_rng(2))
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


def test_dtype_policy_round_trips(tmp_path):
    check_dtype_policy_round_trip(lambda **kw: ActivatorViT(**CASES["mixing"], **kw), X, tmp_path)


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
