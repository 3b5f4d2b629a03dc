"""Transformer blocks with any FFN or GLU variant as their MLP: the pre-norm
encoder block of ViT, and T5's block (encoder, decoder, decoder-only).

Vaswani et al. 2017, "Attention Is All You Need" (arXiv 1706.03762), with the
layer norm before each sub-layer as in ViT (Dosovitskiy et al. 2020,
arXiv 2010.11929; Xiong et al. 2020, arXiv 2002.04745).
"""

import keras
from keras import ops

from glu_zoo.layers.checks import check_bool, check_dropout, check_floating, check_number, check_positive_int
from glu_zoo.layers.attention import MultiHeadAttention, RelativePositionBias
from glu_zoo.layers.ffn import FFN, FFN_ACTIVATIONS, GATED_VARIANTS, GatedFFN

__all__ = ["TransformerEncoderBlock", "T5Block", "MLP_CHOICES", "check_heads", "check_mlp", "mlp_layer"]

MLP_CHOICES = FFN_ACTIVATIONS + GATED_VARIANTS


def check_mlp(mlp, owner):
    """`mlp` an FFN activation or a GatedFFN variant, or a ValueError listing both."""
    if mlp not in MLP_CHOICES:
        raise ValueError(
            f"{owner}: unknown `mlp` {mlp!r}; allowed: an FFN activation "
            f"({', '.join(FFN_ACTIVATIONS)}) or a GatedFFN variant ({', '.join(GATED_VARIANTS)})."
        )
    return mlp


def check_heads(hidden_dim, num_heads, owner):
    """Positive `hidden_dim` and `num_heads`, the first divisible by the second."""
    check_positive_int("hidden_dim", hidden_dim, owner)
    check_positive_int("num_heads", num_heads, owner)
    if hidden_dim % num_heads:
        raise ValueError(
            f"{owner}: `hidden_dim` must be divisible by `num_heads`; got hidden_dim="
            f"{hidden_dim} and num_heads={num_heads}."
        )


def mlp_layer(mlp, mlp_dim, dropout=0.0, use_bias=True, **kwargs):
    """FFN(mlp_dim, activation=mlp) or GatedFFN(mlp_dim, variant=mlp)."""
    if mlp in FFN_ACTIVATIONS:
        return FFN(mlp_dim, activation=mlp, use_bias=use_bias, dropout=dropout, **kwargs)
    return GatedFFN(mlp_dim, variant=mlp, use_bias=use_bias, dropout=dropout, **kwargs)


