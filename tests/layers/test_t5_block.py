"""T5Block (arXiv 1910.10683, GLU FFNs of arXiv 2002.05202) on its own: against a NumPy reference, its position
bias, causality, cached decoding, dropout, config round trip and bad inputs."""

import functools
import json

import numpy as np
import pytest

from glu_zoo.layers import FFN_ACTIVATIONS, GATED_VARIANTS
from glu_zoo.layers.transformer import T5Block
from tests import reference as ref
from tests.conftest import BACKEND, to_numpy
from tests.models import randomise, weights_of

# heads·key_dim (6) ≠ d (8); the encoder outputs (S tokens, width E) differ from x in both.
B, T, D, HEADS, KEY_DIM, MLP_DIM, S, E = 2, 6, 8, 2, 3, 5, 4, 7
# Small buckets so that T = 6 reaches the logarithmic buckets of both kinds.
BUCKETS, MAX_DISTANCE = 8, 12
# Hand-computed T5 buckets of r = key − query for r = −5..5 (num_buckets 8, max_distance 12):
# bidirectional: n = 4 per side, exact below 2, else 2 + ⌊log(|r|/2)/log 6 · 2⌋ capped at 3, +4 for r > 0;
# causal: n = 8, exact below 4, else 4 + ⌊log(−r/4)/log 3 · 4⌋, and 0 for r ≥ 0.
BIDIRECTIONAL_BUCKETS = [3, 2, 2, 2, 1, 0, 5, 6, 6, 6, 7]
CAUSAL_BUCKETS = [4, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0]


def _x(rng, length=T, width=D):
    return rng.normal(size=(B, length, width)).astype("float32")


def _keys(lengths, length=T):
    return np.arange(length)[None, :] < np.asarray(lengths)[:, None]


def _block(rng, mlp="relu", **kwargs):
    kwargs = {"num_buckets": BUCKETS, "max_distance": MAX_DISTANCE, **kwargs}
    block = T5Block(D, HEADS, KEY_DIM, mlp=mlp, mlp_dim=MLP_DIM, **kwargs)
    block.build((None, T, D), (None, S, E) if block.cross_attention_enabled else None)
    randomise(block, rng)
    return block


def _reference(block, x, **kwargs):
    kwargs = {k: (v.astype(np.float64) if k in ("encoder_outputs", "position_bias") else v)
              for k, v in kwargs.items()}
    return ref.t5_block(x.astype(np.float64), weights_of(block), HEADS, block.mlp, causal=block.causal,
                        num_buckets=BUCKETS, max_distance=MAX_DISTANCE, eps=block.epsilon, **kwargs)


def _compiled(block, training=False):
    """`call(x, kwargs)`: the block's call, compiled on JAX (one XLA program per input structure: eager JAX
    compiles each op for each new shape, slow for many calls); the layer itself on the other backends."""
    if BACKEND != "jax":
        return lambda x, kwargs: block(x, training=training, **kwargs)
    import jax

    @jax.jit
    def run(trainable, non_trainable, x, kwargs):
        return block.stateless_call(trainable, non_trainable, x, training=training, **kwargs)[0]

    return functools.partial(run, [v.value for v in block.trainable_variables],
                             [v.value for v in block.non_trainable_variables])


CASES = {
    "encoder": dict(block=dict(relative_position_bias=True), padded=False),
    "encoder_padded": dict(block=dict(relative_position_bias=True), padded=True),
    "decoder": dict(block=dict(relative_position_bias=True, causal=True, cross_attention=True), padded=True),
    "shared_bias": dict(block=dict(), padded=True),
}


@pytest.mark.parametrize("case, mlp", [("encoder", "relu"), ("encoder", "swiglu"), ("encoder_padded", "geglu_tanh"),
                                       ("decoder", "relu"), ("decoder", "geglu_tanh"), ("shared_bias", "swiglu")])
