"""ViViT (Arnab et al. 2021, "ViViT: A Video Vision Transformer", arXiv
2103.15691), model 1: joint space-time attention over every token of the
clip; the attention baseline of TRecViT at equal width and depth. With
`attention="frame"`, the same blocks attend within each frame only: a
per-frame model whose logits are averaged over time (no mixing in time)."""

import keras
from keras import ops

from glu_zoo.layers.checks import check_choice, check_dropout, check_positive_int
from glu_zoo.layers.embedding import (ClassToken, PatchEmbedding, PositionEmbedding, check_frames_shape,
                                      check_image_size, check_patch_size)
from glu_zoo.layers.transformer import TransformerEncoderBlock, check_heads, check_mlp
from glu_zoo.models.base import ZooModel, check_batch

__all__ = ["ViViT", "FrameMean", "ARCHITECTURES", "ATTENTIONS"]

ATTENTIONS = ("joint", "frame")


@keras.saving.register_keras_serializable(package="glu_zoo")
class FrameMean(keras.layers.Layer):
    """The mean over frames of per-frame values: (B·T, ...) → (B, ...), B
    read from the clips (B, T, ...) that the values were computed from."""

    def call(self, values, clips):
        per_clip = ops.reshape(values, (ops.shape(clips)[0], -1, *values.shape[1:]))
        return ops.mean(per_clip, axis=1)

    def compute_output_shape(self, values_shape, clips_shape):
        return (clips_shape[0], *values_shape[1:])


@keras.saving.register_keras_serializable(package="glu_zoo")
class ViViT(ZooModel):
    """Video Vision Transformer, pre-norm, logits out; frames (B, T, H, W, C).

    Every frame is cut into N patches, embedded (`PatchEmbedding`, per frame:
    ViViT's uniform frame sampling).
    - "joint" (ViViT model 1): z₀ = [cls; patches of frames 1..T] + E_pos,
      (1 + T·N) tokens; `num_layers` pre-norm ViT blocks
      (`TransformerEncoderBlock`) over all of them, so every token attends to
      every token of the clip (cost (T·N)² per head); a final LN, the class
      token, a Dense head. T is fixed (`frames`): E_pos is learned per token.
    - "frame": z₀ = [cls; patches of frame t] + E_pos per frame, the same
      blocks over the 1 + N tokens of each frame alone, LN, the class token,
      the head, then the mean of the logits over time: a per-frame model,
      blind to the order of the frames.

    Args:
        frames: T, the clip length (fixed for "joint"; "frame" takes any).
        image_size: H = W, or (H, W); num_channels: C.
        patch_size: side of the square patches; divides H and W.
        num_classes, hidden_dim, num_layers, num_heads, mlp_dim, mlp, dropout:
            as `ViT` (mlp: an FFN activation or a GatedFFN variant).
        attention: "joint" or "frame".

        model = ViViT(frames=4, image_size=16, patch_size=8, num_classes=3)
        model(np.zeros((2, 4, 16, 16, 1), "float32")).shape  # (2, 3)
    """

    def __init__(
        self,
        frames=16,
        image_size=32,
        num_channels=1,
        patch_size=8,
        num_classes=4,
        hidden_dim=64,
        num_layers=2,
        num_heads=4,
        mlp_dim=128,
        mlp="gelu",
        attention="joint",
        dropout=0.0,
        **kwargs,
    ):
        owner = "ViViT"
        check_choice("attention", attention, ATTENTIONS, owner)
        check_positive_int("frames", frames, owner)
        image_size = check_image_size(image_size, owner)
        check_positive_int("num_channels", num_channels, owner)
        image_shape = (*image_size, num_channels)
        check_patch_size(patch_size, image_shape, owner)
        for arg, value in [("num_classes", num_classes), ("num_layers", num_layers), ("mlp_dim", mlp_dim)]:
            check_positive_int(arg, value, owner)
        check_heads(hidden_dim, num_heads, owner)
        check_mlp(mlp, owner)
        dropout = check_dropout(dropout, owner)
        kwargs.setdefault("name", "vivit")
        num_patches = (image_size[0] // patch_size) * (image_size[1] // patch_size)

        # === Layers ===
        patch_embedding = PatchEmbedding(patch_size, hidden_dim, image_shape, name="patch_embedding")
        class_token = ClassToken(name="class_token")
        position_embedding = PositionEmbedding(name="position_embedding")
        embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        blocks = [TransformerEncoderBlock(hidden_dim, num_heads, mlp_dim, mlp=mlp, dropout=dropout,
                                          name=f"block_{i}") for i in range(num_layers)]
        final_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")
        head = keras.layers.Dense(num_classes, name="head")

        # === Functional Model ===
        clips = keras.Input(shape=(frames if attention == "joint" else None, *image_shape), name="frames")
        x = patch_embedding(ops.reshape(clips, (-1, *image_shape)))  # (B·T, N, d)
        if attention == "joint":
            x = ops.reshape(x, (-1, frames * num_patches, hidden_dim))  # (B, T·N, d)
        x = embedding_dropout(position_embedding(class_token(x)))
        for block in blocks:
            x = block(x)
        logits = head(final_norm(x)[:, 0])
        if attention == "frame":
            logits = FrameMean(name="frame_mean")(logits, clips)
        super().__init__(inputs=clips, outputs=logits, **kwargs)
        self.input_spec = None  # the frames are checked by check_frames_shape

        # === Config ===
        self.frames = frames
        self.image_size = image_size
        self.num_channels = num_channels
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.mlp = mlp
        self.attention = attention
        self.dropout = dropout

    def get_config(self):
        return {
            **super().get_config(),
            "frames": self.frames,
            "image_size": self.image_size,
            "num_channels": self.num_channels,
            "patch_size": self.patch_size,
            "num_classes": self.num_classes,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "mlp": self.mlp,
            "attention": self.attention,
            "dropout": self.dropout,
        }

    def check_inputs(self, x, name=None):
        shape = getattr(x, "shape", None)
        if shape is None or isinstance(x, dict):
            return  # a data set, generator or dict: checked when traced
        owner = self._owner(name)
        check_frames_shape(tuple(shape), self.image_shape, owner)
        check_batch(tuple(shape), owner)
        if self.attention == "joint" and shape[1] != self.frames:
            raise ValueError(f"{owner}: joint space-time attention takes clips of exactly {self.frames} frames "
                             f"(its position table); got shape {tuple(shape)}.")


_TINY = dict(frames=16, image_size=32, num_channels=1, patch_size=8, num_classes=4, hidden_dim=64, num_layers=3,
             num_heads=4, mlp_dim=128, mlp="gelu_tanh")
ARCHITECTURES = {
    # trecvit_tiny's width, depth, heads, MLP and patches, on 16 frames of 32×32×1.
    "vivit_tiny": (ViViT, dict(_TINY, attention="joint")),
    "frame_vit_tiny": (ViViT, dict(_TINY, attention="frame")),
}
