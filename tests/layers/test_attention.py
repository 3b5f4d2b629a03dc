import keras
import numpy as np
import pytest

from glu_zoo.layers import (
    MultiHeadAttention,
    Packing,
    RelativePositionBias,
    alibi_bias,
    alibi_slopes,
    dot_product_attention,
    naive_attention,
    pack,
    pack_sequences,
    relative_position_bucket,
    segment_mask,
    unpack,
)
from tests import reference as ref
from tests.conftest import input_grads, to_numpy

TOL = dict(rtol=2e-5, atol=2e-5)


# --- ALiBi --------------------------------------------------------------------------

# Written from the paper's rule (arXiv 2108.12409): n a power of two → 2^(−8k/n), k = 1..n;
# otherwise the 2^⌊log2 n⌋-head slopes, then every other slope of the twice-as-large list.
SLOPES = {
    8: [2.0**-k for k in range(1, 9)],
    16: [2.0 ** (-k / 2) for k in range(1, 17)],
    12: [2.0**-k for k in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5],
    6: [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3],
}


@pytest.mark.parametrize("heads", sorted(SLOPES))
def test_alibi_slopes_follow_the_paper(heads):
    slopes = alibi_slopes(heads)
    assert slopes.dtype == np.float64 and slopes.shape == (heads,)
    np.testing.assert_allclose(slopes, SLOPES[heads], rtol=1e-14, atol=0)


def test_alibi_slopes_first_of_eight_is_a_half():
    assert alibi_slopes(8)[0] == 0.5 and alibi_slopes(8)[-1] == 1 / 256


def test_alibi_bias_matches_reference():
    rng = np.random.default_rng(1)
    slopes = alibi_slopes(6)
    qpos = rng.integers(0, 50, size=(3, 7))
    kpos = rng.integers(0, 50, size=(3, 9))
    bias = to_numpy(alibi_bias(slopes, qpos.astype("int32"), kpos.astype("int32")))
    assert bias.shape == (3, 6, 7, 9) and bias.dtype == np.float32
    np.testing.assert_allclose(bias, ref.alibi_bias(slopes, qpos, kpos), rtol=1e-6)
    # 1-D positions: batch 1; symmetric in i, j; 0 on the diagonal.
    square = to_numpy(alibi_bias(slopes, np.arange(5), np.arange(5)))
    assert square.shape == (1, 6, 5, 5)
    np.testing.assert_array_equal(square, np.swapaxes(square, -1, -2))
    assert (np.diagonal(square, axis1=-2, axis2=-1) == 0).all()


# --- T5 relative position buckets ----------------------------------------------------

@pytest.mark.parametrize("bidirectional", [True, False], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("num_buckets, max_distance", [(32, 128), (16, 64), (64, 256), (10, 20)])
def test_relative_position_bucket_matches_t5(bidirectional, num_buckets, max_distance):
    rel = np.arange(-300, 301, dtype="int32").reshape(1, -1) + np.zeros((2, 1), "int32")
    got = to_numpy(relative_position_bucket(rel, bidirectional, num_buckets, max_distance))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref.t5_relative_position_bucket(rel, bidirectional, num_buckets, max_distance))
    assert got.min() >= 0 and got.max() < num_buckets


def test_relative_position_bucket_known_values():
    # T5 defaults (32 buckets, max distance 128), as transformers' T5Attention gives them.
    got = to_numpy(relative_position_bucket(np.array([-200, -128, -20, -8, -3, -1, 0, 1, 3, 8, 20, 128, 200])))
    np.testing.assert_array_equal(got, [15, 15, 10, 8, 3, 1, 0, 17, 19, 24, 26, 31, 31])
    causal = to_numpy(relative_position_bucket(np.array([-200, -20, -3, 0, 3, 20]), bidirectional=False))
    np.testing.assert_array_equal(causal, [31, 17, 3, 0, 0, 0])