def test_matches_numpy_reference(case, mlp):
    rng = np.random.default_rng(1)
    spec = CASES[case]
    block = _block(rng, mlp, **spec["block"])
    x = _x(rng)
    kwargs = {}
    if spec["padded"]:
        kwargs["padding_mask"] = _keys([T, 3])
    if block.cross_attention_enabled:
        kwargs["encoder_outputs"] = _x(rng, S, E)
        kwargs["encoder_padding_mask"] = _keys([2, S], S)
    if case == "shared_bias":  # the bias of another block (the stack's first), passed on
        owner = _block(rng, mlp, relative_position_bias=True)
        kwargs["position_bias"] = to_numpy(_compiled(owner)(x, {})[1])
    y, bias = _compiled(block)(x, kwargs)
    expected, expected_bias = _reference(block, x, **kwargs)
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(bias), expected_bias, rtol=1e-6, atol=1e-6)
    if case == "shared_bias":
        np.testing.assert_array_equal(to_numpy(bias), kwargs["position_bias"])


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_position_bias_is_the_bucketed_table(causal):
    rng = np.random.default_rng(2)
    block = _block(rng, relative_position_bias=True, causal=causal)
    bias = to_numpy(_compiled(block)(_x(rng), {})[1])
    assert bias.shape == (1, HEADS, T, T)
    table = to_numpy(block.relative_position_bias.embeddings)
    assert table.shape == (BUCKETS, HEADS)
    hand = CAUSAL_BUCKETS if causal else BIDIRECTIONAL_BUCKETS
    rel = np.arange(T)[None, :] - np.arange(T)[:, None]  # key − query, −5..5
    np.testing.assert_array_equal(ref.t5_relative_position_bucket(rel, not causal, BUCKETS, MAX_DISTANCE),
                                  np.asarray(hand)[rel + T - 1])
    expected = np.transpose(table[np.asarray(hand)[rel + T - 1]], (2, 0, 1))[None]
    np.testing.assert_array_equal(bias, expected)


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
def test_later_tokens_reach_earlier_outputs_only_without_causality(causal):
    rng = np.random.default_rng(3)
    block = _block(rng, "swiglu", relative_position_bias=True, causal=causal)
    x = _x(rng)
    changed = x.copy()
    changed[:, 3] = rng.normal(size=(B, D))
    call = _compiled(block)
    y, y_changed = to_numpy(call(x, {})[0]), to_numpy(call(changed, {})[0])
    assert not np.allclose(y[:, 3:], y_changed[:, 3:], atol=1e-3)
    if causal:
        np.testing.assert_allclose(y_changed[:, :3], y[:, :3], rtol=1e-6, atol=1e-6)
    else:
        assert not np.allclose(y_changed[:, :3], y[:, :3], atol=1e-3)


@pytest.mark.parametrize("chunks", [(1,) * T, (2, 2, 2)], ids=["one_by_one", "pairs"])
def test_cached_calls_equal_the_full_call(chunks):
    """Decoder block with cross attention, as GLUTransformer.decode_step runs it: the cache slots written so far
    marked in `padding_mask`, the tokens written from cache_update_index on."""
    rng = np.random.default_rng(4)
    block = _block(rng, "geglu_tanh", relative_position_bias=True, causal=True, cross_attention=True)
    x, enc, enc_mask = _x(rng), _x(rng, S, E), _keys([S, 2], S)
    call = _compiled(block)
    y_full, bias_full = (to_numpy(v) for v in call(x, dict(encoder_outputs=enc, encoder_padding_mask=enc_mask)))
    cache = np.zeros((B, 2, T, HEADS, KEY_DIM), "float32")
    cache_mask = np.zeros((B, T), bool)
    outputs, start = [], 0
    for n in chunks:
        cache_mask[:, start:start + n] = True
        y, bias, cache = call(x[:, start:start + n], dict(padding_mask=cache_mask, encoder_outputs=enc,
                                                          encoder_padding_mask=enc_mask, cache=cache,
                                                          cache_update_index=start))
        assert tuple(bias.shape) == (1, HEADS, n, T)
        np.testing.assert_allclose(to_numpy(bias), bias_full[:, :, start:start + n], rtol=1e-6, atol=1e-6)
        outputs.append(to_numpy(y))
        start += n
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), y_full, rtol=1e-5, atol=1e-5)
    # The cache holds the self-attention keys and values of RMSNorm(x), head by head.
    w = weights_of(block)
    h = ref.t5_rms_norm(x.astype(np.float64), w["self_attention_norm/scale"])
    for i, name in enumerate(("key", "value")):
        expected = (h @ w[f"self_attention/{name}_kernel"]).reshape(B, T, HEADS, KEY_DIM)
        np.testing.assert_allclose(to_numpy(cache)[:, i], expected, rtol=1e-5, atol=1e-5)


