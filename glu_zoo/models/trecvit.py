"""TRecViT (Pătrăucean et al. 2024, "TRecViT: A Recurrent Video Transformer",
arXiv 2412.14294): gated linear recurrences over time, attention over space,
MLPs over channels; causal in time, so it also runs on a stream, frame by frame.
The structure, weight layout and numerics of the official JAX model
(google-deepmind/trecvit, on recurrentgemma's Griffin block)."""

import math
import os

import keras
import numpy as np
from keras import ops

from glu_zoo.layers.checks import check_choice, check_dropout, check_number, check_positive_int
from glu_zoo.layers.embedding import (ClassToken, PatchEmbedding, PositionEmbedding, check_frames_shape,
                                      check_image_size, check_patch_size)
from glu_zoo.layers.rglru import RecurrentBlock
from glu_zoo.layers.transformer import TransformerEncoderBlock, check_heads, check_mlp
from glu_zoo.models.base import ZooModel, check_batch
from glu_zoo.models.checkpoints import check_arrays, read_arrays
from glu_zoo.ops.scan import SCAN_MODES

__all__ = ["TRecViT", "VideoTokenizer", "TRecViTLayer", "ARCHITECTURES"]


def clip_count(frames, frames_per_clip):
    """The official split of a video of `frames` frames: max(frames // frames_per_clip, 1)
    equal clips (1 when `frames_per_clip` is None)."""
    if frames_per_clip is None:
        return 1
    if isinstance(frames, int):
        return max(frames // frames_per_clip, 1)
    return ops.maximum(frames // frames_per_clip, 1)


@keras.saving.register_keras_serializable(package="glu_zoo")
class VideoTokenizer(keras.layers.Layer):
    """Frames (B, T, H, W, C) → tokens (B, T, 1 + N, d), each frame on its own:
    patches p×p linearly embedded (N = (H/p)·(W/p), row-major), plus a learned
    position table E (N, d) on the patch tokens, THEN a class token first
    (the class token has no position): x_t = [cls; PatchEmbed(frame_t) + E].

    Sub-layers `patch_embedding` (`PatchEmbedding`, lecun-normal kernel),
    `position_embedding` (`PositionEmbedding`, N(0, 1/d)), `class_token`
    (`ClassToken`, zeros), as the official TRecViT tokenizer.

    Args:
        patch_size: side p of the square patches; divides H and W.
        hidden_dim: token width d.
        image_shape: (H, W, C) of one frame.

        tokenizer = VideoTokenizer(8, 64, image_shape=(32, 32, 1))
        tokens = tokenizer(np.ones((2, 16, 32, 32, 1), "float32"))
        tokens.shape  # (2, 16, 17, 64)
    """

    def __init__(self, patch_size, hidden_dim, image_shape, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.patch_embedding = PatchEmbedding(patch_size, hidden_dim, image_shape, kernel_initializer="lecun_normal",
                                              dtype=self.dtype_policy, name="patch_embedding")
        self.image_shape = self.patch_embedding.image_shape
        self.num_patches = self.patch_embedding.num_patches
        self.position_embedding = PositionEmbedding(
            initializer=keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(hidden_dim)),
            dtype=self.dtype_policy, name="position_embedding")
        self.class_token = ClassToken(dtype=self.dtype_policy, name="class_token")

    def build(self, input_shape):
        check_frames_shape(input_shape, self.image_shape, f"VideoTokenizer '{self.name}'")
        patches = (None, self.num_patches, self.hidden_dim)
        self.patch_embedding.build((None, *self.image_shape))
        self.position_embedding.build(patches)
        self.class_token.build(patches)

    def call(self, frames):
        check_frames_shape(frames.shape, self.image_shape, f"VideoTokenizer '{self.name}'")
        shape = ops.shape(frames)
        x = self.patch_embedding(ops.reshape(frames, (-1, *self.image_shape)))
        x = self.class_token(self.position_embedding(x))
        return ops.reshape(x, (shape[0], shape[1], self.num_patches + 1, self.hidden_dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.num_patches + 1, self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "hidden_dim": self.hidden_dim,
                "image_shape": self.image_shape}


@keras.saving.register_keras_serializable(package="glu_zoo")
class TRecViTLayer(keras.layers.Layer):
    """One TRecViT layer on tokens (B, T, N, d): time, then space.

    1. Time: every token position n (class token too) is a sequence over the
       T frames, run through one `RecurrentBlock` (weights shared across
       space): u = x + (RG-LRU(Conv(RMSNorm(x)·Wx)) ⊗ GELU_tanh(RMSNorm(x)·Wy))·Wout,
       causal, reset at the first frame of each clip.
    2. Space: the N tokens of each frame through a pre-norm ViT block
       (`TransformerEncoderBlock`, tanh-GELU MLP by default), no mask.

    Sub-layers `recurrent_block` and `encoder_block`. `frames_per_clip`: the
    official clip split, max(T // frames_per_clip, 1) equal clips whose
    recurrences run (and reset) on their own; None: one clip.

    Args:
        hidden_dim, num_heads, mlp_dim, mlp, dropout: of the ViT block; the
            RG-LRU has `num_heads` gate blocks too.
        lru_width, conv_width, min_rad, mode: of the recurrent block.
        num_layers: the model's depth (linear_out init scale 2/num_layers).
        frames_per_clip: None or a positive int.

        layer = TRecViTLayer(64, num_heads=4, mlp_dim=128, lru_width=128)
        y = layer(np.ones((2, 16, 17, 64), "float32"))
        y.shape  # (2, 16, 17, 64)
    """

    def __init__(self, hidden_dim, num_heads, mlp_dim, lru_width=None, conv_width=4, mlp="gelu_tanh",
                 dropout=0.0, min_rad=0.5, mode="auto", num_layers=1, frames_per_clip=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.lru_width = lru_width
        self.conv_width = conv_width
        self.mlp = mlp
        self.dropout = dropout
        self.min_rad = min_rad
        self.mode = mode
        self.num_layers = num_layers
        self.frames_per_clip = frames_per_clip
        width = lru_width or 2 * hidden_dim
        self.recurrent_block = RecurrentBlock(
            hidden_dim, lru_width=width, num_heads=num_heads, conv_width=conv_width, mode=mode,
            min_rad=min_rad, return_state=True, gate_stddev=math.sqrt(1.0 / width),
            out_init_scale=2.0 / num_layers, dtype=self.dtype_policy, name="recurrent_block")
        self.encoder_block = TransformerEncoderBlock(hidden_dim, num_heads, mlp_dim, mlp=mlp, dropout=dropout,
                                                     dtype=self.dtype_policy, name="encoder_block")

    def _check_shape(self, shape):
        if len(shape) != 4 or shape[-1] != self.hidden_dim:
            raise ValueError(f"TRecViTLayer '{self.name}': `inputs` must have shape (batch, frames, tokens, "
                             f"{self.hidden_dim}); got shape {tuple(shape)}.")

    def build(self, input_shape):
        self._check_shape(input_shape)
        self.recurrent_block.build((None, None, self.hidden_dim))
        self.encoder_block.build((None, input_shape[2], self.hidden_dim))

    def _time_major(self, x):
        """(B, T, N, d) → (B·N, T, d), and the dynamic (B, T, N)."""
        shape = ops.shape(x)
        rows = ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (-1, shape[1], self.hidden_dim))
        return rows, shape[:3]

    def _space(self, rows, shape, training=None):
        """(B·N, T, d) back to (B, T, N, d), through the ViT block per frame."""
        b, t, n = shape
        x = ops.transpose(ops.reshape(rows, (b, n, t, self.hidden_dim)), (0, 2, 1, 3))
        x = self.encoder_block(ops.reshape(x, (-1, n, self.hidden_dim)), training=training)
        return ops.reshape(x, (b, t, n, self.hidden_dim))

    def call(self, inputs, training=None):
        self._check_shape(inputs.shape)
        rows, shape = self._time_major(inputs)
        if self.frames_per_clip is not None:  # the clips of each row in turn: (B·N·clips, T/clips, d)
            clips = clip_count(shape[1], self.frames_per_clip)
            rows = ops.reshape(rows, (-1, shape[1] // clips, self.hidden_dim))
        rows, _ = self.recurrent_block(rows, training=training)
        if self.frames_per_clip is not None:
            rows = ops.reshape(rows, (-1, shape[1], self.hidden_dim))
        return self._space(rows, shape, training)

    def step(self, inputs, state, reset):
        """`inputs` (B, t, N, d) after the frames that `state` = (conv_state
        (B, N, conv_width − 1, lru_width), lru_state (B, N, lru_width))
        summarises; the rows where `reset` (B,) is True start afresh (their
        first frame). Returns (outputs, state). One clip (no clip split)."""
        rows, shape = self._time_major(inputs)
        b, n = shape[0], shape[2]
        conv, lru = state
        width = self.recurrent_block._lru_width
        conv = ops.reshape(conv, (-1, self.conv_width - 1, width))
        lru = ops.reshape(lru, (-1, width))
        rows, (conv, lru) = self.recurrent_block(rows, initial_state=(conv, lru),
                                                 reset=ops.repeat(reset, n, axis=0))
        state = (ops.reshape(conv, (b, n, self.conv_width - 1, width)), ops.reshape(lru, (b, n, width)))
        return self._space(rows, shape), state

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "lru_width": self.lru_width,
            "conv_width": self.conv_width,
            "mlp": self.mlp,
            "dropout": self.dropout,
            "min_rad": self.min_rad,
            "mode": self.mode,
            "num_layers": self.num_layers,
            "frames_per_clip": self.frames_per_clip,
        }


@keras.saving.register_keras_serializable(package="glu_zoo")
class TRecViT(ZooModel):
    """TRecViT video classifier (arXiv 2412.14294), logits out.

    Frames (B, T, H, W, C), any T ≥ 1 (the official model reads [0, 1] RGB,
    x/255, no mean/std). Per frame: x = [cls; PatchEmbed(frame) + E_pos]
    (`VideoTokenizer`); `num_layers` × `TRecViTLayer` (a Griffin
    `RecurrentBlock` over time for each of the 1 + N tokens, RG-LRU width
    `lru_width` = 2·d by default, conv width 4, then a ViT block over the
    tokens of each frame); a final LayerNorm (ε 1e-6); then the head:
    z_t = tanh(cls_t·W_pre + b_pre) (width `representation_dim`, 3072),
    logits = mean_t(z_t)·W + b. The official clip split (`frames_per_clip`):
    max(T // frames_per_clip, 1) equal clips, recurrences reset at each; the
    logits are then the mean of the clips' logits. Layers: `tokenizer`,
    `layer_{i}`, `final_norm`, `pre_logits`, `head`.

    Causal in time: the logits of frames[:, :t] depend on those frames only.
    Streaming: `state = model.init_state(batch)`, then `logits, state =
    model.step(frames, state)` on one frame or a chunk (B, t, H, W, C) at a
    time; `logits[:, s]` equals `model(clip[:, :s + 1])` for the clip seen so
    far (one clip: `step` applies no clip split).

    `TRecViT.from_official(npz)` loads the released checkpoints
    (`trecvit_B_k400.npz`). Init for training from scratch as the official
    code: lecun-normal patch and head kernels, positions N(0, 1/d), RG-LRU
    gates N(0, 1/lru_width), linear_out N(0, (2/num_layers)/lru_width),
    min_rad 0.5.

    Args:
        image_size: H = W (an int) or (H, W) of the frames.
        num_channels: C of the frames.
        patch_size: side of the square patches; divides H and W.
        num_classes: width of the logits.
        hidden_dim, num_layers, num_heads, mlp_dim: width, depth, attention
            heads (also the RG-LRU's gate blocks), ViT MLP width.
        lru_width: RG-LRU width; None: 2·hidden_dim. Divisible by num_heads.
        conv_width: taps of the temporal convolution.
        representation_dim: width of the tanh pre-logits (3072).
        mlp: the ViT blocks' MLP, an FFN activation or a GatedFFN variant
            (official: gelu_tanh).
        dropout: rate in [0, 1) on the ViT MLPs' hidden units.
        min_rad: RG-LRU initial smallest |a|, in (0, 1).
        frames_per_clip: None (the whole input is one clip) or a positive int.
        mode: the RG-LRU scan mode.

        model = glu_zoo.models.build("trecvit_tiny")
        logits = model(np.zeros((2, 16, 32, 32, 1), "float32"))
        logits.shape  # (2, 4)
    """

    def __init__(
        self,
        image_size=224,
        num_channels=3,
        patch_size=16,
        num_classes=400,
        hidden_dim=768,
        num_layers=12,
        num_heads=12,
        mlp_dim=3072,
        lru_width=None,
        conv_width=4,
        representation_dim=3072,
        mlp="gelu_tanh",
        dropout=0.0,
        min_rad=0.5,
        frames_per_clip=None,
        mode="auto",
        **kwargs,
    ):
        owner = "TRecViT"
        image_size = check_image_size(image_size, owner)
        check_positive_int("num_channels", num_channels, owner)
        image_shape = (*image_size, num_channels)
        check_patch_size(patch_size, image_shape, owner)
        for arg, value in [("num_classes", num_classes), ("num_layers", num_layers), ("mlp_dim", mlp_dim),
                           ("conv_width", conv_width), ("representation_dim", representation_dim)]:
            check_positive_int(arg, value, owner)
        check_heads(hidden_dim, num_heads, owner)
        width = 2 * hidden_dim if lru_width is None else check_positive_int("lru_width", lru_width, owner)
        if width % num_heads:
            raise ValueError(f"{owner}: `lru_width` (default 2·hidden_dim) must be divisible by `num_heads`; "
                             f"got lru_width={width}, num_heads={num_heads}.")
        check_mlp(mlp, owner)
        dropout = check_dropout(dropout, owner)
        min_rad = check_number("min_rad", min_rad, owner, 0.0, 1.0)
        if frames_per_clip is not None:
            check_positive_int("frames_per_clip", frames_per_clip, owner)
        check_choice("mode", mode, SCAN_MODES, owner)
        kwargs.setdefault("name", "trecvit")

        # === Layers ===
        tokenizer = VideoTokenizer(patch_size, hidden_dim, image_shape, name="tokenizer")
        layers = [TRecViTLayer(hidden_dim, num_heads, mlp_dim, lru_width=width, conv_width=conv_width, mlp=mlp,
                               dropout=dropout, min_rad=min_rad, mode=mode, num_layers=num_layers,
                               frames_per_clip=frames_per_clip, name=f"layer_{i}") for i in range(num_layers)]
        final_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")
        pre_logits = keras.layers.Dense(representation_dim, activation="tanh", kernel_initializer="lecun_normal",
                                        name="pre_logits")
        head = keras.layers.Dense(num_classes, kernel_initializer="lecun_normal", name="head")

        # === Functional Model ===
        frames = keras.Input(shape=(None, *image_shape), name="frames")
        x = tokenizer(frames)
        for layer in layers:
            x = layer(x)
        x = final_norm(x)
        z = pre_logits(x[:, :, 0])  # the class token of every frame: (B, T, representation_dim)
        logits = head(ops.mean(z, axis=1))  # equal clips: the mean of the clips' logits
        super().__init__(inputs=frames, outputs=logits, **kwargs)
        self.input_spec = None  # the frames are checked by check_frames_shape

        # === Config ===
        self.image_size = image_size
        self.num_channels = num_channels
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.lru_width = lru_width
        self.conv_width = conv_width
        self.representation_dim = representation_dim
        self.mlp = mlp
        self.dropout = dropout
        self.min_rad = min_rad
        self.frames_per_clip = frames_per_clip
        self.mode = mode
        self.num_tokens = tokenizer.num_patches + 1

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "num_channels": self.num_channels,
            "patch_size": self.patch_size,
            "num_classes": self.num_classes,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "lru_width": self.lru_width,
            "conv_width": self.conv_width,
            "representation_dim": self.representation_dim,
            "mlp": self.mlp,
            "dropout": self.dropout,
            "min_rad": self.min_rad,
            "frames_per_clip": self.frames_per_clip,
            "mode": self.mode,
        }

    # --- inputs ---------------------------------------------------------------------------

    def check_inputs(self, x, name=None):
        shape = getattr(x, "shape", None)
        if shape is None or isinstance(x, dict):
            return  # a data set, generator or dict: checked when traced
        shape, owner = tuple(shape), self._owner(name)
        check_frames_shape(shape, self.image_shape, owner)
        check_batch(shape, owner)
        self._check_clips(shape, owner)

    def _check_clips(self, shape, owner):
        frames = shape[1]
        if self.frames_per_clip is None or not isinstance(frames, int):
            return
        clips = clip_count(frames, self.frames_per_clip)
        if frames % clips:
            raise ValueError(f"{owner}: {frames} frames do not split into {clips} equal clips "
                             f"(max(frames // frames_per_clip, 1) with frames_per_clip={self.frames_per_clip}); "
                             f"got frames of shape {shape}.")

    # --- streaming ------------------------------------------------------------------------

    def _state_shapes(self, batch_size):
        n, width = self.num_tokens, self.lru_width or 2 * self.hidden_dim
        return {
            "frames_seen": (batch_size,),
            "pre_logits_sum": (batch_size, self.representation_dim),
            "layers": [((batch_size, n, self.conv_width - 1, width), (batch_size, n, width))
                       for _ in range(self.num_layers)],
        }

    def init_state(self, batch_size):
        """The state before the first frame of `batch_size` streams: a dict with
        `frames_seen` (B,) int32, `pre_logits_sum` (B, representation_dim)
        float32, and `layers`, one (conv_state (B, 1 + N, conv_width − 1,
        lru_width), lru_state (B, 1 + N, lru_width) float32) per layer. All
        zeros; a row whose `frames_seen` is 0 restarts (the official reset at
        the first frame), so streams may start at different times."""
        batch_size = check_positive_int("batch_size", batch_size, self._owner("init_state"))
        shapes = self._state_shapes(batch_size)
        conv_dtype = self.get_layer("layer_0").recurrent_block.compute_dtype
        return {
            "frames_seen": ops.zeros(shapes["frames_seen"], "int32"),
            "pre_logits_sum": ops.zeros(shapes["pre_logits_sum"], "float32"),
            "layers": [(ops.zeros(conv, conv_dtype), ops.zeros(lru, "float32")) for conv, lru in shapes["layers"]],
        }

    def _check_state(self, state, batch_size):
        owner = self._owner("step")
        shapes = self._state_shapes(batch_size)
        if not isinstance(state, dict) or set(state) != set(shapes):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{owner}: `state` must be the dict of init_state ({', '.join(sorted(shapes))}); "
                             f"got {got}.")
        if not isinstance(state["layers"], (list, tuple)) or len(state["layers"]) != self.num_layers:
            raise ValueError(f"{owner}: state['layers'] must hold {self.num_layers} (conv_state, lru_state) "
                             f"pairs; got {type(state['layers']).__name__} of length "
                             f"{len(state['layers']) if isinstance(state['layers'], (list, tuple)) else '-'}.")
        parts = [("state['frames_seen']", state["frames_seen"], shapes["frames_seen"]),
                 ("state['pre_logits_sum']", state["pre_logits_sum"], shapes["pre_logits_sum"])]
        for i, (pair, (conv, lru)) in enumerate(zip(state["layers"], shapes["layers"])):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"{owner}: state['layers'][{i}] must be a pair (conv_state, lru_state); "
                                 f"got {type(pair).__name__}.")
            parts += [(f"state['layers'][{i}][0] (conv_state)", pair[0], conv),
                      (f"state['layers'][{i}][1] (lru_state)", pair[1], lru)]
        for label, value, expected in parts:
            shape = tuple(getattr(value, "shape", ()))
            if shape != expected:
                raise ValueError(f"{owner}: {label} must have shape {expected} for frames of batch size "
                                 f"{batch_size}; got shape {shape}.")

    def step(self, frames, state):
        """Runs the next frame(s) of each stream: `frames` (B, t, H, W, C), t ≥ 1,
        and the `state` after the frames before them (`init_state(B)` at the
        start). Returns (logits (B, t, num_classes), new state): logits[:, s]
        are the model's logits for the whole stream so far, up to and including
        frame s of this chunk, i.e. equal to `model(stream[:, :frames_seen + s + 1])`
        (the running mean of the tanh pre-logits through the head). The frames
        are run as one clip (no clip split)."""
        shape = tuple(frames.shape)
        check_frames_shape(shape, self.image_shape, self._owner("step"))
        self._check_state(state, shape[0])
        seen = ops.convert_to_tensor(state["frames_seen"], "int32")
        x = ops.convert_to_tensor(frames, self.compute_dtype)
        x = self.get_layer("tokenizer")(x)
        reset = ops.equal(seen, 0)
        layers = []
        for i, pair in enumerate(state["layers"]):
            x, pair = self.get_layer(f"layer_{i}").step(x, tuple(pair), reset)
            layers.append(pair)
        x = self.get_layer("final_norm")(x)
        z = ops.cast(self.get_layer("pre_logits")(x[:, :, 0]), "float32")
        sums = ops.convert_to_tensor(state["pre_logits_sum"], "float32")[:, None] + ops.cumsum(z, axis=1)
        counts = ops.cast(seen[:, None] + ops.arange(1, shape[1] + 1, dtype="int32")[None, :], "float32")
        logits = self.get_layer("head")(sums / counts[..., None])
        return logits, {"frames_seen": seen + shape[1], "pre_logits_sum": sums[:, -1], "layers": layers}

    # --- the official checkpoints ---------------------------------------------------------

    def official_weights(self):
        """The official (Flax) name of every weight: {name: (variable, leading)},
        where the official array has `leading` extra axes of size 1 in front
        (the 5-D patch kernel, `pos_embedding`, `cls`)."""
        tokenizer = self.get_layer("tokenizer")
        names = {
            "tokenizer/embedding/kernel": (tokenizer.patch_embedding.conv.kernel, 1),
            "tokenizer/embedding/bias": (tokenizer.patch_embedding.conv.bias, 0),
            "tokenizer/pos_embedding": (tokenizer.position_embedding.embeddings, 1),
            "tokenizer/cls": (tokenizer.class_token.token, 2),
        }
        for i in range(self.num_layers):
            layer = self.get_layer(f"layer_{i}")
            rec, enc = layer.recurrent_block, layer.encoder_block
            prefix = f"encoder/residualblock_{i:02d}/"
            names[prefix + "temporal_pre_norm/scale"] = (rec.norm_scale, 0)
            prefix += "recurrent_block/"
            for part in ("linear_y", "linear_x", "linear_out"):
                names[f"{prefix}{part}/kernel"] = (getattr(rec, f"{part}_kernel"), 0)
                names[f"{prefix}{part}/bias"] = (getattr(rec, f"{part}_bias"), 0)
            names[prefix + "conv_1d/w"] = (rec.conv_kernel, 0)
            names[prefix + "conv_1d/b"] = (rec.conv_bias, 0)
            names[prefix + "rg_lru/a_param"] = (rec.rg_lru.a_param, 0)
            for gate in ("input_gate", "a_gate"):
                names[f"{prefix}rg_lru/{gate}/w"] = (getattr(rec.rg_lru, f"{gate}_kernel"), 0)
                names[f"{prefix}rg_lru/{gate}/b"] = (getattr(rec.rg_lru, f"{gate}_bias"), 0)
            prefix = f"encoder/encoderblock_{i}/"
            for flax, norm in (("LayerNorm_0", enc.attention_norm), ("LayerNorm_1", enc.mlp_norm)):
                names[f"{prefix}{flax}/scale"] = (norm.gamma, 0)
                names[f"{prefix}{flax}/bias"] = (norm.beta, 0)
            attention = enc.attention
            for flax, dense in (("query", attention.query_dense), ("key", attention.key_dense),
                                ("value", attention.value_dense), ("out", attention.output_dense)):
                names[f"{prefix}MultiHeadDotProductAttention_0/{flax}/kernel"] = (dense.kernel, 0)
                names[f"{prefix}MultiHeadDotProductAttention_0/{flax}/bias"] = (dense.bias, 0)
            mlp = enc.mlp_layer
            for flax, (kernel, bias) in (("Dense_0", ("kernel_in", "bias_in")),
                                         ("Dense_1", ("kernel_out", "bias_out"))):
                names[f"{prefix}MlpBlock_0/{flax}/kernel"] = (getattr(mlp, kernel), 0)
                names[f"{prefix}MlpBlock_0/{flax}/bias"] = (getattr(mlp, bias), 0)
        final_norm = self.get_layer("final_norm")
        names["encoder/encoder_norm/scale"] = (final_norm.gamma, 0)
        names["encoder/encoder_norm/bias"] = (final_norm.beta, 0)
        for flax, layer in (("pre_logits", "pre_logits"), ("cls_head", "head")):
            names[f"decoder/{flax}/kernel"] = (self.get_layer(layer).kernel, 0)
            names[f"decoder/{flax}/bias"] = (self.get_layer(layer).bias, 0)
        return names

    @classmethod
    def from_official(cls, checkpoint, architecture="trecvit_b", **overrides):
        """The named architecture (with `overrides`) holding the official weights.

        `checkpoint`: the path of an `.npz` in the layout of the released
        `trecvit_B_k400.npz` ('/'-joined Flax parameter names under
        `tokenizer/`, `encoder/`, `decoder/`, no `params/` prefix; read with
        `allow_pickle=False`), or a dict of those names to arrays. Every weight
        of the model must be there once, with the official shape, and nothing
        else: a missing, unexpected or wrong-shaped (or non-numeric) array is a
        ValueError that names it and the expected shape; nothing is assigned
        unless all are right. Values are cast to float32. Needs NumPy only (no
        JAX or Flax), on every backend.

            model = TRecViT.from_official("trecvit_B_k400.npz")  # 400 Kinetics classes
            logits = model(frames / 255.0)  # frames (1, 32, 224, 224, 3), uint8
        """
        if architecture not in ARCHITECTURES:
            raise ValueError(f"TRecViT.from_official: unknown architecture {architecture!r}; known: "
                             f"{', '.join(sorted(ARCHITECTURES))}.")
        arrays = read_arrays(checkpoint, "TRecViT.from_official")
        _, config = ARCHITECTURES[architecture]
        model = cls(**{**config, **overrides})
        targets = model.official_weights()
        source = checkpoint if isinstance(checkpoint, (str, os.PathLike)) else "the checkpoint"
        check_arrays(arrays, {name: (1,) * leading + tuple(variable.shape) for name, (variable, leading) in
                              targets.items()}, "TRecViT.from_official",
                     f"{source} does not fit {architecture}{' with ' + repr(overrides) if overrides else ''}")
        for name, (variable, leading) in targets.items():
            variable.assign(arrays[name].reshape(tuple(variable.shape)).astype("float32"))
        return model


# Sizes of the official code (big_vision's ViT table): RG-LRU width 2·d with
# one gate block of 128 per attention head, conv width 4, tanh pre-logits of
# 3072, patch 16 at 224×224, Kinetics-400 head. Parameters with 400 classes:
# S 37,154,704, B 136,778,128, L 471,797,136.
_OFFICIAL = dict(image_size=224, num_channels=3, patch_size=16, num_classes=400, lru_width=None, conv_width=4,
                 representation_dim=3072, mlp="gelu_tanh", min_rad=0.5)

ARCHITECTURES = {
    # For CPU recipes: clips of 32×32 grey frames, 4×4 patches of 8 pixels (16 tokens + cls).
    "trecvit_tiny": (TRecViT, dict(image_size=32, num_channels=1, patch_size=8, num_classes=4, hidden_dim=64,
                                   num_layers=3, num_heads=4, mlp_dim=128, lru_width=None, conv_width=4,
                                   representation_dim=128, mlp="gelu_tanh", min_rad=0.5)),
    "trecvit_s": (TRecViT, dict(_OFFICIAL, hidden_dim=384, num_layers=12, num_heads=6, mlp_dim=1536)),
    "trecvit_b": (TRecViT, dict(_OFFICIAL, hidden_dim=768, num_layers=12, num_heads=12, mlp_dim=3072)),
    "trecvit_l": (TRecViT, dict(_OFFICIAL, hidden_dim=1024, num_layers=24, num_heads=16, mlp_dim=4096)),
}
