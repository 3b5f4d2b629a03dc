"""The Activator gating unit (Abdullah et al. 2024, arXiv 2405.15953), as in
the authors' official PyTorch code, and PyTorch's default Linear/Conv2d init."""

import keras
from keras import ops

from glu_zoo import activations
from glu_zoo.layers.checks import check_bool, check_floating, check_positive_int, fresh

__all__ = ["ActivatorGatingUnit", "torch_linear_init"]


def torch_linear_init():
    """PyTorch's default nn.Linear / nn.Conv2d kernel init, U(±1/√fan_in)."""
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


@keras.saving.register_keras_serializable(package="glu_zoo")
class ActivatorGatingUnit(keras.layers.Layer):
    """Activator gating unit, out = (LN'(GELU(x·W1 + b1)) ⊗ LN'(x·W2 + b2))·W3 + b3.

    LN' is one LayerNorm over `ffn_dim` (epsilon 1e-5, sub-layer `norm`) whose
    weights are shared by both branches; GELU is exact. W1 and W2 are one
    fused `kernel_in` (hidden_dim, 2·ffn_dim): columns [:ffn_dim] are W1 (the
    GELU branch), [ffn_dim:] are W2; `bias_in` (2·ffn_dim,); `kernel_out`
    (ffn_dim, hidden_dim), `bias_out` (hidden_dim,). Kernels start as
    PyTorch's U(±1/√fan_in), biases at zero. Acts on channels only.

    `token_mixing=True` is OUR extension (not in the paper or its code): a
    gMLP-style spatial gate on the v branch after LN',
    v[b, i] ← v[b, i] ⊗ (Σ_j W_t[i, j]·v[b, j] + b_t[i]), with `token_kernel`
    W_t (N, N) initialised to zeros and `token_bias` b_t (N,) to ones, so the
    gate is 1 and the unit is the paper's at initialisation (replacing v by
    W_t·v + b_t instead would make v ≡ 1 there). Needs (batch, N, hidden_dim).

    Args:
        hidden_dim: input and output width (d_model).
        ffn_dim: width of the gated branches (d_ffn).
        token_mixing: our spatial gate on v; off by default.

        gate = ActivatorGatingUnit(256, 512)
        y = gate(np.ones((2, 64, 256), "float32"))
        y.shape  # (2, 64, 256)
    """

    def __init__(self, hidden_dim, ffn_dim, token_mixing=False, kernel_initializer=None,
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim, owner)
        self.ffn_dim = check_positive_int("ffn_dim", ffn_dim, owner)
        self.token_mixing = check_bool("token_mixing", token_mixing, owner)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or torch_linear_init())
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy,
                                                    name="norm")
        self.num_tokens = None

    def _check_shape(self, shape):
        name = type(self).__name__
        if len(shape) < 2 or shape[-1] != self.hidden_dim:
            raise ValueError(
                f"{name} '{self.name}': `inputs` must have shape (..., {self.hidden_dim}); "
                f"got shape {tuple(shape)}."
            )
        if self.token_mixing and (len(shape) != 3 or shape[1] is None
                                  or (self.num_tokens is not None and shape[1] != self.num_tokens)):
            expected = self.num_tokens or "tokens"
            raise ValueError(
                f"{name} '{self.name}': with token_mixing=True `inputs` must have shape "
                f"(batch, {expected}, {self.hidden_dim}); got shape {tuple(shape)}."
            )

    def build(self, input_shape):
        self._check_shape(input_shape)
        self.kernel_in = self.add_weight(
            name="kernel_in", shape=(self.hidden_dim, 2 * self.ffn_dim),
            initializer=fresh(self.kernel_initializer),
        )
        self.bias_in = self.add_weight(
            name="bias_in", shape=(2 * self.ffn_dim,), initializer=fresh(self.bias_initializer)
        )
        if not self.norm.built:
            self.norm.build((*input_shape[:-1], self.ffn_dim))
        if self.token_mixing:
            self.num_tokens = int(input_shape[1])
            self.token_kernel = self.add_weight(
                name="token_kernel", shape=(self.num_tokens, self.num_tokens), initializer="zeros"
            )
            self.token_bias = self.add_weight(
                name="token_bias", shape=(self.num_tokens,), initializer="ones"
            )
        self.kernel_out = self.add_weight(
            name="kernel_out", shape=(self.ffn_dim, self.hidden_dim),
            initializer=fresh(self.kernel_initializer),
        )
        self.bias_out = self.add_weight(
            name="bias_out", shape=(self.hidden_dim,), initializer=fresh(self.bias_initializer)
        )

    def call(self, inputs):
        self._check_shape(inputs.shape)
        check_floating(inputs.dtype, f"{type(self).__name__} '{self.name}'")
        h = ops.matmul(inputs, self.kernel_in) + self.bias_in
        # ops.split, not slicing: XLA on CPU fuses it (see GatedFFN).
        a, b = ops.split(h, 2, axis=-1)
        u = self.norm(activations.gelu(a))
        v = self.norm(b)
        if self.token_mixing:
            v = v * (ops.einsum("ij,bjf->bif", self.token_kernel, v) + self.token_bias[:, None])
        return ops.matmul(u * v, self.kernel_out) + self.bias_out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "ffn_dim": self.ffn_dim,
            "token_mixing": self.token_mixing,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