def test_dropout_acts_only_in_training():
    rng = np.random.default_rng(5)
    block = _block(rng, "swiglu", relative_position_bias=True, dropout=0.5)
    x = _x(rng)
    y = to_numpy(_compiled(block)(x, {})[0])
    np.testing.assert_allclose(y, _reference(block, x)[0], rtol=1e-5, atol=1e-5)  # the formula has no dropout
    assert not np.allclose(to_numpy(_compiled(block, training=True)(x, {})[0]), y, atol=1e-3)


def test_config_round_trip():
    rng = np.random.default_rng(6)
    block = _block(rng, "swiglu", relative_position_bias=True, causal=True, cross_attention=True, dropout=0.1,
                   epsilon=1e-5, name="decoder_block")
    config = json.loads(json.dumps(block.get_config()))
    assert {k: config[k] for k in ("hidden_dim", "num_heads", "key_dim", "mlp", "mlp_dim", "causal",
                                   "cross_attention", "relative_position_bias", "num_buckets", "max_distance",
                                   "dropout", "epsilon")} == dict(
        hidden_dim=D, num_heads=HEADS, key_dim=KEY_DIM, mlp="swiglu", mlp_dim=MLP_DIM, causal=True,
        cross_attention=True, relative_position_bias=True, num_buckets=BUCKETS, max_distance=MAX_DISTANCE,
        dropout=0.1, epsilon=1e-5)
    clone = T5Block.from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    clone.build((None, T, D), (None, S, E))
    clone.set_weights(block.get_weights())
    x, enc = _x(rng), _x(rng, S, E)
    kwargs = dict(encoder_outputs=enc)
    for got, want in zip(_compiled(clone)(x, kwargs), _compiled(block)(x, kwargs)):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_heads=0), r"`num_heads` must be a positive integer; got 0"),
    (dict(key_dim=2.0), r"`key_dim` must be a positive integer; got 2.0"),
    (dict(dropout=1.0), r"`dropout` must be a number in \[0, 1\); got 1.0"),
    (dict(mlp="tanh"), r"unknown `mlp` 'tanh'; allowed: an FFN activation \(" + ", ".join(FFN_ACTIVATIONS)
     + r"\) or a GatedFFN variant \(" + ", ".join(GATED_VARIANTS) + r"\)"),
    (dict(causal=1), r"`causal` must be True or False; got 1"),
    (dict(relative_position_bias=True, num_buckets=2), r"`num_buckets` must be at least 4"),
    (dict(epsilon=0.0), r"`epsilon` must be a number in \(0.0, inf\); got 0.0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        T5Block(**{"hidden_dim": D, "num_heads": HEADS, "key_dim": KEY_DIM, "mlp_dim": MLP_DIM, **kwargs})


@pytest.mark.parametrize("x, block_kwargs, message", [
    (np.ones((B, T, 7), "float32"), {}, r"`inputs` must have shape \(batch, length, 8\); got shape \(2, 6, 7\)"),
    (np.ones((B, D), "float32"), {}, r"`inputs` must have shape \(batch, length, 8\); got shape \(2, 8\)"),
    (np.ones((B, T, D), "int32"), {}, r"`inputs` must be floating point; got dtype int32"),
    (np.ones((B, T, D), "float32"), dict(relative_position_bias=False), r"`position_bias` is needed"),
    (np.ones((B, T, D), "float32"), dict(cross_attention=True), r"cross-attention block needs `encoder_outputs`"),
])
def test_bad_inputs(x, block_kwargs, message):
    block = _block(np.random.default_rng(7), **{"relative_position_bias": True, **block_kwargs})
    with pytest.raises(ValueError, match=message):
        _compiled(block)(x, {})  # on JAX the error comes while tracing, before any compile
