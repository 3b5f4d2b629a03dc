"""Vision Transformer (Dosovitskiy et al. 2020, arXiv 2010.11929), with any
FFN or GLU variant of `glu_zoo.layers` as its MLP."""

import keras

from glu_zoo.layers import FFN, FFN_ACTIVATIONS, GATED_VARIANTS, GatedFFN
from glu_zoo.layers.embedding import (
    ClassToken,
    PatchEmbedding,
    PositionEmbedding,
    check_image_shape,
    check_images_shape,
    check_patch_size,
)
from glu_zoo.models.base import ZooModel

__all__ = ["ViT", "ImageClassifier", "ARCHITECTURES", "POOLINGS"]

POOLINGS = ("cls", "mean")


def check_positive_int(name, value, owner):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}: `{name}` must be a positive integer; got {value!r}.")


def check_dropout(dropout, owner):
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"{owner}: `dropout` must be a number in [0, 1); got {dropout!r}.")
    return float(dropout)


def check_mlp(mlp, owner):
    if mlp not in FFN_ACTIVATIONS and mlp not in GATED_VARIANTS:
        raise ValueError(
            f"{owner}: unknown `mlp` {mlp!r}; allowed: an FFN activation "
            f"({', '.join(FFN_ACTIVATIONS)}) or a GatedFFN variant ({', '.join(GATED_VARIANTS)})."
        )


def mlp_layer(mlp, mlp_dim, dropout, name):
    """FFN(mlp_dim, activation=mlp) or GatedFFN(mlp_dim, variant=mlp), biases on."""
    if mlp in FFN_ACTIVATIONS:
        return FFN(mlp_dim, activation=mlp, use_bias=True, dropout=dropout, name=name)
    return GatedFFN(mlp_dim, variant=mlp, use_bias=True, dropout=dropout, name=name)


def encoder_blocks(num_layers, hidden_dim, num_heads, mlp, mlp_dim, dropout):
    """The layers of `num_layers` pre-norm Transformer blocks, per block
    (attention_norm, attention, mlp_norm, mlp), named block_{i}_*."""
    return [(
        keras.layers.LayerNormalization(epsilon=1e-6, name=f"block_{i}_attention_norm"),
        keras.layers.MultiHeadAttention(num_heads, key_dim=hidden_dim // num_heads, name=f"block_{i}_attention"),
        keras.layers.LayerNormalization(epsilon=1e-6, name=f"block_{i}_mlp_norm"),
        mlp_layer(mlp, mlp_dim, dropout, name=f"block_{i}_mlp"),
    ) for i in range(num_layers)]


def run_encoder(x, blocks, attention_mask=None):
    """x ← x + MHA(LN(x)), x ← x + MLP(LN(x)) through `encoder_blocks`."""
    for attention_norm, attention, mlp_norm, ffn in blocks:
        h = attention_norm(x)
        x = x + attention(h, h, attention_mask=attention_mask)
        x = x + ffn(mlp_norm(x))
    return x


class ImageClassifier(ZooModel):
    """What the image models share: the check of the images' shape.

    The shape is checked in one place, `PatchEmbedding`, so subclasses set
    `self.input_spec = None` after building the graph: Keras's own functional
    input check drops a trailing axis of size 1 from both shapes, so for
    C = 1 it lets a wrong channel count through and misreports the received
    shape. `fit`, `evaluate` and `predict` check array inputs before they
    start, because on JAX an error raised inside them, after Keras has moved
    the weights out of the variables, leaves the model without its weights
    (Keras 3.15). Subclasses set `self.image_shape`.
    """

    def _check_images(self, x):
        shape = getattr(x, "shape", None)
        if shape is None or isinstance(x, dict):
            return  # a data set, generator or dict: checked when traced
        # Exactly (batch, H, W, C): no squeezed channel axis either, since a
        # TF predict function traced for two ranks fails on both (Keras 3.15).
        check_images_shape(tuple(shape), self.image_shape, f"{type(self).__name__} '{self.name}'")

    def fit(self, x=None, *args, **kwargs):
        self._check_images(x)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._check_images(x)
        return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_images(x)
        return super().predict(x, *args, **kwargs)


@keras.saving.register_keras_serializable(package="glu_zoo")
class ViT(ImageClassifier):
    """Vision Transformer classifier, pre-norm, logits out.

    x₀ = [cls; PatchEmbed(image)] + E_pos (cls only with pooling "cls"),
    then `num_layers` blocks x ← x + MHA(LN(x)), x ← x + MLP(LN(x)), a final
    LN, the class token (or the mean of the tokens) and a Dense head.
    The MLP is `FFN(mlp_dim, activation=mlp)` if `mlp` is an FFN activation
    (gelu: the paper's MLP) or `GatedFFN(mlp_dim, variant=mlp)` if it is a
    GLU variant; biases on, `dropout` on its hidden units and after the
    position embedding. Attention has no dropout, so Keras runs it through
    `ops.dot_product_attention`. LayerNorm epsilon 1e-6.

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
        for arg, value in [("num_classes", num_classes), ("hidden_dim", hidden_dim),
                           ("num_layers", num_layers), ("num_heads", num_heads),
                           ("mlp_dim", mlp_dim)]:
            check_positive_int(arg, value, owner)
        if hidden_dim % num_heads:
            raise ValueError(
                f"ViT: `hidden_dim` must be divisible by `num_heads`; got hidden_dim="
                f"{hidden_dim} and num_heads={num_heads}."
            )
        if pooling not in POOLINGS:
            raise ValueError(f"ViT: unknown `pooling` {pooling!r}; allowed: {', '.join(POOLINGS)}.")
        dropout = check_dropout(dropout, owner)
        check_mlp(mlp, owner)
        kwargs.setdefault("name", "vit")

        # === Layers ===
        patch_embedding = PatchEmbedding(patch_size, hidden_dim, image_shape,
                                         name="patch_embedding")
        class_token = ClassToken(name="class_token") if pooling == "cls" else None
        position_embedding = PositionEmbedding(name="position_embedding")
        embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        blocks = encoder_blocks(num_layers, hidden_dim, num_heads, mlp, mlp_dim, dropout)
        final_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")
        pool = (None if pooling == "cls"
                else keras.layers.GlobalAveragePooling1D(name="mean_pool"))
        head = keras.layers.Dense(num_classes, name="head")

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        x = patch_embedding(images)
        if class_token is not None:
            x = class_token(x)
        x = run_encoder(embedding_dropout(position_embedding(x)), blocks)
        x = final_norm(x)
        x = x[:, 0] if pool is None else pool(x)
        logits = head(x)
        super().__init__(inputs=images, outputs=logits, **kwargs)
        self.input_spec = None  # PatchEmbedding checks the images (see ImageClassifier)

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
            "name": self.name,
            "trainable": self.trainable,
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
