"""Position-wise feed-forward layers: the two-matrix `FFN` and the GLU `GatedFFN`.

Shazeer 2020, "GLU Variants Improve Transformer" (arXiv 2002.05202);
expanded gates from Huang 2024 (arXiv 2405.20768); GoLU from arXiv 2502.03654.
"""

import keras
from keras import ops

from glu_zoo import activations
from glu_zoo.layers.checks import (
    check_bool,
    check_choice,
    check_dropout,
    check_floating,
    check_positive_int,
    fresh,
)

__all__ = ["FFN", "GatedFFN", "FFN_ACTIVATIONS", "GATED_VARIANTS"]

# name → gate kind of `activations.expanded_gate`, for the expanded ones.
_EXPANDED_ACTIVATIONS = {"xatlu": "arctan", "xgelu": "gaussian", "xsilu": "sigmoid"}
_EXPANDED_VARIANTS = {"xatglu": "arctan", "xgeglu": "gaussian", "xswiglu": "sigmoid"}

_ACTIVATIONS = {
    "relu": ops.relu,
    "gelu": activations.gelu,  # exact x·Φ(x)
    "gelu_tanh": lambda x: activations.gelu(x, approximate=True),  # ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
    "swish": ops.silu,  # Swish₁(x) = x·σ(x)
    "golu": activations.golu,
    "atlu": activations.atlu,
}
# The gate act(a) of act(a) ⊗ b, for the fixed (non-expanded) variants.
_GATES = {
    "glu": ops.sigmoid,
    "bilinear": lambda a: a,
    "reglu": ops.relu,
    "geglu": activations.gelu,
    "geglu_tanh": lambda a: activations.gelu(a, approximate=True),  # T5 v1.1's "gated-gelu"
    "swiglu": ops.silu,
    "goglu": activations.golu,
}
FFN_ACTIVATIONS = tuple(_ACTIVATIONS) + tuple(_EXPANDED_ACTIVATIONS)
GATED_VARIANTS = tuple(_GATES) + tuple(_EXPANDED_VARIANTS)


class _FeedForward(keras.layers.Layer):
    """What FFN and GatedFFN share: validation, weights, dropout and `call`.

    Subclasses set `_in_width` (columns of `kernel_in`), `_gate_kind` (an
    expanded gate kind or None) and `_hidden(h)`, which maps x·kernel_in to
    the hidden activations.
    """

    def __init__(
        self,
        hidden_dim,
        output_dim=None,
        use_bias=False,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim, owner)
        self.output_dim = None if output_dim is None else check_positive_int("output_dim", output_dim, owner)
        self.use_bias = check_bool("use_bias", use_bias, owner)
        self.dropout = check_dropout(dropout, owner)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.supports_masking = True
        self.input_dim = None

    def _check_shape(self, shape):
        name = type(self).__name__
        if len(shape) < 2:
            raise ValueError(
                f"{name} '{self.name}': `inputs` must have rank >= 2 (..., features); "
                f"got shape {tuple(shape)}."
            )
        if self.input_dim is not None and shape[-1] != self.input_dim:
            raise ValueError(
                f"{name} '{self.name}' was built for inputs with last dimension "
                f"{self.input_dim}; got `inputs` of shape {tuple(shape)}."
            )

    def build(self, input_shape):
        self._check_shape(input_shape)
        if input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': the last dimension of `inputs` "
                f"must be known; got shape {tuple(input_shape)}."
            )
        self.input_dim = int(input_shape[-1])
        out_dim = self.output_dim or self.input_dim
        self.kernel_in = self.add_weight(
            name="kernel_in",
            shape=(self.input_dim, self._in_width),
            initializer=fresh(self.kernel_initializer),
        )
        if self.use_bias:
            self.bias_in = self.add_weight(
                name="bias_in", shape=(self._in_width,), initializer=fresh(self.bias_initializer)
            )
        if self._gate_kind is not None:
            self.alpha = self.add_weight(name="alpha", shape=(), initializer="zeros")
        self.kernel_out = self.add_weight(
            name="kernel_out",
            shape=(self.hidden_dim, out_dim),
            initializer=fresh(self.kernel_initializer),
        )
        if self.use_bias:
            self.bias_out = self.add_weight(
                name="bias_out", shape=(out_dim,), initializer=fresh(self.bias_initializer)
            )

    def call(self, inputs, training=None):
        self._check_shape(inputs.shape)
        check_floating(inputs.dtype, f"{type(self).__name__} '{self.name}'")
        h = ops.matmul(inputs, self.kernel_in)
        if self.use_bias:
            h = h + self.bias_in
        h = self.dropout_layer(self._hidden(h), training=training)
        y = ops.matmul(h, self.kernel_out)
        if self.use_bias:
            y = y + self.bias_out
        return y

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim or input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "output_dim": self.output_dim,
            "use_bias": self.use_bias,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