def _randomise(layer, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    values = {}
    for w in layer.weights:
        v = (rng.normal(size=w.shape) * scale).astype("float32")
        w.assign(v)
        values[w.name] = v.astype(np.float64)
    return values


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_position_bias_matches_reference(bidirectional):
    layer = RelativePositionBias(3, num_buckets=16, max_distance=40, bidirectional=bidirectional)
    out = layer(6, 9)
    w = _randomise(layer, seed=2)["embeddings"]
    assert tuple(layer.embeddings.shape) == (16, 3)
    rel = np.arange(9)[None, :] - np.arange(6)[:, None]
    expected = np.transpose(w[ref.t5_relative_position_bucket(rel, bidirectional, 16, 40)], (2, 0, 1))[None]
    out = to_numpy(layer(6, 9))
    assert out.shape == (1, 3, 6, 9)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # Cached decoding: the query at offset 4 (an int or a 0-d tensor) is row 4 of the full table.
    for offset in (4, keras.ops.convert_to_tensor(4, "int32")):
        np.testing.assert_allclose(to_numpy(layer(1, 9, query_offset=offset)), expected[:, :, 4:5], rtol=1e-6)


# --- dot-product attention ----------------------------------------------------------

def _qkv(rng, batch=2, tq=5, tk=7, heads=3, dim=4):
    q = rng.normal(size=(batch, tq, heads, dim)).astype("float32")
    k = rng.normal(size=(batch, tk, heads, dim)).astype("float32")
    v = rng.normal(size=(batch, tk, heads, dim)).astype("float32")
    return q, k, v


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("scale", [None, 1.0])
def test_dot_product_attention_matches_reference(with_bias, with_mask, scale):
    rng = np.random.default_rng(3)
    q, k, v = _qkv(rng)
    bias = rng.normal(size=(1, 3, 5, 7)).astype("float32") if with_bias else None
    mask = (rng.random((2, 1, 5, 7)) < 0.6) if with_mask else None
    if with_mask:
        mask[:, :, :, 0] = True
    expected = ref.attention(*(x.astype(np.float64) for x in (q, k, v)), bias, mask, scale)
    np.testing.assert_allclose(to_numpy(dot_product_attention(q, k, v, bias, mask, scale)), expected, **TOL)
    np.testing.assert_allclose(to_numpy(naive_attention(q, k, v, bias, mask, scale)), expected, **TOL)
    np.testing.assert_allclose(
        to_numpy(dot_product_attention(q, k, v, bias, mask, scale, flash_attention=False)), expected, **TOL)


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_fully_masked_rows_give_zeros(with_bias):
    rng = np.random.default_rng(4)
    q, k, v = _qkv(rng)
    bias = rng.normal(size=(2, 3, 5, 7)).astype("float32") if with_bias else None
    mask = rng.random((2, 3, 5, 7)) < 0.5
    mask[:, :, :, 1] = True
    mask[0, :, 2] = False  # query 2 of example 0 sees nothing, in every head
    mask[1, 1, 4] = False  # query 4 of example 1 sees nothing in head 1
    for fn in (dot_product_attention, naive_attention):
        out = to_numpy(fn(q, k, v, bias=bias, mask=mask))
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out[0, 2], 0.0)
        np.testing.assert_array_equal(out[1, 4, 1], 0.0)
        expected = ref.attention(*(x.astype(np.float64) for x in (q, k, v)), bias, mask)
        np.testing.assert_allclose(out, expected, **TOL)


def test_gradients_with_fully_masked_rows_are_finite_and_agree():
    rng = np.random.default_rng(21)
    q, k, v = _qkv(rng)
    bias = rng.normal(size=(1, 3, 5, 7)).astype("float32")
    mask = rng.random((2, 1, 5, 7)) < 0.5
    mask[:, :, :, 0] = True
    mask[1, 0, 3] = False
    weights = rng.normal(size=q.shape).astype("float32")
    grads = {}
    for fn in (dot_product_attention, naive_attention):
        grads[fn.__name__] = input_grads(
            lambda q, k, v: keras.ops.sum(fn(q, k, v, bias=bias, mask=mask) * keras.ops.convert_to_tensor(weights)),
            q, k, v)
    for a, b in zip(grads["dot_product_attention"], grads["naive_attention"]):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, **TOL)
    assert (grads["dot_product_attention"][0][1, 3] == 0).all()  # the query that sees nothing


