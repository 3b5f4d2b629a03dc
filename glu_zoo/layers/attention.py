"""Attention: ALiBi, T5's relative position buckets, multi-head attention with
a key/value cache, and the unpadding (packing) of MosaicBERT.

- ALiBi: Press, Smith & Lewis 2021, "Train Short, Test Long: Attention with
  Linear Biases Enables Input Length Extrapolation" (arXiv 2108.12409).
- T5 relative position bias: Raffel et al. 2019, "Exploring the Limits of
  Transfer Learning with a Unified Text-to-Text Transformer" (arXiv 1910.10683).
- Unpadding: Portes et al. 2023, "MosaicBERT: A Bidirectional Encoder
  Optimized for Fast Pretraining" (arXiv 2312.17482).
- Scaled dot-product attention: Vaswani et al. 2017 (arXiv 1706.03762).
"""

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from glu_zoo.layers.checks import check_bool, check_dropout, check_floating, check_number, check_positive_int, fresh

__all__ = [
    "attention_probabilities",
    "large_negative",
    "MultiHeadAttention",
    "Packing",
    "RelativePositionBias",
    "alibi_bias",
    "alibi_slopes",
    "dot_product_attention",
    "naive_attention",
    "pack",
    "pack_sequences",
    "relative_position_bucket",
    "segment_mask",
    "unpack",
]


# --- ALiBi ---------------------------------------------------------------------

def alibi_slopes(num_heads):
    """The ALiBi head slopes (Press et al. 2021, arXiv 2108.12409), float64 (num_heads,).

    For n a power of two the slopes are the geometric sequence 2^(−8k/n),
    k = 1..n (8 heads: 1/2, 1/4, …, 1/256). For other n, the slopes of the
    largest power of two m < n, then every other slope of the 2m-head list,
    the first n − m of them (12 heads: the 8 above, then 2^−0.5, 2^−1.5,
    2^−2.5, 2^−3.5) — the rule of the paper's code.

        alibi_slopes(8)  # array([0.5, 0.25, ..., 0.00390625])
    """
    check_positive_int("num_heads", num_heads, "alibi_slopes")

    def power_of_two(n):
        return [2.0 ** (-8.0 * k / n) for k in range(1, n + 1)]

    m = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = power_of_two(m)
    if m < num_heads:
        slopes += power_of_two(2 * m)[0::2][: num_heads - m]
    return np.asarray(slopes, np.float64)


def _positions(positions, name, owner):
    positions = ops.convert_to_tensor(positions)
    if len(positions.shape) == 1:
        positions = positions[None, :]
    if len(positions.shape) != 2:
        raise ValueError(
            f"{owner}: `{name}` must have shape (batch, length) or (length,); got shape {tuple(positions.shape)}."
        )
    return positions


def alibi_bias(slopes, query_positions, key_positions, dtype="float32"):
    """The symmetric (bidirectional) ALiBi bias, as in MosaicBERT:

        bias[b, h, i, j] = −slope_h · |q_pos[b, i] − k_pos[b, j]|

    Args:
        slopes: (heads,) array, e.g. `alibi_slopes(heads)`.
        query_positions: int (batch, Tq) or (Tq,) (then batch 1).
        key_positions: int (batch, Tk) or (Tk,).
        dtype: of the result.

    Returns (batch, heads, Tq, Tk), to add to the attention logits.

        bias = alibi_bias(alibi_slopes(8), np.arange(16)[None], np.arange(16)[None])
        bias.shape  # (1, 8, 16, 16)
    """
    owner = "alibi_bias"
    slopes = ops.convert_to_tensor(slopes, dtype=dtype)
    if len(slopes.shape) != 1:
        raise ValueError(f"{owner}: `slopes` must have shape (heads,); got shape {tuple(slopes.shape)}.")
    q = _positions(query_positions, "query_positions", owner)
    k = _positions(key_positions, "key_positions", owner)
    distance = ops.abs(ops.cast(q[:, :, None], "int32") - ops.cast(k[:, None, :], "int32"))
    return -slopes[None, :, None, None] * ops.cast(distance, dtype)[:, None, :, :]


# --- T5 relative position bias ----------------------------------------------------