@keras.saving.register_keras_serializable(package="glu_zoo")
class FFN(_FeedForward):
    """Two-matrix feed-forward layer, FFN(x) = act(x·W1 + b1)·W2 + b2.

    Shazeer 2020's baselines FFN_ReLU, FFN_GELU, FFN_Swish, plus GoLU, ATLU and
    the expanded xATLU, xGELU, xSiLU (one trainable scalar `alpha`, init 0).
    Bias-free by default, as in the paper; dropout acts on the hidden units.
    Weights: `kernel_in` (d, hidden_dim), `kernel_out` (hidden_dim, output_dim
    or d), `bias_in`/`bias_out` with `use_bias`, `alpha` for expanded ones.

    Args:
        hidden_dim: width of the hidden layer (d_ff).
        activation: one of relu, gelu (exact), gelu_tanh (the tanh
            approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as in BERT,
            big_vision's ViT and TRecViT), swish, golu, atlu, xatlu, xgelu,
            xsilu.
        output_dim: output width; default the input width.
        use_bias: add biases to both projections.
        dropout: rate in [0, 1) on the hidden activations.

        ffn = FFN(3072, activation="gelu")
        y = ffn(np.ones((2, 16, 768), "float32"))
        y.shape  # (2, 16, 768)
    """

    def __init__(self, hidden_dim, activation="relu", output_dim=None, use_bias=False,
                 dropout=0.0, **kwargs):
        check_choice("activation", activation, FFN_ACTIVATIONS, "FFN")
        super().__init__(hidden_dim, output_dim=output_dim, use_bias=use_bias,
                         dropout=dropout, **kwargs)
        self.activation = activation
        self._in_width = hidden_dim
        self._gate_kind = _EXPANDED_ACTIVATIONS.get(activation)

    def _hidden(self, h):
        if self._gate_kind is None:
            return _ACTIVATIONS[self.activation](h)
        return activations.expanded_activation(h, self.alpha, self._gate_kind)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


@keras.saving.register_keras_serializable(package="glu_zoo")
class GatedFFN(_FeedForward):
    """GLU feed-forward layer, FFN_X(x) = (act(x·W) ⊗ x·V)·W2 (Shazeer 2020).

    Variants: glu σ(a)⊗b, bilinear a⊗b, reglu max(0, a)⊗b, geglu GELU(a)⊗b
    (exact GELU), geglu_tanh (GELU in its tanh form, T5 v1.1's "gated-gelu"),
    swiglu Swish₁(a)⊗b, goglu GoLU(a)⊗b, and the first-order
    expanded xatglu, xgeglu, xswiglu g(a)·(1 + 2α) − α ⊗ b (Huang 2024), with
    a = x·W, b = x·V. W and V are one fused `kernel_in` of shape
    (d, 2·hidden_dim): columns [:hidden_dim] are W (the activated branch),
    [hidden_dim:] are V (the linear branch), so the projection is one matmul.
    `kernel_out` is (hidden_dim, output_dim or d); `alpha` (scalar, init 0)
    for the expanded variants. Bias-free by default; dropout acts on the gated
    hidden units. Use `GatedFFN.matched_hidden_dim(d_ff)` for the width that
    matches a two-matrix FFN's parameter count (2048 for 3072).

        ffn = GatedFFN(GatedFFN.matched_hidden_dim(3072), variant="swiglu")
        y = ffn(np.ones((2, 16, 768), "float32"))
        y.shape  # (2, 16, 768)
    """

    def __init__(self, hidden_dim, variant="swiglu", output_dim=None, use_bias=False,
                 dropout=0.0, **kwargs):
        check_choice("variant", variant, GATED_VARIANTS, "GatedFFN")
        super().__init__(hidden_dim, output_dim=output_dim, use_bias=use_bias,
                         dropout=dropout, **kwargs)
        self.variant = variant
        self._in_width = 2 * hidden_dim
        self._gate_kind = _EXPANDED_VARIANTS.get(variant)

    @staticmethod
    def matched_hidden_dim(d_ff):
        """The hidden width whose three matrices hold no more weights than a
        two-matrix FFN of width `d_ff`: ⌊2·d_ff/3⌋ (3072 → 2048)."""
        check_positive_int("d_ff", d_ff, "GatedFFN.matched_hidden_dim")
        return (2 * d_ff) // 3

    def _hidden(self, h):
        # ops.split, not slicing: XLA on CPU fuses the split into the gate
        # (slices made the JAX train step ~25% slower; docs/benchmarks.md).
        a, b = ops.split(h, 2, axis=-1)
        if self._gate_kind is None:
            return _GATES[self.variant](a) * b
        return activations.expanded_glu(a, b, self.alpha, self._gate_kind)

    def get_config(self):
        return {**super().get_config(), "variant": self.variant}
