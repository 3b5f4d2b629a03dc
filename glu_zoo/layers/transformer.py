"""The pre-norm Transformer encoder block, with any FFN or GLU variant as its MLP.

Vaswani et al. 2017, "Attention Is All You Need" (arXiv 1706.03762), with the
layer norm before each sub-layer as in ViT (Dosovitskiy et al. 2020,
arXiv 2010.11929; Xiong et al. 2020, arXiv 2002.04745).
"""

import keras
from keras import ops

from glu_zoo.layers.checks import check_bool, check_dropout, check_floating, check_number, check_positive_int
from glu_zoo.layers.ffn import FFN, FFN_ACTIVATIONS, GATED_VARIANTS, GatedFFN

__all__ = ["TransformerEncoderBlock", "MLP_CHOICES", "check_heads", "check_mlp", "mlp_layer"]

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