def _check_buckets(bidirectional, num_buckets, max_distance, owner):
    check_bool("bidirectional", bidirectional, owner)
    check_positive_int("num_buckets", num_buckets, owner)
    check_positive_int("max_distance", max_distance, owner)
    if num_buckets < (4 if bidirectional else 2):
        raise ValueError(
            f"{owner}: `num_buckets` must be at least {4 if bidirectional else 2} "
            f"(bidirectional={bidirectional}); got {num_buckets}."
        )
    max_exact = (num_buckets // 2 if bidirectional else num_buckets) // 2
    if max_distance <= max_exact:
        raise ValueError(
            f"{owner}: `max_distance` must exceed the exact range {max_exact}; got {max_distance}."
        )


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """T5's bucket of each relative position (key − query), int32 (Raffel et al. 2019, arXiv 1910.10683).

    Bidirectional: half of the buckets for keys after the query (offset
    num_buckets/2), half for keys at or before it, each on |r|; causal: all
    buckets for max(−r, 0). Within the n buckets of a side, distances below
    n/2 get a bucket each; larger ones
    n/2 + ⌊log(d / (n/2)) / log(max_distance / (n/2)) · (n − n/2)⌋,
    capped at n − 1 (computed in float32, as Mesh TensorFlow and transformers do).

        relative_position_bucket(np.arange(-3, 4), num_buckets=32)  # [3, 2, 1, 0, 17, 18, 19]
    """
    _check_buckets(bidirectional, num_buckets, max_distance, "relative_position_bucket")
    relative_position = ops.cast(relative_position, "int32")
    buckets = ops.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + ops.cast(relative_position > 0, "int32") * num_buckets
        distance = ops.abs(relative_position)
    else:
        distance = -ops.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # max(d, 1) keeps log finite where the exact bucket is taken anyway.
    scaled = ops.log(ops.cast(ops.maximum(distance, 1), "float32") / max_exact)
    scaled = scaled / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    large = ops.minimum(max_exact + ops.cast(scaled, "int32"), num_buckets - 1)
    return buckets + ops.where(is_small, distance, large)


@keras.saving.register_keras_serializable(package="glu_zoo")
class RelativePositionBias(keras.layers.Layer):
    """T5's learned relative position bias (Raffel et al. 2019, arXiv 1910.10683):

        bias[0, h, i, j] = embeddings[bucket(j − (offset + i)), h]

    with T5's buckets (`relative_position_bucket`). One table per stack,
    shared by its layers; added to the attention logits (T5 does not scale
    them: pass `scale=1.0` to the attention). Weight `embeddings`
    (num_buckets, num_heads), the layout of transformers'
    `relative_attention_bias.weight`.

    `call(query_length, key_length, query_offset=0)`: python ints for the
    lengths (0-d int tensors in a graph of unknown length); the offset (an
    int or a 0-d int tensor) places the queries at positions
    offset..offset+Tq−1 against keys 0..Tk−1, for cached decoding.
    Returns (1, num_heads, Tq, Tk).

    Args:
        num_heads: attention heads.
        num_buckets: buckets (32 in T5).
        max_distance: distance of the last bucket (128 in T5).
        bidirectional: True in the encoder, False in a causal decoder.
        embeddings_initializer: of the table.

        rpb = RelativePositionBias(8)
        bias = rpb(16, 16)
        bias.shape  # (1, 8, 16, 16)
    """

    def __init__(self, num_heads, num_buckets=32, max_distance=128, bidirectional=True,
                 embeddings_initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.num_heads = check_positive_int("num_heads", num_heads, owner)
        self.num_buckets = check_positive_int("num_buckets", num_buckets, owner)
        self.max_distance = check_positive_int("max_distance", max_distance, owner)
        self.bidirectional = check_bool("bidirectional", bidirectional, owner)
        _check_buckets(bidirectional, num_buckets, max_distance, owner)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_buckets, self.num_heads),
            initializer=fresh(self.embeddings_initializer),
        )

    def __call__(self, query_length, key_length, query_offset=0, **kwargs):
        # Keras takes only tensors positionally; the lengths are python ints.
        return super().__call__(
            query_length=query_length, key_length=key_length, query_offset=query_offset, **kwargs)

    def call(self, query_length, key_length, query_offset=0):
        owner = f"{type(self).__name__} '{self.name}'"
        for name, value in (("query_length", query_length), ("key_length", key_length)):
            if not ops.is_tensor(value):  # a graph's unknown length comes as a 0-d tensor
                check_positive_int(name, value, owner)
        query_positions = ops.arange(query_length, dtype="int32") + ops.cast(query_offset, "int32")
        key_positions = ops.arange(key_length, dtype="int32")
        buckets = relative_position_bucket(
            key_positions[None, :] - query_positions[:, None],
            self.bidirectional, self.num_buckets, self.max_distance,
        )
        values = ops.take(self.embeddings, buckets, axis=0)  # (Tq, Tk, heads)
        return ops.transpose(values, (2, 0, 1))[None]

    def compute_output_shape(self, query_length, key_length, query_offset=0):
        return (1, self.num_heads, query_length, key_length)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "num_buckets": self.num_buckets,
            "max_distance": self.max_distance,
            "bidirectional": self.bidirectional,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }


# --- scaled dot-product attention --------------------------------------------------

def large_negative(dtype):
    """−0.7 × the largest finite value of `dtype` (as Keras's own masking)."""
    return -0.7 * (65504.0 if keras.backend.standardize_dtype(dtype) == "float16" else 3.38953e38)


def _check_broadcast(name, x, target, owner):
    """`x` (rank ≤ 4) broadcastable to `target` = (B, H, Tq, Tk); returns it as rank 4."""
    shape = tuple(x.shape)
    if len(shape) > 4:
        raise ValueError(
            f"{owner}: `{name}` must be broadcastable to (batch, heads, Tq, Tk) = {target}; "
            f"got shape {shape}."
        )
    full = (1,) * (4 - len(shape)) + shape
    for have, want in zip(full, target):
        if have is not None and want is not None and have not in (1, want):
            raise ValueError(
                f"{owner}: `{name}` must be broadcastable to (batch, heads, Tq, Tk) = {target}; "
                f"got shape {shape}."
            )
    return ops.reshape(x, full) if len(shape) < 4 else x


def _check_qkv(query, key, value, owner):
    for name, x in (("query", query), ("key", key), ("value", value)):
        if len(x.shape) != 4:
            raise ValueError(
                f"{owner}: `{name}` must have shape (batch, length, heads, head_dim); got shape {tuple(x.shape)}."
            )
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(
            f"{owner}: `key` and `query` must have the same head_dim; got query {tuple(query.shape)} "
            f"and key {tuple(key.shape)}."
        )
    if tuple(key.shape[1:3]) != tuple(value.shape[1:3]) or key.shape[2] != query.shape[2]:
        raise ValueError(
            f"{owner}: `key` and `value` must have the same length and as many heads as `query`; got query "
            f"{tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}."
        )
    return (query.shape[0], query.shape[2], query.shape[1], key.shape[1])


def _prepare(query, key, value, bias, mask, owner):
    query, key, value = (ops.convert_to_tensor(x) for x in (query, key, value))
    target = _check_qkv(query, key, value, owner)
    if bias is not None:
        bias = _check_broadcast("bias", ops.convert_to_tensor(bias), target, owner)
    if mask is not None:
        mask = _check_broadcast("mask", ops.cast(mask, "bool"), target, owner)
    return query, key, value, bias, mask


def _zero_empty_rows(out, mask):
    """0 for the queries whose mask row is all False. `out` (B, Tq, H, D), `mask` (B|1, H|1, Tq|1, Tk)."""
    if mask is None:
        return out
    seen = ops.transpose(ops.any(mask, axis=-1), (0, 2, 1))[..., None]  # (B|1, Tq|1, H|1, 1)
    return ops.where(seen, out, ops.zeros_like(out))