def test_dot_product_attention_bad_inputs():
    rng = np.random.default_rng(5)
    q, k, v = _qkv(rng)
    with pytest.raises(ValueError, match="`query` must have shape"):
        dot_product_attention(q[0], k, v)
    with pytest.raises(ValueError, match="same head_dim"):
        dot_product_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="`mask` must be broadcastable.*got shape \\(2, 1, 5, 6\\)"):
        dot_product_attention(q, k, v, mask=np.ones((2, 1, 5, 6), bool))
    with pytest.raises(ValueError, match="`bias` must be broadcastable"):
        dot_product_attention(q, k, v, bias=np.ones((1, 2, 5, 7), "float32"))
    with pytest.raises(ValueError, match="`scale`"):
        dot_product_attention(q, k, v, scale=-1.0)


# --- MultiHeadAttention ------------------------------------------------------------------

D, HEADS, KEY_DIM = 10, 3, 4


@pytest.mark.parametrize("use_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("scale", [None, 1.0])
def test_mha_matches_reference_with_bias_and_mask(use_bias, scale):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 6, D)).astype("float32")
    layer = MultiHeadAttention(HEADS, KEY_DIM, use_bias=use_bias, scale=scale)
    layer.build(x.shape)
    w = _randomise(layer, seed=7)
    names = {"query_kernel", "key_kernel", "value_kernel", "output_kernel"}
    if use_bias:
        names |= {"query_bias", "key_bias", "value_bias", "output_bias"}
    assert {v.name for v in layer.weights} == names
    assert tuple(layer.query_kernel.shape) == (D, HEADS * KEY_DIM)
    assert tuple(layer.output_kernel.shape) == (HEADS * KEY_DIM, D)
    bias = to_numpy(alibi_bias(alibi_slopes(HEADS), np.arange(6), np.arange(6)))
    keys = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], bool)
    expected = ref.projected_attention(x.astype(np.float64), None, w, HEADS, bias, keys[:, None, None, :], scale)
    for mask in (keys, np.broadcast_to(keys[:, None, :], (2, 6, 6)), keys[:, None, None, :]):
        out = to_numpy(layer(x, bias=bias, mask=mask))
        np.testing.assert_allclose(out, expected, **TOL)


def test_mha_cross_attention_other_width():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 3, D)).astype("float32")
    y = rng.normal(size=(2, 5, 7)).astype("float32")
    layer = MultiHeadAttention(HEADS, KEY_DIM)
    out = layer(x, key_value=y)
    w = _randomise(layer, seed=9)
    assert tuple(layer.key_kernel.shape) == (7, HEADS * KEY_DIM) and tuple(out.shape) == (2, 3, D)
    np.testing.assert_allclose(
        to_numpy(layer(x, key_value=y)), ref.projected_attention(x.astype(np.float64), y.astype(np.float64), w, HEADS),
        **TOL)


