"""ReversibleEmbedding: ids → E[ids], and back to logits (x·logit_scale)·Eᵀ (tied, T5 / BERT) or
(x·logit_scale)·W_out (untied, T5 v1.1), against a NumPy reference; weights, round trips and bad arguments."""

import json

import keras
import numpy as np
import pytest

from glu_zoo.layers.embedding import ReversibleEmbedding
from tests import reference as ref
from tests.conftest import to_numpy
from tests.models import randomise

B, T, V, D = 2, 5, 11, 4


def _embedding(rng, **kwargs):
    layer = ReversibleEmbedding(V, D, **kwargs)
    layer.build()
    randomise(layer, rng, scale=1.0)
    return layer


def _ids(rng):
    ids = rng.integers(0, V, size=(B, T)).astype("int32")
    ids[0, 0], ids[1, -1] = 0, V - 1  # both ends of the vocabulary
    return ids


@pytest.mark.parametrize("tie_weights", [True, False], ids=["tied", "untied"])
def test_forward_is_a_table_lookup(tie_weights):
    rng = np.random.default_rng(1)
    layer = _embedding(rng, tie_weights=tie_weights)
    ids = _ids(rng)
    y = layer(ids)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    np.testing.assert_array_equal(to_numpy(y), ref.reversible_embedding(ids, to_numpy(layer.embeddings)))


@pytest.mark.parametrize("logit_scale", [1.0, 0.5])
def test_reverse_tied_is_scaled_x_times_the_transposed_table(logit_scale):
    rng = np.random.default_rng(2)
    layer = _embedding(rng, logit_scale=logit_scale)
    x = rng.normal(size=(B, T, D)).astype("float32")
    logits = to_numpy(layer(x, reverse=True))
    assert logits.shape == (B, T, V)
    expected = ref.reversible_logits(x.astype(np.float64), to_numpy(layer.embeddings).astype(np.float64),
                                     logit_scale)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("logit_scale", [1.0, D ** -0.5])
def test_reverse_untied_uses_its_own_output_matrix(logit_scale):
    rng = np.random.default_rng(3)
    layer = _embedding(rng, tie_weights=False, logit_scale=logit_scale)
    x = rng.normal(size=(B, T, D)).astype("float32")
    logits = to_numpy(layer(x, reverse=True))
    table, out = (to_numpy(w).astype(np.float64) for w in (layer.embeddings, layer.reverse_embeddings))
    expected = ref.reversible_logits(x.astype(np.float64), table, logit_scale, reverse_embeddings=out)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    tied = ref.reversible_logits(x.astype(np.float64), table, logit_scale)
    assert not np.allclose(logits, tied, atol=1e-2)  # W_out, not Eᵀ


@pytest.mark.parametrize("tie_weights, shapes", [
    (True, {"embeddings": (V, D)}),
    (False, {"embeddings": (V, D), "reverse_embeddings": (D, V)}),
], ids=["tied", "untied"])
def test_weights_names_and_shapes(tie_weights, shapes):
    layer = ReversibleEmbedding(V, D, tie_weights=tie_weights, name="tokens")
    layer.build()
    assert {w.path: tuple(w.shape) for w in layer.weights} == {f"tokens/{k}": v for k, v in shapes.items()}
    assert all(w.trainable for w in layer.weights)


@pytest.mark.parametrize("tie_weights", [True, False], ids=["tied", "untied"])
def test_config_round_trip(tie_weights):
    rng = np.random.default_rng(4)
    layer = _embedding(rng, tie_weights=tie_weights, logit_scale=0.25, embeddings_initializer="random_normal")
    config = json.loads(json.dumps(layer.get_config()))
    assert {k: config[k] for k in ("vocabulary_size", "dim", "tie_weights", "logit_scale")} == dict(
        vocabulary_size=V, dim=D, tie_weights=tie_weights, logit_scale=0.25)
    clone = ReversibleEmbedding.from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    clone.build()
    clone.set_weights(layer.get_weights())
    ids, x = _ids(rng), rng.normal(size=(B, T, D)).astype("float32")
    np.testing.assert_array_equal(to_numpy(clone(ids)), to_numpy(layer(ids)))
    np.testing.assert_array_equal(to_numpy(clone(x, reverse=True)), to_numpy(layer(x, reverse=True)))


@pytest.mark.parametrize("tie_weights", [True, False], ids=["tied", "untied"])
def test_keras_round_trip_in_a_functional_model(tie_weights, tmp_path):
    """ids → E[ids] → logits through the same layer (shared weights), saved and loaded as `.keras`."""
    rng = np.random.default_rng(5)
    ids_in = keras.Input((T,), dtype="int32")
    layer = ReversibleEmbedding(V, D, tie_weights=tie_weights, logit_scale=0.5, name="tokens")
    model = keras.Model(ids_in, layer(layer(ids_in), reverse=True))
    randomise(layer, rng, scale=1.0)
    ids = _ids(rng)
    logits = to_numpy(model.predict_on_batch(ids))
    w = {k: to_numpy(getattr(layer, k)).astype(np.float64) for k in ("embeddings", "reverse_embeddings")
         if hasattr(layer, k)}
    expected = ref.reversible_logits(ref.reversible_embedding(ids, w["embeddings"]), w["embeddings"], 0.5,
                                     reverse_embeddings=w.get("reverse_embeddings"))
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.get_layer("tokens")) is ReversibleEmbedding
    assert loaded.get_layer("tokens").get_config() == layer.get_config()
    assert len(loaded.weights) == (1 if tie_weights else 2)
    np.testing.assert_array_equal(to_numpy(loaded.predict_on_batch(ids)), logits)


@pytest.mark.parametrize("kwargs, message", [
    (dict(vocabulary_size=0), r"`vocabulary_size` must be a positive integer; got 0"),
    (dict(vocabulary_size=11.0), r"`vocabulary_size` must be a positive integer; got 11.0"),
    (dict(dim=-4), r"`dim` must be a positive integer; got -4"),
    (dict(logit_scale=0.0), r"`logit_scale` must be a number in \(0.0, inf\); got 0.0"),
    (dict(logit_scale=-1.0), r"`logit_scale` must be a number in \(0.0, inf\); got -1.0"),
    (dict(tie_weights="yes"), r"`tie_weights` must be True or False; got 'yes'"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReversibleEmbedding(**{"vocabulary_size": V, "dim": D, **kwargs})


@pytest.mark.parametrize("x, reverse, message", [
    (np.zeros((B, T), "float32"), False, r"token ids must be integers; got dtype float32"),
    (np.zeros((B, T, D + 1), "float32"), True, r"reverse `inputs` must have last dimension 4; got shape \(2, 5, 5\)"),
])
def test_bad_inputs(x, reverse, message):
    layer = _embedding(np.random.default_rng(6))
    with pytest.raises(ValueError, match=message):
        layer(x, reverse=reverse)
