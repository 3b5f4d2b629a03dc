import keras
import numpy as np
import pytest

import glu_zoo.models
from glu_zoo.layers import FFN, FFN_ACTIVATIONS, GATED_VARIANTS, ClassToken, GatedFFN, TransformerEncoderBlock
from glu_zoo.models import ViT
from glu_zoo.models.vit import ARCHITECTURES
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

IMAGE = (8, 8, 1)
SMALL = dict(image_shape=IMAGE, patch_size=4, num_classes=3, hidden_dim=8, num_layers=2,
             num_heads=2, mlp_dim=12)
X = np.random.default_rng(11).normal(size=(3, *IMAGE)).astype("float32")
Y = np.array([0, 1, 2])
# Softmax ignores a bias added to every key: its gradient is zero.
FROZEN = ("attention/key/bias",)


def vit_param_count(image_shape, patch_size, num_classes, hidden_dim, num_layers, mlp_dim,
                    mlp="gelu", pooling="cls", **_):
    h, w, c = image_shape
    d, tokens = hidden_dim, (h // patch_size) * (w // patch_size) + (pooling == "cls")
    mlp_in = mlp_dim * (2 if mlp in GATED_VARIANTS else 1)
    block = 2 * 2 * d + 4 * (d * d + d) + d * mlp_in + mlp_in + mlp_dim * d + d
    return (patch_size**2 * c * d + d + (d if pooling == "cls" else 0) + tokens * d
            + num_layers * block + 2 * d + d * num_classes + num_classes)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("mlp", ["gelu", "swiglu"])
def test_shapes_and_parameter_count(pooling, mlp):
    config = dict(SMALL, pooling=pooling, mlp=mlp)
    model = ViT(**config)
    assert tuple(model(X).shape) == (3, 3)
    assert model.count_params() == vit_param_count(**config)
    has_token = any(isinstance(l, ClassToken) for l in model.layers)
    assert has_token == (pooling == "cls")
    table = model.get_layer("position_embedding").embeddings
    assert tuple(table.shape) == (4 + (pooling == "cls"), 8)


@pytest.mark.parametrize("pooling, mlp", [("cls", "gelu"), ("mean", "swiglu"), ("cls", "xgeglu")])
def test_matches_numpy_reference(pooling, mlp):
    model = ViT(**dict(SMALL, pooling=pooling, mlp=mlp))
    randomise(model, np.random.default_rng(3))
    expected = ref.vit(X.astype(np.float64), weights_of(model), 4, 2, mlp, pooling)
    np.testing.assert_allclose(to_numpy(model(X)), expected, rtol=1e-5, atol=1e-5)


def test_named_sizes_have_the_papers_parameter_counts():
    # ViT-Ti/16 and ViT-B/16 with a 1000-class head (timm: 5,717,416 and 86,567,656).
    assert vit_param_count(**ARCHITECTURES["vit_tiny"][1]) == 5_717_416
    assert vit_param_count(**ARCHITECTURES["vit_base"][1]) == 86_567_656
    config = ARCHITECTURES["vit_digits"][1]
    assert (config["image_shape"], config["patch_size"], config["hidden_dim"], config["num_layers"],
            config["num_heads"], config["mlp_dim"], config["mlp"], config["pooling"]) == (
        (8, 8, 1), 2, 64, 4, 4, 128, "gelu", "cls")


def test_every_block_is_a_transformer_encoder_block():
    model = ViT(**SMALL)
    blocks = [l for l in model.layers if isinstance(l, TransformerEncoderBlock)]
    assert [b.name for b in blocks] == ["block_0", "block_1"]
    for block in blocks:
        assert block.attention.num_heads == 2 and block.attention.key_dim == 4
        assert block.attention.dropout == 0.0  # so Keras runs it through ops.dot_product_attention
        assert block.attention_norm.epsilon == block.mlp_norm.epsilon == 1e-6
    assert model.get_layer("final_norm").epsilon == 1e-6


@pytest.mark.parametrize("mlp, cls", [("gelu", FFN), ("swiglu", GatedFFN), ("xgelu", FFN), ("geglu", GatedFFN)])
def test_mlp_is_an_ffn_or_a_gated_ffn(mlp, cls):
    model = ViT(**dict(SMALL, mlp=mlp))
    for i in range(2):
        layer = model.get_layer(f"block_{i}").mlp_layer
        assert type(layer) is cls and layer.use_bias and layer.hidden_dim == 12
        assert (layer.variant if cls is GatedFFN else layer.activation) == mlp


@pytest.mark.parametrize("config", [dict(SMALL), dict(SMALL, mlp="swiglu", pooling="mean")],
                         ids=["gelu-cls", "swiglu-mean"])
def test_fit_save_load_and_config(config, tmp_path):
    model = ViT(**config)
    check_fit_step(model, X, Y, frozen=FROZEN)
    check_keras_round_trip(model, X, tmp_path)
    check_config_round_trip(model, X)


def test_dtype_policy_round_trips(tmp_path):
    check_dtype_policy_round_trip(lambda **kw: ViT(**SMALL, **kw), X, tmp_path)


def test_dropout_acts_only_in_training():
    model = ViT(**dict(SMALL, dropout=0.5))
    np.testing.assert_array_equal(to_numpy(model(X)), to_numpy(model(X)))
    assert not np.allclose(to_numpy(model(X, training=True)), to_numpy(model(X)))


def test_bad_images():
    model = ViT(**SMALL)
    check_bad_images(model, IMAGE, np.zeros((2, 16, 16, 1), "float32"))
    check_bad_images(model, IMAGE, np.zeros((2, 8, 8, 3), "float32"))


def test_bad_images_are_refused_before_fit_and_evaluate_and_the_weights_survive():
    """On JAX an error inside fit would leave the model without its weights."""
    model = ViT(**SMALL)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = to_numpy(model(X))
    bad = np.zeros((3, 8, 8, 2), "float32")
    for run in (lambda: model.fit(bad, Y, verbose=0), lambda: model.evaluate(bad, Y, verbose=0)):
        with pytest.raises(ValueError, match=r"ViT 'vit': expected images of shape \(None, 8, 8, 1\); "
                                             r"got shape \(3, 8, 8, 2\)"):
            run()
    np.testing.assert_array_equal(to_numpy(model(X)), before)
    with pytest.raises(ValueError, match=r"ViT 'vit', test inputs: expected images"):
        model.check_inputs(bad, "test inputs")
    with pytest.raises(ValueError, match=r"ViT 'vit': the inputs hold no example \(shape \(0, 8, 8, 1\)\)"):
        model.predict(X[:0], verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden_dim=10, num_heads=4), r"`hidden_dim` must be divisible by `num_heads`.*10.*4"),
    (dict(mlp="tanh"), "`mlp` 'tanh'.*" + ", ".join(FFN_ACTIVATIONS) + ".*" + ", ".join(GATED_VARIANTS)),
    (dict(pooling="max"), r"`pooling` 'max'.*cls, mean"),
    (dict(patch_size=3), r"`patch_size`.*\(8, 8, 1\)"),
    (dict(dropout=-0.1), "`dropout`"),
    (dict(num_layers=0), "`num_layers`"),
    (dict(image_shape=(8, 8)), "`image_shape`"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ViT(**{**SMALL, **kwargs})


def test_build_named_architectures():
    model = glu_zoo.models.build("vit_digits", num_layers=1, num_classes=4)
    assert isinstance(model, ViT) and model.name == "vit"
    assert tuple(model(np.zeros((1, 8, 8, 1), "float32")).shape) == (1, 4)
    assert {"vit_digits", "vit_tiny", "vit_base"} <= set(glu_zoo.models.list_architectures())
    with pytest.raises(ValueError, match="unknown architecture 'vit_huge'.*vit_base"):
        glu_zoo.models.build("vit_huge")
