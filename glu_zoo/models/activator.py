"""Activator (Abdullah et al. 2024, arXiv 2405.15953): a vision model whose
only token interaction is the final mean, built from GELU-gated units.

Reproduces the official PyTorch code (Abdullah-88/Activator, activator.py and
activator_only_GEGLU.py): conv patches, no class token, no position embedding,
blocks of x + ActGU(LN(x)) and x + FFN(LN(x)) with ONE LayerNorm per block,
mean over tokens, linear head. `token_mixing=True` is an extension of ours.
"""

import keras
from keras import ops

from glu_zoo import activations
from glu_zoo.layers import FFN
from glu_zoo.layers.embedding import PatchEmbedding, check_image_shape, check_patch_size
from glu_zoo.models.vit import ImageClassifier, check_dropout, check_positive_int

__all__ = ["ActivatorGatingUnit", "ActivatorViT", "ARCHITECTURES", "VARIANTS", "torch_linear_init"]

VARIANTS = ("full", "reduced")


def torch_linear_init():
    """PyTorch's default nn.Linear / nn.Conv2d kernel init, U(±1/√fan_in)."""
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def _fresh(initializer):
    """A new instance: an unseeded Keras initializer reused for two weights of
    the same size would give them the same values."""
    return initializer.__class__.from_config(initializer.get_config())


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
        check_positive_int("hidden_dim", hidden_dim, owner)
        check_positive_int("ffn_dim", ffn_dim, owner)
        if not isinstance(token_mixing, bool):
            raise ValueError(f"{owner}: `token_mixing` must be True or False; got {token_mixing!r}.")
        self.hidden_dim = hidden_dim
        self.ffn_dim = ffn_dim
        self.token_mixing = token_mixing
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
            initializer=_fresh(self.kernel_initializer),
        )
        self.bias_in = self.add_weight(
            name="bias_in", shape=(2 * self.ffn_dim,), initializer=_fresh(self.bias_initializer)
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
            initializer=_fresh(self.kernel_initializer),
        )
        self.bias_out = self.add_weight(
            name="bias_out", shape=(self.hidden_dim,), initializer=_fresh(self.bias_initializer)
        )

    def call(self, inputs):
        self._check_shape(inputs.shape)
        if not keras.backend.is_float_dtype(inputs.dtype):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': `inputs` must be floating point; "
                f"got dtype {keras.backend.standardize_dtype(inputs.dtype)}."
            )
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


