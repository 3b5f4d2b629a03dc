"""Vision Transformer (Dosovitskiy et al. 2020, arXiv 2010.11929), with any
FFN or GLU variant of `glu_zoo.layers` as its MLP."""

import keras

from glu_zoo.layers.checks import check_choice, check_dropout, check_positive_int
from glu_zoo.layers.embedding import ClassToken, PatchEmbedding, PositionEmbedding, check_image_shape, check_patch_size
from glu_zoo.layers.ffn import GatedFFN
from glu_zoo.layers.transformer import TransformerEncoderBlock, check_heads, check_mlp
from glu_zoo.models.base import ImageClassifier

__all__ = ["ViT", "ARCHITECTURES", "POOLINGS"]

POOLINGS = ("cls", "mean")


@keras.saving.register_keras_serializable(package="glu_zoo")
class ViT(ImageClassifier):
    """Vision Transformer classifier, pre-norm, logits out.

    x₀ = [cls; PatchEmbed(image)] + E_pos (cls only with pooling "cls"),
    then `num_layers` pre-norm blocks x ← x + MHA(LN(x)), x ← x + MLP(LN(x))
    (`TransformerEncoderBlock`, named block_{i}), a final LN, the class token
    (or the mean of the tokens) and a Dense head. The MLP is
    `FFN(mlp_dim, activation=mlp)` if `mlp` is an FFN activation (gelu: the
    paper's MLP) or `GatedFFN(mlp_dim, variant=mlp)` if it is a GLU variant;
    biases on, `dropout` on its hidden units and after the position
    embedding. LayerNorm epsilon 1e-6.

    Args:
        image_shape: (H, W, C), channels last.
        patch_size: side of the square patches; divides H and W.
        num_classes: width of the logits.
        hidden_dim: token width; divisible by `num_heads`.
        num_layers, num_heads, mlp_dim: encoder depth, heads, MLP width.
        mlp: an FFN activation or a GatedFFN variant (see `glu_zoo.layers`).
        pooling: "cls" (class token) or "mean" (mean of the patch tokens).
        dropout: rate in [0, 1).

        model = ViT(image_shape=(8, 8, 1), patch_size=2, mlp="swiglu")
        logits = model(np.ones((2, 8, 8, 1), "float32"))
        logits.shape  # (2, 10)
    """

    def __init__(
        self,
        image_shape=(8, 8, 1),
        patch_size=2,
        num_classes=10,
        hidden_dim=64,
        num_layers=4,
        num_heads=4,
        mlp_dim=128,
        mlp="gelu",
        pooling="cls",
        dropout=0.0,
        **kwargs,
    ):
        owner = "ViT"
        image_shape = check_image_shape(image_shape, owner)
        check_patch_size(patch_size, image_shape, owner)
        for arg, value in [("num_classes", num_classes), ("num_layers", num_layers), ("mlp_dim", mlp_dim)]:
            check_positive_int(arg, value, owner)
        check_heads(hidden_dim, num_heads, owner)
        check_choice("pooling", pooling, POOLINGS, owner)
        dropout = check_dropout(dropout, owner)
        check_mlp(mlp, owner)
        kwargs.setdefault("name", "vit")

        # === Layers ===
        patch_embedding = PatchEmbedding(patch_size, hidden_dim, image_shape,
                                         name="patch_embedding")
        class_token = ClassToken(name="class_token") if pooling == "cls" else None
        position_embedding = PositionEmbedding(name="position_embedding")
        embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        blocks = [TransformerEncoderBlock(hidden_dim, num_heads, mlp_dim, mlp=mlp, dropout=dropout,
                                          name=f"block_{i}") for i in range(num_layers)]
        final_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")
        pool = (None if pooling == "cls"
                else keras.layers.GlobalAveragePooling1D(name="mean_pool"))
        head = keras.layers.Dense(num_classes, name="head")

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        x = patch_embedding(images)
        if class_token is not None:
            x = class_token(x)
        x = embedding_dropout(position_embedding(x))
        for block in blocks:
            x = block(x)
        x = final_norm(x)
        x = x[:, 0] if pool is None else pool(x)
        logits = head(x)
        super().__init__(inputs=images, outputs=logits, **kwargs)
        self.input_spec = None  # the images are checked by check_images_shape (see ImageClassifier)

        # === Config ===
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.mlp = mlp
        self.pooling = pooling
        self.dropout = dropout

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "patch_size": self.patch_size,
            "num_classes": self.num_classes,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "mlp": self.mlp,
            "pooling": self.pooling,
            "dropout": self.dropout,
        }


ARCHITECTURES = {
    # The digits recipe's size: 8×8 digits, 2×2 patches (16 tokens + cls).
    "vit_digits": (ViT, dict(image_shape=(8, 8, 1), patch_size=2, num_classes=10, hidden_dim=64,
                             num_layers=4, num_heads=4, mlp_dim=128, mlp="gelu", pooling="cls")),
    "vit_digits_swiglu": (ViT, dict(image_shape=(8, 8, 1), patch_size=2, num_classes=10,
                                    hidden_dim=64, num_layers=4, num_heads=4,
                                    mlp_dim=GatedFFN.matched_hidden_dim(128), mlp="swiglu",
                                    pooling="cls")),
    # ViT-Ti/16 and ViT-B/16 (DeiT / timm sizes), ImageNet-1k heads.
    "vit_tiny": (ViT, dict(image_shape=(224, 224, 3), patch_size=16, num_classes=1000,
                           hidden_dim=192, num_layers=12, num_heads=3, mlp_dim=768,
                           mlp="gelu", pooling="cls")),
    "vit_base": (ViT, dict(image_shape=(224, 224, 3), patch_size=16, num_classes=1000,
                           hidden_dim=768, num_layers=12, num_heads=12, mlp_dim=3072,
                           mlp="gelu", pooling="cls")),
}