@keras.saving.register_keras_serializable(package="glu_zoo")
class TransformerEncoderBlock(keras.layers.Layer):
    """Pre-norm Transformer encoder block, (batch, tokens, hidden_dim) → same shape:

        x ← x + MHA(LN(x), LN(x), attention_mask)
        x ← x + MLP(LN(x))

    MHA is `keras.layers.MultiHeadAttention` with `num_heads` heads of width
    hidden_dim / num_heads and no attention dropout (so Keras runs it through
    `ops.dot_product_attention`). The MLP is `FFN(mlp_dim, activation=mlp)`
    for an FFN activation (gelu: the ViT MLP) or `GatedFFN(mlp_dim,
    variant=mlp)` for a GLU variant (arXiv 2002.05202), with `dropout` on its
    hidden units. Sub-layers, in order: `attention_norm`, `attention`,
    `mlp_norm`, `mlp`; both LayerNorms have epsilon `epsilon`.

    `attention_mask` (boolean, True = may attend) is (batch, tokens, tokens),
    query by key, or (batch, tokens) for the keys alone (padding: every query
    sees the same keys). A Keras mask of the inputs, if any, masks the keys
    the same way.

    Args:
        hidden_dim: token width; divisible by `num_heads`.
        num_heads: attention heads.
        mlp_dim: hidden width of the MLP.
        mlp: an FFN activation or a GatedFFN variant (see `glu_zoo.layers`).
        dropout: rate in [0, 1) on the MLP's hidden units.
        use_bias: biases in the attention projections and the MLP.
        epsilon: of both LayerNorms.

        block = TransformerEncoderBlock(64, num_heads=4, mlp_dim=128, mlp="swiglu")
        y = block(np.ones((2, 17, 64), "float32"), attention_mask=np.ones((2, 17), bool))
        y.shape  # (2, 17, 64)
    """

    def __init__(self, hidden_dim, num_heads, mlp_dim, mlp="gelu", dropout=0.0, use_bias=True, epsilon=1e-6,
                 **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        check_heads(hidden_dim, num_heads, owner)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.mlp_dim = check_positive_int("mlp_dim", mlp_dim, owner)
        self.mlp = check_mlp(mlp, owner)
        self.dropout = check_dropout(dropout, owner)
        self.use_bias = check_bool("use_bias", use_bias, owner)
        self.epsilon = check_number("epsilon", epsilon, owner, low=0.0)
        self.supports_masking = True
        # Created here, in this order (the order fixes the unseeded initializers).
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.epsilon, dtype=self.dtype_policy, name="attention_norm")
        self.attention = keras.layers.MultiHeadAttention(
            num_heads, key_dim=hidden_dim // num_heads, use_bias=use_bias, dtype=self.dtype_policy,
            name="attention")
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=self.epsilon, dtype=self.dtype_policy, name="mlp_norm")
        self.mlp_layer = mlp_layer(mlp, mlp_dim, self.dropout, use_bias, dtype=self.dtype_policy, name="mlp")

    def _check_shape(self, shape):
        if len(shape) != 3 or shape[-1] != self.hidden_dim:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': `inputs` must have shape "
                f"(batch, tokens, {self.hidden_dim}); got shape {tuple(shape)}."
            )

    def build(self, input_shape):
        self._check_shape(input_shape)
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_layer.build(input_shape)

    def _attention_mask(self, attention_mask, mask, tokens):
        masks = []
        for m in (attention_mask, mask):
            if m is None:
                continue
            m = ops.cast(m, "bool")
            if len(m.shape) == 2:  # keys: (batch, S) → (batch, T, S)
                m = ops.logical_and(m[:, None, :], ops.ones_like(m)[:, :, None])
            elif len(m.shape) != 3:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': `attention_mask` must have shape "
                    f"(batch, {tokens}) or (batch, {tokens}, {tokens}); got shape {tuple(m.shape)}."
                )
            masks.append(m)
        if not masks:
            return None
        return masks[0] if len(masks) == 1 else ops.logical_and(masks[0], masks[1])

    def call(self, inputs, attention_mask=None, mask=None, training=None):
        self._check_shape(inputs.shape)
        check_floating(inputs.dtype, f"{type(self).__name__} '{self.name}'")
        attention_mask = self._attention_mask(attention_mask, mask, inputs.shape[1])
        h = self.attention_norm(inputs)
        x = inputs + self.attention(h, h, attention_mask=attention_mask, training=training)
        return x + self.mlp_layer(self.mlp_norm(x), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "mlp": self.mlp,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="glu_zoo")