@keras.saving.register_keras_serializable(package="glu_zoo")
class ActivatorViT(ImageClassifier):
    """Activator image classifier (the paper's model; official code reproduced).

    x₀ = PatchEmbed(image) (conv, kernel = stride = patch; no class token, no
    position embedding), then `num_layers` blocks, each with ONE LayerNorm
    (eps 1e-5) used as the pre-norm of both sub-layers:
    x ← x + ActGU(LN(x)); x ← x + FFN(LN(x)) (variant "full" only), with
    FFN = Linear(ffn_dim) → GELU → Dropout → Linear(hidden_dim) → Dropout.
    Then the mean over tokens and a linear head (logits). Variant "reduced"
    (the paper's "only GEGLU") has no FFN and no dropout. Tokens meet only in
    the final mean, unless `token_mixing=True` (ours; see ActivatorGatingUnit).
    Kernels start as PyTorch's U(±1/√fan_in), biases at zero.

    Args:
        image_shape: (H, W, C), channels last.
        patch_size: side of the square patches; divides H and W.
        num_classes: width of the logits.
        hidden_dim, ffn_dim: d_model and d_ffn of the paper.
        num_layers: number of blocks.
        variant: "full" or "reduced".
        dropout: rate in [0, 1) in the FFN; must be 0 for "reduced".
        token_mixing: our token-mixing extension of the gating units.

        model = ActivatorViT(image_shape=(32, 32, 3), hidden_dim=256, ffn_dim=512)
        logits = model(np.ones((2, 32, 32, 3), "float32"))
        logits.shape  # (2, 10)
    """

    def __init__(
        self,
        image_shape=(8, 8, 1),
        patch_size=4,
        num_classes=10,
        hidden_dim=64,
        ffn_dim=128,
        num_layers=4,
        variant="full",
        dropout=0.0,
        token_mixing=False,
        **kwargs,
    ):
        owner = "ActivatorViT"
        image_shape = check_image_shape(image_shape, owner)
        check_patch_size(patch_size, image_shape, owner)
        for arg, value in [("num_classes", num_classes), ("hidden_dim", hidden_dim),
                           ("ffn_dim", ffn_dim), ("num_layers", num_layers)]:
            check_positive_int(arg, value, owner)
        if variant not in VARIANTS:
            raise ValueError(
                f"{owner}: unknown `variant` {variant!r}; allowed: {', '.join(VARIANTS)}."
            )
        dropout = check_dropout(dropout, owner)
        if variant == "reduced" and dropout != 0.0:
            raise ValueError(
                f"{owner}: `dropout` must be 0 for variant='reduced' (it has no dropout); "
                f"got dropout={dropout!r}."
            )
        if not isinstance(token_mixing, bool):
            raise ValueError(f"{owner}: `token_mixing` must be True or False; got {token_mixing!r}.")
        kwargs.setdefault("name", "activator_vit")

        # === Layers ===
        patch_embedding = PatchEmbedding(patch_size, hidden_dim, image_shape,
                                         kernel_initializer=torch_linear_init(),
                                         name="patch_embedding")
        blocks = []
        for i in range(num_layers):
            norm = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block_{i}_norm")
            gating = ActivatorGatingUnit(hidden_dim, ffn_dim, token_mixing=token_mixing,
                                         name=f"block_{i}_gating")
            ffn = ffn_dropout = None
            if variant == "full":
                ffn = FFN(ffn_dim, activation="gelu", use_bias=True, dropout=dropout,
                          kernel_initializer=torch_linear_init(), name=f"block_{i}_ffn")
                ffn_dropout = keras.layers.Dropout(dropout, name=f"block_{i}_ffn_dropout")
            blocks.append((norm, gating, ffn, ffn_dropout))
        pool = keras.layers.GlobalAveragePooling1D(name="mean_pool")
        head = keras.layers.Dense(num_classes, kernel_initializer=torch_linear_init(), name="head")

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        x = patch_embedding(images)
        for norm, gating, ffn, ffn_dropout in blocks:
            x = x + gating(norm(x))
            if ffn is not None:
                x = x + ffn_dropout(ffn(norm(x)))  # the same LayerNorm instance
        logits = head(pool(x))
        super().__init__(inputs=images, outputs=logits, **kwargs)
        self.input_spec = None  # PatchEmbedding checks the images (see ImageClassifier)

        # === Config ===
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.ffn_dim = ffn_dim
        self.num_layers = num_layers
        self.variant = variant
        self.dropout = dropout
        self.token_mixing = token_mixing

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_shape": self.image_shape,
            "patch_size": self.patch_size,
            "num_classes": self.num_classes,
            "hidden_dim": self.hidden_dim,
            "ffn_dim": self.ffn_dim,
            "num_layers": self.num_layers,
            "variant": self.variant,
            "dropout": self.dropout,
            "token_mixing": self.token_mixing,
        }


_DIGITS = dict(image_shape=(8, 8, 1), patch_size=4, num_classes=10, hidden_dim=64, ffn_dim=128,
               num_layers=4, variant="full", dropout=0.0, token_mixing=False)

ARCHITECTURES = {
    # The digits recipes' sizes: 8×8 digits, 4×4 patches (4 tokens).
    "activator_vit_digits": (ActivatorViT, dict(_DIGITS)),
    "activator_vit_reduced_digits": (ActivatorViT, dict(_DIGITS, variant="reduced")),
    # Ours: token mixing in the gating units, 2×2 patches (16 tokens).
    "activator_vit_mixing_digits": (ActivatorViT, dict(_DIGITS, patch_size=2, token_mixing=True)),
    # The paper's CIFAR-10 set-up (REFERENCE §3): 64 tokens of width 256.
    "activator_vit_tiny": (ActivatorViT, dict(image_shape=(32, 32, 3), patch_size=4, num_classes=10,
                                              hidden_dim=256, ffn_dim=512, num_layers=4,
                                              variant="full", dropout=0.5, token_mixing=False)),
}
