import json

import keras
import numpy as np
import pytest

from glu_zoo.layers import ClassToken, PatchEmbedding, PositionEmbedding
from tests import reference as ref
from tests.conftest import to_numpy
from tests.models import randomise

IMAGE = (8, 12, 3)  # not square: row-major order is visible
P, D = 4, 5
X = np.random.default_rng(5).normal(size=(2, *IMAGE)).astype("float32")
TOKENS = np.random.default_rng(6).normal(size=(2, 6, D)).astype("float32")


def _patch_layer(seed=0):
    layer = PatchEmbedding(P, D, image_shape=IMAGE)
    layer.build((None, *IMAGE))
    randomise(layer, np.random.default_rng(seed), scale=1.0)
    return layer


def test_patch_embedding_matches_numpy_reference_in_row_major_order():
    layer = _patch_layer()
    assert {w.path.split("/")[-1]: tuple(w.shape) for w in layer.weights} == {
        "kernel": (P, P, 3, D), "bias": (D,)}
    y = to_numpy(layer(X))
    assert y.shape == (2, 6, D)
    expected = ref.patch_embedding(X, to_numpy(layer.conv.kernel), to_numpy(layer.conv.bias), P)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("patch_size", [3, 0, -4, 2.0, True])
def test_patch_size_must_divide_the_image(patch_size):
    with pytest.raises(ValueError, match=r"`patch_size`.*\(8, 12, 3\)"):
        PatchEmbedding(patch_size, D, image_shape=IMAGE)


@pytest.mark.parametrize("image_shape", [(8, 12), (8, 12, 0), (8.0, 12, 3), "8x12"])
def test_image_shape_must_be_three_positive_ints(image_shape):
    with pytest.raises(ValueError, match="`image_shape`"):
        PatchEmbedding(P, D, image_shape=image_shape)


@pytest.mark.parametrize("shape", [(2, 12, 8, 3), (2, 8, 12, 1), (2, 16, 12, 3)])
def test_wrong_image_shape_names_both_shapes(shape):
    layer = _patch_layer()
    with pytest.raises(ValueError) as info:
        layer(np.zeros(shape, "float32"))
    assert "(None, 8, 12, 3)" in str(info.value) and str(shape) in str(info.value)


def test_integer_images_are_refused():
    with pytest.raises(ValueError, match="floating point"):
        _patch_layer()(np.zeros((2, *IMAGE), "int32"))


def test_class_token_prepends_the_learned_token():
    layer = ClassToken()
    layer.build(TOKENS.shape)
    assert [(w.name, tuple(w.shape)) for w in layer.weights] == [("token", (D,))]
    np.testing.assert_array_equal(to_numpy(layer.token), np.zeros(D))  # ViT's init
    token = np.random.default_rng(7).normal(size=D).astype("float32")
    layer.token.assign(token)
    y = to_numpy(layer(TOKENS))
    assert y.shape == (2, 7, D)
    np.testing.assert_array_equal(y[:, 0], np.broadcast_to(token, (2, D)))
    np.testing.assert_array_equal(y[:, 1:], TOKENS)


def test_position_embedding_adds_the_table():
    layer = PositionEmbedding()
    layer.build(TOKENS.shape)
    assert [(w.name, tuple(w.shape)) for w in layer.weights] == [("embeddings", (6, D))]
    table = to_numpy(layer.embeddings)
    assert 0.0 < np.abs(table).max() <= 0.04 + 1e-6  # truncated normal, stddev 0.02
    y = to_numpy(layer(TOKENS))
    np.testing.assert_allclose(y, TOKENS + table, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(None, 6, 5\)"):
        layer(TOKENS[:, :4])


@pytest.mark.parametrize("make, x", [
    (lambda: PatchEmbedding(P, D, image_shape=IMAGE), X),
    (ClassToken, TOKENS),
    (PositionEmbedding, TOKENS),
], ids=["patch", "class_token", "position"])
def test_config_round_trip(make, x):
    layer = make()
    layer.build(x.shape)
    randomise(layer, np.random.default_rng(8), scale=1.0)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(layer)
    if not clone.built:
        clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(x)), to_numpy(layer(x)))