def _flash_attention(bias, mask):
    """The `flash_attention` argument for keras.ops.dot_product_attention.

    None lets Keras try its fused kernel, but only where that kernel honours
    these arguments: JAX on GPU (cuDNN; Keras checks dtype and layout and
    falls back itself), JAX on TPU without bias and mask (the TPU kernel drops
    a bias and keeps the first example's mask only), torch without bias and
    mask (its flash kernel takes neither); never TensorFlow (no kernel).
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        platform = jax.devices()[0].platform
        if platform == "gpu" or platform == "cuda":
            return None
        if platform == "tpu" and bias is None and mask is None:
            return None
        return False
    if backend == "torch" and bias is None and mask is None:
        return None
    return False


def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, flash_attention=None):
    """Scaled dot-product attention (Vaswani et al. 2017, arXiv 1706.03762):

        out[b, i, h] = Σ_j softmax_j(scale·q_{b,i,h}·k_{b,j,h} + bias[b, h, i, j]) v_{b,j,h}

    over the keys j with mask[b, h, i, j] True; a query whose keys are all
    masked gets 0 (keras.ops.dot_product_attention alone gives the mean of
    the values there, on every backend). Runs through
    `keras.ops.dot_product_attention`: a mask given with a bias is folded
    into it (torch takes only one of the two); the fused (flash) kernel is
    used only where it honours these arguments (JAX cuDNN on GPU; torch and
    JAX TPU without bias or mask; never TensorFlow), the plain path otherwise.

    Args:
        query: (batch, Tq, heads, head_dim).
        key, value: (batch, Tk, heads, head_dim).
        bias: float, broadcastable to (batch, heads, Tq, Tk).
        mask: bool, broadcastable to (batch, heads, Tq, Tk), True = attend.
        scale: of the logits; None = 1/√head_dim.
        flash_attention: None = as above; False = the plain path always;
            True = require the fused kernel (Keras raises where there is none).

    Returns (batch, Tq, heads, head_dim).

        q = k = v = np.ones((2, 16, 4, 8), "float32")
        out = dot_product_attention(q, k, v, mask=np.tril(np.ones((16, 16), bool)))
        out.shape  # (2, 16, 4, 8)
    """
    owner = "dot_product_attention"
    query, key, value, bias, mask = _prepare(query, key, value, bias, mask, owner)
    if scale is not None:
        scale = check_number("scale", scale, owner, low=0.0)
    if flash_attention is not None:
        check_bool("flash_attention", flash_attention, owner)
    compute_dtype = keras.backend.result_type(query.dtype, key.dtype, value.dtype)
    keras_bias, keras_mask = bias, mask
    if bias is not None and mask is not None:
        keras_bias = ops.where(mask, ops.cast(bias, compute_dtype), large_negative(compute_dtype))
        keras_mask = None
    if flash_attention is None:
        flash_attention = _flash_attention(keras_bias, keras_mask)
    out = ops.dot_product_attention(
        query, key, value, bias=keras_bias, mask=keras_mask, scale=scale, flash_attention=flash_attention
    )
    return _zero_empty_rows(out, mask)


def attention_probabilities(query, key, bias, mask, scale):
    """softmax(scale·q·kᵀ + bias) over the unmasked keys, float32, 0 at masked keys; (B, H, Tq, Tk)."""
    logits = ops.einsum("bthd,bshd->bhts", query, key)
    logits = ops.cast(logits, "float32") * (1.0 / math.sqrt(query.shape[-1]) if scale is None else scale)
    if bias is not None:
        logits = logits + ops.cast(bias, "float32")
    if mask is not None:
        logits = ops.where(mask, logits, large_negative("float32"))
    probs = ops.softmax(logits, axis=-1)
    if mask is not None:
        probs = ops.where(mask, probs, 0.0)  # an all-masked row: 0, not uniform
    return probs


def naive_attention(query, key, value, bias=None, mask=None, scale=None):
    """The same as `dot_product_attention`, written out with keras.ops:
    logits and softmax in float32, probabilities (B, H, Tq, Tk) materialised.
    A reference for tests and benchmarks, and the path of attention dropout.

        out = naive_attention(q, k, v, bias=alibi_bias(alibi_slopes(4), pos, pos))
    """
    owner = "naive_attention"
    query, key, value, bias, mask = _prepare(query, key, value, bias, mask, owner)
    if scale is not None:
        scale = check_number("scale", scale, owner, low=0.0)
    probs = attention_probabilities(query, key, bias, mask, scale)
    return ops.einsum("bhts,bshd->bthd", ops.cast(probs, value.dtype), value)


# --- multi-head attention --------------------------------------------------------

@keras.saving.register_keras_serializable(package="glu_zoo")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention with an additive bias, a mask and a key/value cache
    (Vaswani et al. 2017, arXiv 1706.03762; T5's layout, arXiv 1910.10683):

        Q = x·W_q, K = y·W_k, V = y·W_v   (heads × key_dim columns each)
        out = concat_h softmax(scale·Q_h·K_hᵀ + bias_h, masked) V_h · W_o

    with y = x for self-attention. Weights `query_kernel`, `key_kernel`,
    `value_kernel` (d, num_heads·key_dim) (columns head-major: head h is
    h·key_dim..(h+1)·key_dim−1, as transformers' T5 `q`, `k`, `v` transposed),
    `output_kernel` (num_heads·key_dim, d) where d is the query's width;
    `query_bias`, `key_bias`, `value_bias`, `output_bias` only with use_bias.
    Attention runs through `dot_product_attention`; with dropout > 0 and
    training, the probabilities get dropout (then the plain softmax path).

    `call(query, key_value=None, bias=None, mask=None, cache=None,
    cache_update_index=None, training=None)`:
    - query (batch, Tq, d); key_value (batch, Tk, d_kv) or None (self-attention).
    - bias: broadcastable to (batch, heads, Tq, Tk) (ALiBi, T5's position bias).
    - mask: True = attend; (batch, Tk) keys (padding), (batch, Tq, Tk), or
      broadcastable to (batch, heads, Tq, Tk). Queries with no key get 0.
    - cache: (batch, 2, max_length, heads, key_dim), [:, 0] keys and [:, 1]
      values. With cache_update_index (int or 0-d int tensor), the keys and
      values of this call's tokens (of key_value, or of query when None) are
      written at cache_update_index..+T−1, and the attention runs over the
      whole cache (Tk = max_length: the mask must hide unwritten and future
      slots). Without cache_update_index the cache is read only (cross
      attention to keys computed once; key_value must then be None).
      The call returns (output, cache) when given a cache, else output.

    Args:
        num_heads: attention heads.
        key_dim: width of each head (queries, keys and values).
        use_bias: biases in the four projections (T5: none).
        scale: of the logits; None = 1/√key_dim (T5 uses 1.0).
        dropout: rate in [0, 1) on the attention probabilities.
        kernel_initializer, bias_initializer: of the projections.

        mha = MultiHeadAttention(num_heads=8, key_dim=64)
        y = mha(np.ones((2, 16, 512), "float32"), mask=np.ones((2, 16), bool))
        y.shape  # (2, 16, 512)
    """

    def __init__(self, num_heads, key_dim, use_bias=False, scale=None, dropout=0.0,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.num_heads = check_positive_int("num_heads", num_heads, owner)
        self.key_dim = check_positive_int("key_dim", key_dim, owner)
        self.use_bias = check_bool("use_bias", use_bias, owner)
        self.scale = None if scale is None else check_number("scale", scale, owner, low=0.0)
        self.dropout = check_dropout(dropout, owner)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.query_dim = None
        self.key_value_dim = None

    @property
    def _owner(self):
        return f"{type(self).__name__} '{self.name}'"

    def _check_rank3(self, name, shape, width):
        if len(shape) != 3 or shape[-1] is None or (width is not None and shape[-1] != width):
            want = f"(batch, length, {width})" if width is not None else "(batch, length, features)"
            raise ValueError(f"{self._owner}: `{name}` must have shape {want}; got shape {tuple(shape)}.")

    def build(self, query_shape, key_value_shape=None):
        self._check_rank3("query", query_shape, None)
        self.query_dim = int(query_shape[-1])
        if key_value_shape is None:
            key_value_shape = query_shape
        self._check_rank3("key_value", key_value_shape, None)
        self.key_value_dim = int(key_value_shape[-1])
        inner = self.num_heads * self.key_dim
        for name, rows in (("query", self.query_dim), ("key", self.key_value_dim), ("value", self.key_value_dim)):
            setattr(self, f"{name}_kernel", self.add_weight(
                name=f"{name}_kernel", shape=(rows, inner), initializer=fresh(self.kernel_initializer)))
            if self.use_bias:
                setattr(self, f"{name}_bias", self.add_weight(
                    name=f"{name}_bias", shape=(inner,), initializer=fresh(self.bias_initializer)))
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(inner, self.query_dim), initializer=fresh(self.kernel_initializer))
        if self.use_bias:
            self.output_bias = self.add_weight(
                name="output_bias", shape=(self.query_dim,), initializer=fresh(self.bias_initializer))

    def _project(self, x, name):
        """(batch, T, width) → (batch, T, heads, key_dim)."""
        kernel = ops.reshape(getattr(self, f"{name}_kernel"), (-1, self.num_heads, self.key_dim))
        y = ops.einsum("btd,dhk->bthk", x, kernel)
        if self.use_bias:
            y = y + ops.reshape(getattr(self, f"{name}_bias"), (self.num_heads, self.key_dim))
        return y

    def _attention_mask(self, mask, target):
        mask = ops.cast(mask, "bool")
        rank = len(mask.shape)
        if rank == 2:  # (batch, Tk): keys
            batch, keys = mask.shape
            if (keys is not None and target[3] is not None and keys != target[3]) or (
                    batch is not None and target[0] is not None and batch not in (1, target[0])):
                raise ValueError(
                    f"{self._owner}: a 2-D `mask` must have shape (batch, Tk) = ({target[0]}, {target[3]}); "
                    f"got shape {tuple(mask.shape)}.")
            return mask[:, None, None, :]
        if rank == 3:  # (batch, Tq, Tk)
            return _check_broadcast("mask", mask[:, None], target, self._owner)
        if rank == 4:
            return _check_broadcast("mask", mask, target, self._owner)
        raise ValueError(
            f"{self._owner}: `mask` must have shape (batch, Tk), (batch, Tq, Tk) or (batch, heads, Tq, Tk) "
            f"= {target}; got shape {tuple(mask.shape)}.")

    def _check_cache(self, cache, batch):
        shape = tuple(cache.shape)
        ok = len(shape) == 5 and shape[1] == 2 and shape[3] == self.num_heads and shape[4] == self.key_dim
        if ok and batch is not None and shape[0] is not None:
            ok = shape[0] == batch
        if not ok:
            raise ValueError(
                f"{self._owner}: `cache` must have shape (batch, 2, max_length, {self.num_heads}, "
                f"{self.key_dim}) with batch {batch}; got shape {shape}.")

    def call(self, query, key_value=None, bias=None, mask=None, cache=None, cache_update_index=None,
             training=None):
        self._check_rank3("query", query.shape, self.query_dim)
        check_floating(query.dtype, self._owner, "query")
        if key_value is not None:
            self._check_rank3("key_value", key_value.shape, self.key_value_dim)
        if cache is None and cache_update_index is not None:
            raise ValueError(f"{self._owner}: `cache_update_index` needs a `cache`; got cache=None.")
        q = self._project(query, "query")
        source = query if key_value is None else key_value
        if cache is None:
            k, v = self._project(source, "key"), self._project(source, "value")
        else:
            cache = ops.convert_to_tensor(cache)
            self._check_cache(cache, query.shape[0])
            if cache_update_index is not None:
                update = ops.stack([self._project(source, "key"), self._project(source, "value")], axis=1)
                start = [0, 0, cache_update_index, 0, 0]
                cache = ops.slice_update(cache, start, ops.cast(update, cache.dtype))
            elif key_value is not None:
                raise ValueError(
                    f"{self._owner}: with a `cache` and no `cache_update_index` the keys and values come from "
                    f"the cache; `key_value` must be None, got shape {tuple(key_value.shape)}.")
            k, v = ops.cast(cache[:, 0], q.dtype), ops.cast(cache[:, 1], q.dtype)
        target = (query.shape[0], self.num_heads, query.shape[1], k.shape[1])
        if bias is not None:
            bias = _check_broadcast("bias", ops.convert_to_tensor(bias), target, self._owner)
        if mask is not None:
            mask = self._attention_mask(mask, target)
        if self.dropout > 0 and training:
            probs = self.dropout_layer(attention_probabilities(q, k, bias, mask, self.scale), training=training)
            out = ops.einsum("bhts,bshd->bthd", ops.cast(probs, v.dtype), v)
        else:
            out = dot_product_attention(q, k, v, bias=bias, mask=mask, scale=self.scale)
        kernel = ops.reshape(self.output_kernel, (self.num_heads, self.key_dim, -1))
        y = ops.einsum("bthk,hkd->btd", out, kernel)
        if self.use_bias:
            y = y + self.output_bias
        return y if cache is None else (y, cache)

    def compute_mask(self, query, previous_mask=None):
        # Masks are explicit arguments here; the output carries none (and an
        # explicit attention mask must not become the output's Keras mask).
        return None

    def compute_output_shape(self, query_shape, key_value_shape=None):
        return (*query_shape[:-1], self.query_dim or query_shape[-1])

    def compute_output_spec(self, query, key_value=None, bias=None, mask=None, cache=None,
                            cache_update_index=None, training=None):
        out = keras.KerasTensor((*query.shape[:-1], self.query_dim or query.shape[-1]), dtype=self.compute_dtype)
        if cache is None:
            return out
        return out, keras.KerasTensor(cache.shape, dtype=cache.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "use_bias": self.use_bias,
            "scale": self.scale,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


# --- unpadding: packing sequences into rows ----------------------------------------

@dataclasses.dataclass(frozen=True)
class Packing:
    """Where each real token of a padded batch goes in the packed rows (NumPy, int32).

    segment_ids (rows, row_length): 0 = empty slot, k ≥ 1 = the k-th sequence of the row.
    positions (rows, row_length): the token's index in its padded row (its
        position in its sequence, for right-padded input), 0 in empty slots.
    source (rows, row_length): flat index b·seq_len + t of the token placed there, or −1.
    target (batch, seq_len): flat index r·row_length + j of each real token, or −1 for padding.
    """

    segment_ids: np.ndarray
    positions: np.ndarray
    source: np.ndarray
    target: np.ndarray

    @property
    def num_rows(self):
        return self.segment_ids.shape[0]

    @property
    def row_length(self):
        return self.segment_ids.shape[1]

    def as_dict(self):
        """The four arrays by name (to feed a model as inputs)."""
        return dataclasses.asdict(self)


def pack_sequences(padding_mask, row_length=None, num_rows=None):
    """Pack the real tokens of a padded batch into rows, on the host (NumPy).

    MosaicBERT (arXiv 2312.17482) runs its FFN and LayerNorm on real tokens
    only. Under XLA shapes are static, so instead of one flat list of tokens
    the sequences are packed into a fixed number of rows, several per row,
    attention masked to each segment (`segment_mask`). Sequences are placed
    first-fit decreasing: longest first (ties by batch index), each into the
    first row with room, its tokens in their original order.

    Args:
        padding_mask: bool (batch, seq_len), True at real tokens.
        row_length: slots per row; default seq_len.
        num_rows: rows; None = as many as needed (at least 1); if given and
            too few, a ValueError; unused rows stay empty.

    Returns a `Packing`.

        packing = pack_sequences(np.arange(8)[None] < np.array([[3], [5]]))
        packing.segment_ids  # [[1, 1, 1, 1, 1, 2, 2, 2]]
    """
    owner = "pack_sequences"
    padding_mask = np.asarray(padding_mask)
    if padding_mask.ndim != 2:
        raise ValueError(f"{owner}: `padding_mask` must have shape (batch, seq_len); got shape {padding_mask.shape}.")
    if padding_mask.dtype != bool:
        if not np.isin(padding_mask, (0, 1)).all():
            raise ValueError(f"{owner}: `padding_mask` must be boolean (or 0/1); got dtype {padding_mask.dtype}.")
        padding_mask = padding_mask.astype(bool)
    batch, seq_len = padding_mask.shape
    row_length = seq_len if row_length is None else check_positive_int("row_length", row_length, owner)
    if num_rows is not None:
        check_positive_int("num_rows", num_rows, owner)
    lengths = padding_mask.sum(axis=1)
    if batch and lengths.max() > row_length:
        raise ValueError(
            f"{owner}: a sequence of {int(lengths.max())} tokens does not fit `row_length` {row_length}.")
    order = sorted((b for b in range(batch) if lengths[b] > 0), key=lambda b: (-lengths[b], b))
    rows = []  # per row: [used, [batch indices]]
    for b in order:
        for row in rows:
            if row[0] + lengths[b] <= row_length:
                break
        else:
            row = [0, []]
            rows.append(row)
        row[0] += int(lengths[b])
        row[1].append(b)
    needed = max(len(rows), 1)
    if num_rows is not None and num_rows < needed:
        raise ValueError(
            f"{owner}: the {int(lengths.sum())} tokens of {len(order)} sequences need {needed} rows of "
            f"{row_length}; got num_rows={num_rows}.")
    total = needed if num_rows is None else num_rows
    segment_ids = np.zeros((total, row_length), np.int32)
    positions = np.zeros((total, row_length), np.int32)
    source = np.full((total, row_length), -1, np.int32)
    target = np.full((batch, seq_len), -1, np.int32)
    for r, (_, members) in enumerate(rows):
        j = 0
        for k, b in enumerate(members, start=1):
            t = np.flatnonzero(padding_mask[b])
            n = len(t)
            segment_ids[r, j:j + n] = k
            positions[r, j:j + n] = t
            source[r, j:j + n] = b * seq_len + t
            target[b, t] = r * row_length + j + np.arange(n)
            j += n
    return Packing(segment_ids, positions, source, target)


def _packing_index(packing, name):
    value = packing[name] if isinstance(packing, dict) else getattr(packing, name)
    return ops.cast(ops.convert_to_tensor(value), "int32")


def _gather(x, index):
    """x (n, ...) gathered at `index` (any shape; −1 = zeros) → index.shape + x.shape[1:]."""
    valid = index >= 0
    flat = ops.reshape(ops.maximum(index, 0), (-1,))
    y = ops.take(x, flat, axis=0)
    y = ops.reshape(y, (*index.shape, *x.shape[1:]))
    valid = ops.reshape(valid, (*index.shape, *([1] * (len(x.shape) - 1))))
    return ops.where(valid, y, ops.zeros_like(y))


def _move(x, packing, index, owner, name, layout):
    """Gather the tokens of `x` (laid out as the other side of `packing`) into the slots of `index`."""
    slots = _packing_index(packing, index)
    expected = tuple(_packing_index(packing, "target" if index == "source" else "source").shape)
    x = ops.convert_to_tensor(x)
    if len(x.shape) < 2 or (x.shape[0] is not None and tuple(x.shape[:2]) != expected):
        raise ValueError(f"{owner}: `{name}` must have shape {layout} = {expected} + (...); "
                         f"got shape {tuple(x.shape)}.")
    return _gather(ops.reshape(x, (-1, *x.shape[2:])), slots)


def pack(x, packing):
    """(batch, seq_len, ...) → (rows, row_length, ...): each real token moved to
    its slot of `packing` (a `Packing` or its `as_dict()`, NumPy or tensors),
    zeros in empty slots. `unpack` inverts it exactly on the real tokens.

        packed = pack(token_ids, pack_sequences(token_ids != 0))
    """
    return _move(x, packing, "source", "pack", "x", "(batch, seq_len, ...)")


def unpack(y, packing):
    """(rows, row_length, ...) → (batch, seq_len, ...): each real token back in
    its place, zeros at padding. The inverse of `pack` on real tokens.

        hidden = unpack(packed_hidden, packing)
    """
    return _move(y, packing, "target", "unpack", "y", "(rows, row_length, ...)")


def segment_mask(segment_ids):
    """bool (rows, 1, L, L): query i may attend to key j iff both hold the same
    nonzero segment id (a token sees only its own sequence; empty slots see
    nothing, so `dot_product_attention` gives them 0).

        mask = segment_mask(packing.segment_ids)
    """
    segment_ids = ops.convert_to_tensor(segment_ids)
    if len(segment_ids.shape) != 2:
        raise ValueError(
            f"segment_mask: `segment_ids` must have shape (rows, row_length); got shape {tuple(segment_ids.shape)}.")
    same = ops.equal(segment_ids[:, :, None], segment_ids[:, None, :])
    real = ops.not_equal(segment_ids, 0)
    return ops.logical_and(same, real[:, :, None])[:, None]