class T5Block(keras.layers.Layer):
    """A T5 layer (Raffel et al. 2019, arXiv 1910.10683) with any FFN or GLU
    variant as its MLP (Shazeer 2020, arXiv 2002.05202), (batch, T, d) → same:

        x ← x + SelfAttention(RMSNorm(x), bias = position_bias, mask)
        x ← x + CrossAttention(RMSNorm(x), encoder_outputs)      (decoder only)
        x ← x + FFN(RMSNorm(x))

    Pre-norm RMSNorm (scale only), no biases anywhere, attention logits not
    scaled (scale 1), dropout on each sub-layer's output (and, in the FFN, on
    its hidden units). The block that owns the stack's `RelativePositionBias`
    (T5's first block; `relative_position_bias=True`) computes the bias and
    returns it, for the other blocks of the stack to share. Sub-layers:
    `self_attention_norm`, `self_attention`, [`relative_position_bias`],
    [`cross_attention_norm`, `cross_attention`], `ffn_norm`, `ffn`: the order
    and the weights of transformers' T5 layers (q, k, v, o; wi or wi_0/wi_1,
    wo; layer_norm).

    `call(x, position_bias=None, padding_mask=None, encoder_outputs=None,
    encoder_padding_mask=None, cache=None, cache_update_index=None,
    training=None)` → (x, position_bias), or (x, position_bias, cache) with a
    cache. `padding_mask` (batch, T) marks the real tokens of x (for the keys;
    with a cache, (batch, max_length) over the cache); `causal` blocks attend
    to keys at or before each query only. With `cache` (batch, 2, max_length,
    heads, key_dim) the self-attention keys/values of x are written at
    cache_update_index and x's tokens sit at positions cache_update_index + i.

    Args:
        hidden_dim: token width d.
        num_heads: attention heads.
        key_dim: width of each head (T5: 64; heads·key_dim need not be d).
        mlp: an FFN activation or a GatedFFN variant.
        mlp_dim: hidden width of the MLP (d_ff).
        causal: causal self-attention (decoder stacks).
        cross_attention: add the attention to `encoder_outputs`.
        relative_position_bias: own the stack's bias table.
        num_buckets, max_distance: of T5's relative position buckets.
        dropout: rate in [0, 1).
        epsilon: of the RMSNorms.

        block = T5Block(64, 4, 16, mlp="geglu_tanh", mlp_dim=128, relative_position_bias=True)
        y, bias = block(np.ones((2, 9, 64), "float32"), padding_mask=np.ones((2, 9), bool))
        y.shape, bias.shape  # (2, 9, 64), (1, 4, 9, 9)
    """

    def __init__(self, hidden_dim, num_heads, key_dim, mlp="relu", mlp_dim=2048, causal=False, cross_attention=False,
                 relative_position_bias=False, num_buckets=32, max_distance=128, dropout=0.0, epsilon=1e-6,
                 **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim, owner)
        self.num_heads = check_positive_int("num_heads", num_heads, owner)
        self.key_dim = check_positive_int("key_dim", key_dim, owner)
        self.mlp = check_mlp(mlp, owner)
        self.mlp_dim = check_positive_int("mlp_dim", mlp_dim, owner)
        self.causal = check_bool("causal", causal, owner)
        self.cross_attention_enabled = check_bool("cross_attention", cross_attention, owner)
        self.has_relative_position_bias = check_bool("relative_position_bias", relative_position_bias, owner)
        self.num_buckets = check_positive_int("num_buckets", num_buckets, owner)
        self.max_distance = check_positive_int("max_distance", max_distance, owner)
        self.dropout = check_dropout(dropout, owner)
        self.epsilon = check_number("epsilon", epsilon, owner, low=0.0)
        policy = self.dtype_policy
        init = keras.initializers.RandomNormal(stddev=(hidden_dim * key_dim) ** -0.5)

        def norm(name):
            return keras.layers.RMSNormalization(epsilon=self.epsilon, dtype=policy, name=name)

        def attention(name):
            return MultiHeadAttention(num_heads, key_dim, use_bias=False, scale=1.0, kernel_initializer=init,
                                      dtype=policy, name=name)

        self.self_attention_norm = norm("self_attention_norm")
        self.self_attention = attention("self_attention")
        self.relative_position_bias = None
        if self.has_relative_position_bias:
            self.relative_position_bias = RelativePositionBias(
                num_heads, num_buckets, max_distance, bidirectional=not self.causal, dtype=policy,
                name="relative_position_bias")
        if self.cross_attention_enabled:
            self.cross_attention_norm = norm("cross_attention_norm")
            self.cross_attention = attention("cross_attention")
        self.ffn_norm = norm("ffn_norm")
        self.ffn = mlp_layer(mlp, mlp_dim, self.dropout, use_bias=False, dtype=policy, name="ffn")
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)

    def _check(self, name, shape, width):
        if len(shape) != 3 or shape[-1] != width:
            raise ValueError(f"{type(self).__name__} '{self.name}': `{name}` must have shape (batch, length, "
                             f"{width}); got shape {tuple(shape)}.")

    def build(self, x_shape, encoder_outputs_shape=None):
        input_shape = x_shape
        self._check("inputs", input_shape, self.hidden_dim)
        self.self_attention_norm.build(input_shape)
        self.self_attention.build(input_shape)
        if self.relative_position_bias is not None:
            self.relative_position_bias.build()
        if self.cross_attention_enabled:
            self.cross_attention_norm.build(input_shape)
            self.cross_attention.build(input_shape, encoder_outputs_shape or input_shape)
        self.ffn_norm.build(input_shape)
        self.ffn.build(input_shape)

    def call(self, x, position_bias=None, padding_mask=None, encoder_outputs=None, encoder_padding_mask=None,
             cache=None, cache_update_index=None, training=None):
        self._check("inputs", x.shape, self.hidden_dim)
        check_floating(x.dtype, f"{type(self).__name__} '{self.name}'")
        length = ops.shape(x)[1]
        offset = 0 if cache_update_index is None else cache_update_index
        key_length = length if cache is None else ops.shape(cache)[2]
        if position_bias is None:
            if self.relative_position_bias is None:
                raise ValueError(f"{type(self).__name__} '{self.name}': `position_bias` is needed by a block "
                                 f"without its own relative_position_bias.")
            position_bias = self.relative_position_bias(length, key_length, query_offset=offset)
        mask = None
        if padding_mask is not None:
            mask = ops.cast(padding_mask, "bool")[:, None, None, :]  # keys
        if self.causal:
            queries = ops.arange(length, dtype="int32")[:, None] + ops.cast(offset, "int32")
            keys = ops.arange(key_length, dtype="int32")[None, :]
            causal = (keys <= queries)[None, None]
            mask = causal if mask is None else ops.logical_and(mask, causal)
        h = self.self_attention_norm(x)
        if cache is None:
            h = self.self_attention(h, bias=position_bias, mask=mask, training=training)
        else:
            h, cache = self.self_attention(h, bias=position_bias, mask=mask, cache=cache,
                                           cache_update_index=cache_update_index, training=training)
        x = x + self.dropout_layer(h, training=training)
        if self.cross_attention_enabled:
            if encoder_outputs is None:
                raise ValueError(f"{type(self).__name__} '{self.name}': a cross-attention block needs "
                                 f"`encoder_outputs`.")
            cross_mask = None if encoder_padding_mask is None else ops.cast(encoder_padding_mask, "bool")
            h = self.cross_attention(self.cross_attention_norm(x), key_value=encoder_outputs, mask=cross_mask,
                                     training=training)
            x = x + self.dropout_layer(h, training=training)
        x = x + self.dropout_layer(self.ffn(self.ffn_norm(x), training=training), training=training)
        return (x, position_bias) if cache is None else (x, position_bias, cache)

    def compute_output_spec(self, x, position_bias=None, padding_mask=None, encoder_outputs=None,
                            encoder_padding_mask=None, cache=None, cache_update_index=None, training=None):
        out = keras.KerasTensor(x.shape, dtype=self.compute_dtype)
        key_length = x.shape[1] if cache is None else cache.shape[2]
        bias = keras.KerasTensor((1, self.num_heads, x.shape[1], key_length), dtype=self.compute_dtype)
        if position_bias is not None:
            bias = keras.KerasTensor(position_bias.shape, dtype=position_bias.dtype)
        if cache is None:
            return out, bias
        return out, bias, keras.KerasTensor(cache.shape, dtype=cache.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "mlp": self.mlp,
            "mlp_dim": self.mlp_dim,
            "causal": self.causal,
            "cross_attention": self.cross_attention_enabled,
            "relative_position_bias": self.has_relative_position_bias,
            "num_buckets": self.num_buckets,
            "max_distance": self.max_distance,
            "dropout": self.dropout,
            "epsilon": self.epsilon,
        }
