"""Activator (Abdullah et al. 2024, arXiv 2405.15953): a vision model whose
only token interaction is the final mean, built from GELU-gated units.

Reproduces the official PyTorch code (Abdullah-88/Activator, activator.py and
activator_only_GEGLU.py): conv patches, no class token, no position embedding,
blocks of x + ActGU(LN(x)) and x + FFN(LN(x)) with ONE LayerNorm per block,
mean over tokens, linear head. `token_mixing=True` is an extension of ours.
"""

import keras

from glu_zoo.layers.activator import ActivatorGatingUnit, torch_linear_init
from glu_zoo.layers.checks import check_bool, check_choice, check_dropout, check_positive_int
from glu_zoo.layers.embedding import PatchEmbedding, check_image_shape, check_patch_size
from glu_zoo.layers.ffn import FFN
from glu_zoo.models.base import ImageClassifier

__all__ = ["ActivatorViT", "ARCHITECTURES", "VARIANTS"]

VARIANTS = ("full", "reduced")


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
        check_choice("variant", variant, VARIANTS, owner)
        dropout = check_dropout(dropout, owner)
        if variant == "reduced" and dropout != 0.0:
            raise ValueError(
                f"{owner}: `dropout` must be 0 for variant='reduced' (it has no dropout); "
                f"got dropout={dropout!r}."
            )
        check_bool("token_mixing", token_mixing, owner)
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
        self.input_spec = None  # the images are checked by check_images_shape (see ImageClassifier)

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
            **super().get_config(),
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
    # The paper's CIFAR-10 set-up (arXiv 2405.15953): 64 tokens of width 256.
    "activator_vit_tiny": (ActivatorViT, dict(image_shape=(32, 32, 3), patch_size=4, num_classes=10,
                                              hidden_dim=256, ffn_dim=512, num_layers=4,
                                              variant="full", dropout=0.5, token_mixing=False)),
}