def test_mha_cache_decoding_equals_full_causal_run():
    rng = np.random.default_rng(10)
    batch, steps, max_length = 2, 6, 8
    x = rng.normal(size=(batch, steps, D)).astype("float32")
    layer = MultiHeadAttention(HEADS, KEY_DIM, scale=1.0)
    rpb = RelativePositionBias(HEADS, num_buckets=8, max_distance=16, bidirectional=False)
    layer(x)
    rpb(steps, steps)
    _randomise(layer, seed=11)
    _randomise(rpb, seed=12)
    causal = np.tril(np.ones((steps, steps), bool))[None]
    full = to_numpy(layer(x, bias=rpb(steps, steps), mask=causal))

    cache = keras.ops.zeros((batch, 2, max_length, HEADS, KEY_DIM))
    slots = np.arange(max_length)
    outs = []
    for t in range(steps):
        index = keras.ops.convert_to_tensor(t, "int32") if t % 2 else t  # an int or a 0-d tensor
        mask = (slots <= t)[None, None, :]  # hides unwritten and future slots
        out, cache = layer(x[:, t:t + 1], bias=rpb(1, max_length, query_offset=index), mask=mask, cache=cache,
                           cache_update_index=index)
        assert tuple(out.shape) == (batch, 1, D) and tuple(cache.shape) == (batch, 2, max_length, HEADS, KEY_DIM)
        outs.append(to_numpy(out))
    np.testing.assert_allclose(np.concatenate(outs, axis=1), full, **TOL)
    # A prompt of 4 tokens at once, then one more token: the same again.
    cache = keras.ops.zeros((batch, 2, max_length, HEADS, KEY_DIM))
    prompt_mask = (slots[None, :] <= np.arange(4)[:, None])[None]
    out4, cache = layer(x[:, :4], bias=rpb(4, max_length), mask=prompt_mask, cache=cache, cache_update_index=0)
    out5, cache = layer(x[:, 4:5], bias=rpb(1, max_length, query_offset=4), mask=(slots <= 4)[None, None],
                        cache=cache, cache_update_index=4)
    np.testing.assert_allclose(np.concatenate([to_numpy(out4), to_numpy(out5)], 1), full[:, :5], **TOL)
    # The cache holds the projected keys and values of the tokens written so far, zeros after.
    c = to_numpy(cache)
    np.testing.assert_array_equal(c[:, :, 5:], 0.0)
    keys = np.einsum("btd,dk->btk", x[:, :5], to_numpy(layer.key_kernel)).reshape(batch, 5, HEADS, KEY_DIM)
    np.testing.assert_allclose(c[:, 0, :5], keys, **TOL)


def test_mha_read_only_cache_for_cross_attention():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(2, 1, D)).astype("float32")
    enc = rng.normal(size=(2, 5, D)).astype("float32")
    layer = MultiHeadAttention(HEADS, KEY_DIM)
    expected = to_numpy(layer(x, key_value=enc))
    _, cache = layer(x, key_value=enc, cache=keras.ops.zeros((2, 2, 5, HEADS, KEY_DIM)), cache_update_index=0)
    out, same = layer(x, cache=cache)
    np.testing.assert_allclose(to_numpy(out), expected, **TOL)
    np.testing.assert_array_equal(to_numpy(same), to_numpy(cache))


def test_mha_dropout_only_in_training():
    rng = np.random.default_rng(14)
    x = rng.normal(size=(2, 6, D)).astype("float32")
    plain = MultiHeadAttention(HEADS, KEY_DIM)
    drop = MultiHeadAttention(HEADS, KEY_DIM, dropout=0.5)
    plain(x)
    drop(x)
    drop.set_weights(plain.get_weights())
    expected = to_numpy(plain(x))
    np.testing.assert_allclose(to_numpy(drop(x)), expected, **TOL)
    np.testing.assert_allclose(to_numpy(drop(x, training=False)), expected, **TOL)
    assert np.abs(to_numpy(drop(x, training=True)) - expected).max() > 1e-3


def test_mha_in_a_functional_model_and_keras_round_trip(tmp_path):
    rng = np.random.default_rng(15)
    x = rng.normal(size=(2, 6, D)).astype("float32")
    mask = np.arange(6)[None, :] < np.array([[6], [4]])
    inputs = keras.Input((6, D))
    keys = keras.Input((6,), dtype="bool")
    layer = MultiHeadAttention(HEADS, KEY_DIM, use_bias=True, scale=0.7, dropout=0.1, name="mha")
    model = keras.Model([inputs, keys], layer(inputs, mask=keys))
    _randomise(layer, seed=16)
    expected = to_numpy(model([x, mask]))
    path = tmp_path / "mha.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded([x, mask])), expected, rtol=1e-6, atol=1e-6)
    clone = MultiHeadAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(clone(x, mask=mask)), expected, rtol=1e-6, atol=1e-6)


