"""TransformerEncoderBlock: pre-norm attention + MLP block, against a NumPy reference."""

import json

import keras
import numpy as np
import pytest

from glu_zoo.layers import FFN, FFN_ACTIVATIONS, GATED_VARIANTS, GatedFFN, TransformerEncoderBlock
from tests import reference as ref
from tests.conftest import BACKEND, to_numpy
from tests.models import randomise, weights_of

B, T, D, HEADS, MLP_DIM = 3, 6, 8, 2, 10


def _inputs(seed):
    return np.random.default_rng(seed).normal(size=(B, T, D)).astype("float32")


def _key_mask():
    """Valid keys: all 6, the first 4, the first one."""
    return np.arange(T)[None, :] < np.array([T, 4, 1])[:, None]


def _block(mlp="gelu", seed=0, **kwargs):
    block = TransformerEncoderBlock(D, HEADS, MLP_DIM, mlp=mlp, **kwargs)
    block.build((None, T, D))
    randomise(block, np.random.default_rng(seed))
    return block


@pytest.mark.parametrize("mlp", ["gelu", "swiglu", "xgeglu"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("mask", ["none", "keys", "full"])
def test_matches_numpy_reference(mlp, use_bias, mask):
    x = _inputs(1)
    block = _block(mlp, seed=2, use_bias=use_bias)
    if mask == "none":
        m = None
    elif mask == "keys":
        m = _key_mask()
    else:  # causal, query by key
        m = np.broadcast_to(np.tril(np.ones((T, T), bool)), (B, T, T))
    y = block(x) if m is None else block(x, attention_mask=m)
    expected = ref.transformer_encoder_block(x.astype(np.float64), weights_of(block), mlp, mask=m)
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-5, atol=1e-5)


def test_weights_and_sub_layers():
    block = TransformerEncoderBlock(D, HEADS, MLP_DIM, mlp="swiglu", name="b")
    block.build((None, T, D))
    shapes = {k: tuple(v.shape) for k, v in weights_of(block).items()}
    k = D // HEADS
    assert shapes == {
        "attention_norm/gamma": (D,), "attention_norm/beta": (D,),
        "attention/query/kernel": (D, HEADS, k), "attention/query/bias": (HEADS, k),
        "attention/key/kernel": (D, HEADS, k), "attention/key/bias": (HEADS, k),
        "attention/value/kernel": (D, HEADS, k), "attention/value/bias": (HEADS, k),
        "attention/attention_output/kernel": (HEADS, k, D), "attention/attention_output/bias": (D,),
        "mlp_norm/gamma": (D,), "mlp_norm/beta": (D,),
        "mlp/kernel_in": (D, 2 * MLP_DIM), "mlp/bias_in": (2 * MLP_DIM,),
        "mlp/kernel_out": (MLP_DIM, D), "mlp/bias_out": (D,),
    }
    assert [w.path.split("/")[1] for w in block.weights][::2] == [
        "attention_norm", "attention", "attention", "attention", "attention", "mlp_norm", "mlp", "mlp"]
    assert isinstance(block.mlp_layer, GatedFFN) and block.mlp_layer.variant == "swiglu"
    assert isinstance(TransformerEncoderBlock(D, HEADS, MLP_DIM, mlp="xgelu").mlp_layer, FFN)
    assert block.compute_output_shape((None, T, D)) == (None, T, D)


def test_padded_keys_do_not_reach_the_other_tokens():
    """With a key mask, changing the padded tokens changes nothing at the valid ones."""
    block = _block(seed=3)
    x = _inputs(4)
    mask = _key_mask()
    changed = np.where(mask[..., None], x, 100.0 * _inputs(5)).astype("float32")
    y, y_changed = to_numpy(block(x, attention_mask=mask)), to_numpy(block(changed, attention_mask=mask))
    np.testing.assert_allclose(y_changed[mask], y[mask], rtol=1e-5, atol=1e-5)
    assert not np.allclose(to_numpy(block(changed)), to_numpy(block(x)), atol=1e-3)  # without it they do


def test_a_keras_mask_masks_the_keys():
    """A mask from a Masking layer acts as the key mask."""
    inputs = keras.Input((T, D))
    masked = keras.layers.Masking(0.0)(inputs)
    model = keras.Model(inputs, TransformerEncoderBlock(D, HEADS, MLP_DIM, name="block")(masked))
    block = model.get_layer("block")
    randomise(block, np.random.default_rng(6))
    mask = _key_mask()
    x = np.where(mask[..., None], _inputs(7), 0.0).astype("float32")
    # At the valid tokens (Keras's attention also masks the padded queries).
    np.testing.assert_allclose(to_numpy(model(x))[mask], to_numpy(block(x, attention_mask=mask))[mask],
                               rtol=1e-6, atol=1e-6)
    assert not np.allclose(to_numpy(block(x))[mask], to_numpy(model(x))[mask], atol=1e-3)


def test_dropout_acts_only_in_training():
    block = _block(dropout=0.5)
    x = _inputs(8)
    np.testing.assert_array_equal(to_numpy(block(x)), to_numpy(block(x)))
    assert not np.allclose(to_numpy(block(x, training=True)), to_numpy(block(x)))


@pytest.mark.parametrize("mlp", ["gelu", "geglu"])
def test_keras_and_config_round_trips(mlp, tmp_path):
    tokens, mask = keras.Input((T, D)), keras.Input((T,), dtype="bool")
    layer = TransformerEncoderBlock(D, HEADS, MLP_DIM, mlp=mlp, dropout=0.1, use_bias=False, epsilon=1e-5,
                                    name="block")
    model = keras.Model([tokens, mask], layer(tokens, attention_mask=mask))
    randomise(layer, np.random.default_rng(9))
    x = [_inputs(10), _key_mask()]
    path = tmp_path / "block.keras"
    model.save(path)
    loaded = keras.saving.load_model(path).get_layer("block")
    assert type(loaded) is TransformerEncoderBlock and loaded.get_config() == layer.get_config()
    np.testing.assert_array_equal(to_numpy(loaded(x[0], attention_mask=x[1])), to_numpy(layer(x[0], attention_mask=x[1])))
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    clone = keras.saving.deserialize_keras_object(config)
    assert clone.built  # from the build config
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(x[0])), to_numpy(layer(x[0])))