def test_relative_position_bias_config_round_trip():
    layer = RelativePositionBias(4, num_buckets=12, max_distance=30, bidirectional=False, name="rpb")
    layer(3, 5)
    _randomise(layer, seed=17)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, RelativePositionBias) and clone.get_config() == layer.get_config()
    clone(3, 5)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(3, 5)), to_numpy(layer(3, 5)))


def test_mha_bad_inputs():
    x = np.ones((2, 4, D), "float32")
    with pytest.raises(ValueError, match="`num_heads` must be a positive integer; got 0"):
        MultiHeadAttention(0, KEY_DIM)
    with pytest.raises(ValueError, match="`key_dim` must be a positive integer; got -2"):
        MultiHeadAttention(HEADS, -2)
    with pytest.raises(ValueError, match="`dropout`"):
        MultiHeadAttention(HEADS, KEY_DIM, dropout=1.0)
    with pytest.raises(ValueError, match="`num_heads`"):
        RelativePositionBias(0)
    with pytest.raises(ValueError, match="`max_distance`"):
        RelativePositionBias(2, num_buckets=32, max_distance=8)
    layer = MultiHeadAttention(HEADS, KEY_DIM)
    with pytest.raises(ValueError, match="`query` must have shape"):
        layer(x[0])
    layer(x)
    with pytest.raises(ValueError, match=f"`query` must have shape \\(batch, length, {D}\\); got shape \\(2, 4, 3\\)"):
        layer(x[..., :3])
    with pytest.raises(ValueError, match="`mask` must have shape.*got shape \\(4,\\)"):
        layer(x, mask=np.ones((4,), bool))
    with pytest.raises(ValueError, match="2-D `mask` must have shape \\(batch, Tk\\).*got shape \\(2, 5\\)"):
        layer(x, mask=np.ones((2, 5), bool))
    with pytest.raises(ValueError, match="`mask` must be broadcastable.*got shape \\(2, 1, 4, 3\\)"):
        layer(x, mask=np.ones((2, 1, 4, 3), bool))
    with pytest.raises(ValueError, match="`bias` must be broadcastable.*got shape \\(1, 2, 4, 4\\)"):
        layer(x, bias=np.ones((1, 2, 4, 4), "float32"))
    with pytest.raises(ValueError, match="`cache` must have shape \\(batch, 2, max_length, 3, 4\\).*got shape"):
        layer(x, cache=np.zeros((2, 2, 8, HEADS, KEY_DIM + 1), "float32"), cache_update_index=0)
    with pytest.raises(ValueError, match="`cache` must have shape.*with batch 2"):
        layer(x, cache=np.zeros((3, 2, 8, HEADS, KEY_DIM), "float32"), cache_update_index=0)
    with pytest.raises(ValueError, match="`cache_update_index` needs a `cache`"):
        layer(x, cache_update_index=0)
    with pytest.raises(ValueError, match="`query` must be floating point"):
        layer(np.ones((2, 4, D), "int32"))


# --- unpadding ----------------------------------------------------------------------------

def _random_mask(rng, batch, seq_len, contiguous=True):
    lengths = rng.integers(0, seq_len + 1, size=batch)
    lengths[0] = seq_len
    mask = np.arange(seq_len)[None, :] < lengths[:, None]
    if not contiguous:
        mask = np.stack([rng.permutation(row) for row in mask])
    return mask


def test_pack_sequences_layout():
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0], [1, 0, 0, 0, 0, 0], [0] * 6], bool)
    p = pack_sequences(mask)
    assert isinstance(p, Packing) and p.num_rows == 2 and p.row_length == 6
    # First-fit decreasing: 5 tokens (example 1) + 1 (example 2) in row 0, 3 (example 0) in row 1.
    np.testing.assert_array_equal(p.segment_ids, [[1, 1, 1, 1, 1, 2], [1, 1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(p.positions, [[0, 1, 2, 3, 4, 0], [0, 1, 2, 0, 0, 0]])
    np.testing.assert_array_equal(p.source, [[6, 7, 8, 9, 10, 12], [0, 1, 2, -1, -1, -1]])
    np.testing.assert_array_equal(p.target[0], [6, 7, 8, -1, -1, -1])
    np.testing.assert_array_equal(p.target[3], -1)
    for name, arr in p.as_dict().items():
        assert arr.dtype == np.int32, name
    assert pack_sequences(mask, num_rows=4).num_rows == 4
    assert pack_sequences(mask, row_length=12).num_rows == 1
    with pytest.raises(ValueError, match="need 2 rows of 6; got num_rows=1"):
        pack_sequences(mask, num_rows=1)
    with pytest.raises(ValueError, match="5 tokens does not fit `row_length` 4"):
        pack_sequences(mask, row_length=4)
    with pytest.raises(ValueError, match="`padding_mask` must have shape"):
        pack_sequences(mask[0])


@pytest.mark.parametrize("contiguous", [True, False], ids=["right_padded", "scattered"])
def test_pack_unpack_exact(contiguous):
    rng = np.random.default_rng(18)
    mask = _random_mask(rng, 7, 9, contiguous)
    p = pack_sequences(mask, row_length=12)
    assert (p.segment_ids > 0).sum() == mask.sum()
    x = rng.normal(size=(7, 9, 3)).astype("float32")
    ids = rng.integers(1, 100, size=(7, 9)).astype("int32")
    for packing in (p, {k: keras.ops.convert_to_tensor(v) for k, v in p.as_dict().items()}):
        packed = to_numpy(pack(x, packing))
        assert packed.shape == (p.num_rows, 12, 3)
        assert (packed[p.segment_ids == 0] == 0).all()
        back = to_numpy(unpack(packed, packing))
        np.testing.assert_array_equal(back[mask], x[mask])
        assert (back[~mask] == 0).all()
        packed_ids = to_numpy(pack(ids, packing))
        assert packed_ids.dtype == np.int32
        np.testing.assert_array_equal(to_numpy(unpack(packed_ids, packing))[mask], ids[mask])
    # Each row holds its segments' tokens in their original order.
    flat = x.reshape(-1, 3)
    np.testing.assert_array_equal(packed[p.source >= 0], flat[p.source[p.source >= 0]])


def test_segment_mask():
    seg = np.array([[1, 1, 2, 2, 2, 0]], "int32")
    m = to_numpy(segment_mask(seg))
    assert m.shape == (1, 1, 6, 6) and m.dtype == bool
    expected = np.zeros((6, 6), bool)
    expected[:2, :2] = True
    expected[2:5, 2:5] = True
    np.testing.assert_array_equal(m[0, 0], expected)


@pytest.mark.parametrize("contiguous", [True, False], ids=["right_padded", "scattered"])
def test_packed_alibi_attention_equals_padded(contiguous):
    rng = np.random.default_rng(19)
    batch, seq_len, heads = 5, 8, 4
    mask = _random_mask(rng, batch, seq_len, contiguous)
    x = rng.normal(size=(batch, seq_len, D)).astype("float32")
    layer = MultiHeadAttention(heads, KEY_DIM)
    layer(x)
    _randomise(layer, seed=20)
    slopes = alibi_slopes(heads)
    positions = np.arange(seq_len)[None]
    padded = to_numpy(layer(x, bias=alibi_bias(slopes, positions, positions), mask=mask))

    p = pack_sequences(mask)
    packed_x = pack(x, p)
    out = layer(packed_x, bias=alibi_bias(slopes, p.positions, p.positions), mask=segment_mask(p.segment_ids))
    np.testing.assert_allclose(to_numpy(unpack(out, p))[mask], padded[mask], **TOL)
    assert (to_numpy(out)[p.segment_ids == 0] == 0).all()  # empty slots attend to nothing