def test_fit_step_moves_every_weight():
    """XLA on JAX and TensorFlow; eager on torch. The key bias has no
    gradient (softmax ignores a constant added to every key's score)."""
    inputs = keras.Input((T, D))
    model = keras.Model(inputs, TransformerEncoderBlock(D, HEADS, MLP_DIM, mlp="swiglu")(inputs))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=BACKEND != "torch")
    before = {w.path: to_numpy(w).copy() for w in model.trainable_weights}
    history = model.fit(_inputs(11), _inputs(12), batch_size=B, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    unchanged = [w.path for w in model.trainable_weights
                 if np.array_equal(before[w.path], to_numpy(w)) and not w.path.endswith("attention/key/bias")]
    assert not unchanged, unchanged


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    x = _inputs(13)
    reference = _block(seed=14)
    keras.config.set_dtype_policy(policy)
    block = TransformerEncoderBlock(D, HEADS, MLP_DIM)
    block.build((None, T, D))
    block.set_weights(reference.get_weights())
    y = block(x)
    assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]
    assert {keras.backend.standardize_dtype(w.dtype) for w in block.weights} == {"float32"}
    expected = to_numpy(reference(x))
    np.testing.assert_allclose(to_numpy(keras.ops.cast(y, "float32")), expected, rtol=5e-2,
                               atol=5e-2 * np.abs(expected).max())


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden_dim=10, num_heads=4), r"`hidden_dim` must be divisible by `num_heads`; got hidden_dim=10 and num_heads=4"),
    (dict(num_heads=0), r"`num_heads` must be a positive integer; got 0"),
    (dict(mlp_dim=2.5), r"`mlp_dim` must be a positive integer; got 2.5"),
    (dict(mlp="tanh"), r"unknown `mlp` 'tanh'; allowed: an FFN activation \(" + ", ".join(FFN_ACTIVATIONS)
     + r"\) or a GatedFFN variant \(" + ", ".join(GATED_VARIANTS) + r"\)"),
    (dict(dropout=1.0), r"`dropout` must be a number in \[0, 1\); got 1.0"),
    (dict(use_bias=1), r"`use_bias` must be True or False; got 1"),
    (dict(epsilon=0.0), r"`epsilon` must be a number in \(0.0, inf\); got 0.0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerEncoderBlock(**{"hidden_dim": D, "num_heads": HEADS, "mlp_dim": MLP_DIM, **kwargs})


@pytest.mark.parametrize("x, mask, message", [
    (np.ones((B, T, 5), "float32"), None, r"`inputs` must have shape \(batch, tokens, 8\); got shape \(3, 6, 5\)"),
    (np.ones((B, D), "float32"), None, r"`inputs` must have shape \(batch, tokens, 8\); got shape \(3, 8\)"),
    (np.ones((B, T, D), "int32"), None, r"`inputs` must be floating point; got dtype int32"),
    (np.ones((B, T, D), "float32"), np.ones((B, 1, T, T), bool),
     r"`attention_mask` must have shape \(batch, 6\) or \(batch, 6, 6\); got shape \(3, 1, 6, 6\)"),
])
def test_bad_inputs(x, mask, message):
    block = TransformerEncoderBlock(D, HEADS, MLP_DIM)
    with pytest.raises(ValueError, match=message):
        block(x, attention_mask=mask)
