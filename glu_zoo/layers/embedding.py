"""Embeddings: image tokens of vision transformers (patches, class token,
positions; Dosovitskiy et al. 2020, arXiv 2010.11929; channels-last images,
(batch, height, width, channels)) and the tied token embedding of language
models (`ReversibleEmbedding`).
"""

import keras
from keras import ops

from glu_zoo.layers.checks import check_bool, check_floating, check_number, check_positive_int, fresh

__all__ = ["PatchEmbedding", "ClassToken", "PositionEmbedding", "ReversibleEmbedding", "check_frames_shape", "check_image_shape",
           "check_image_size", "check_images_shape", "check_patch_size"]


def check_image_shape(image_shape, owner):
    """`image_shape` as a tuple (H, W, C) of positive ints, or a ValueError.

    Lists are accepted (a config read back from JSON holds lists)."""
    if (
        not isinstance(image_shape, (tuple, list))
        or len(image_shape) != 3
        or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in image_shape)
    ):
        raise ValueError(
            f"{owner}: `image_shape` must be a tuple (height, width, channels) of "
            f"positive integers; got {image_shape!r}."
        )
    return tuple(image_shape)


def check_patch_size(patch_size, image_shape, owner):
    """A positive int that divides the image height and width, or a ValueError."""
    if (
        isinstance(patch_size, bool)
        or not isinstance(patch_size, int)
        or patch_size <= 0
        or image_shape[0] % patch_size
        or image_shape[1] % patch_size
    ):
        raise ValueError(
            f"{owner}: `patch_size` must be a positive integer that divides the image "
            f"height and width; got patch_size={patch_size!r} for "
            f"image_shape={tuple(image_shape)}."
        )


def check_images_shape(shape, image_shape, owner):
    """A ValueError naming both shapes unless `shape` is (batch, *image_shape)."""
    if tuple(shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"{owner}: expected images of shape {(None, *image_shape)}; "
            f"got shape {tuple(shape)}."
        )


def check_image_size(image_size, owner):
    """`image_size` an int (square) or (height, width) of positive ints, as a tuple (H, W)."""
    size = (image_size, image_size) if isinstance(image_size, int) and not isinstance(image_size, bool) else image_size
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in size)):
        raise ValueError(f"{owner}: `image_size` must be a positive integer or a pair (height, width) of "
                         f"positive integers; got {image_size!r}.")
    return tuple(size)


def check_frames_shape(shape, image_shape, owner):
    """A ValueError naming both shapes unless `shape` is (batch, frames, *image_shape)
    with at least one frame."""
    shape = tuple(shape)
    if len(shape) != 5 or tuple(shape[2:]) != tuple(image_shape):
        raise ValueError(f"{owner}: expected frames of shape (batch, frames, height, width, channels) = "
                         f"{(None, None, *image_shape)}; got shape {shape}.")
    if shape[1] == 0:
        raise ValueError(f"{owner}: the frames must hold at least one frame; got shape {shape}.")


@keras.saving.register_keras_serializable(package="glu_zoo")
class PatchEmbedding(keras.layers.Layer):
    """Non-overlapping image patches, linearly embedded: (B, H, W, C) → (B, N, d).

    y[b, i·(W/p) + j] = Σ_{u,v,c} x[b, i·p + u, j·p + v, c]·K[u, v, c] + bias,
    one Conv2D with kernel = stride = p, flattened in row-major patch order,
    N = (H/p)·(W/p). Weights: `kernel` (p, p, C, d) and `bias` (d,) of the
    sub-layer `conv`. Images of another shape than `image_shape` or of a
    non-float dtype raise ValueError. Channels-last only.

    Args:
        patch_size: side p of the square patches; divides H and W.
        hidden_dim: embedding width d.
        image_shape: (H, W, C) of the images.
        kernel_initializer, bias_initializer: of the convolution.

        embed = PatchEmbedding(4, 64, image_shape=(32, 32, 3))
        y = embed(np.ones((2, 32, 32, 3), "float32"))
        y.shape  # (2, 64, 64)
    """

    def __init__(self, patch_size, hidden_dim, image_shape, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        image_shape = check_image_shape(image_shape, owner)
        check_patch_size(patch_size, image_shape, owner)
        check_positive_int("hidden_dim", hidden_dim, owner)
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.image_shape = image_shape
        self.num_patches = (image_shape[0] // patch_size) * (image_shape[1] // patch_size)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.conv = keras.layers.Conv2D(
            hidden_dim,
            kernel_size=patch_size,
            strides=patch_size,
            padding="valid",
            data_format="channels_last",
            use_bias=True,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="conv",
        )

    def _check_shape(self, shape):
        check_images_shape(shape, self.image_shape, f"{type(self).__name__} '{self.name}'")

    def build(self, input_shape):
        self._check_shape(input_shape)
        if not self.conv.built:
            self.conv.build((None, *self.image_shape))

    def call(self, images):
        self._check_shape(images.shape)
        check_floating(images.dtype, f"{type(self).__name__} '{self.name}'", name="images")
        y = self.conv(images)
        return ops.reshape(y, (-1, self.num_patches, self.hidden_dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_patches, self.hidden_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "patch_size": self.patch_size,
            "hidden_dim": self.hidden_dim,
            "image_shape": self.image_shape,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


class _TokenLayer(keras.layers.Layer):
    """Shared checks of the layers that act on (batch, tokens, hidden)."""

    def _check_shape(self, shape, built_for=None):
        name = type(self).__name__
        if len(shape) != 3 or shape[-1] is None:
            raise ValueError(
                f"{name} '{self.name}': `inputs` must have shape (batch, tokens, hidden) "
                f"with a known hidden width; got shape {tuple(shape)}."
            )
        if built_for is not None and tuple(shape[1:]) != tuple(built_for):
            raise ValueError(
                f"{name} '{self.name}' was built for inputs of shape {(None, *built_for)}; "
                f"got shape {tuple(shape)}."
            )


@keras.saving.register_keras_serializable(package="glu_zoo")
class ClassToken(_TokenLayer):
    """Prepends one learned token: (B, N, d) → (B, 1 + N, d), y = [t; x].

    The weight `token` has shape (d,). ViT initialises it with zeros (the
    default); timm uses a truncated normal of stddev 0.02.

    Args:
        initializer: of `token`; "zeros" by default.

        add_cls = ClassToken()
        y = add_cls(np.ones((2, 16, 64), "float32"))
        y.shape  # (2, 17, 64)
    """

    def __init__(self, initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self._check_shape(input_shape)
        self.hidden_dim = int(input_shape[-1])
        self.token = self.add_weight(name="token", shape=(self.hidden_dim,),
                                     initializer=self.initializer)

    def call(self, inputs):
        self._check_shape(inputs.shape, built_for=(inputs.shape[1], self.hidden_dim))
        # zeros_like(x[:, :1]) + t broadcasts the token over a batch size that
        # may be symbolic, the same way on every backend.
        token = ops.zeros_like(inputs[:, :1, :]) + ops.cast(self.token, inputs.dtype)
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], n, input_shape[2])

    def get_config(self):
        return {**super().get_config(),
                "initializer": keras.initializers.serialize(self.initializer)}


@keras.saving.register_keras_serializable(package="glu_zoo")
class PositionEmbedding(_TokenLayer):
    """Adds a learned position table: y[b, n] = x[b, n] + E[n], for (B, N, d).

    The weight `embeddings` has shape (N, d), truncated normal of stddev 0.02
    (ViT / timm); N and d are fixed by the first input.

    Args:
        initializer: of `embeddings`.

        add_pos = PositionEmbedding()
        y = add_pos(np.ones((2, 17, 64), "float32"))
        y.shape  # (2, 17, 64)
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if initializer is None:
            initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self._check_shape(input_shape)
        if input_shape[1] is None:
            raise ValueError(
                f"PositionEmbedding '{self.name}': the number of tokens must be known; "
                f"got shape {tuple(input_shape)}."
            )
        self.sequence_length = int(input_shape[1])
        self.hidden_dim = int(input_shape[2])
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, self.hidden_dim),
            initializer=self.initializer,
        )

    def call(self, inputs):
        self._check_shape(inputs.shape, built_for=(self.sequence_length, self.hidden_dim))
        return inputs + ops.cast(self.embeddings, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(),
                "initializer": keras.initializers.serialize(self.initializer)}


@keras.saving.register_keras_serializable(package="glu_zoo")
class ReversibleEmbedding(keras.layers.Layer):
    """Token embedding that also maps back to the vocabulary (logits):

        call(ids)                → E[ids]                       (batch, T, d)
        call(x, reverse=True)    → (x · logit_scale) · Eᵀ       tied (T5, BERT's MLM head)
                                 → (x · logit_scale) · W_out    untied (T5 v1.1)

    Weights `embeddings` (vocabulary_size, dim) and, untied, `reverse_embeddings`
    (dim, vocabulary_size). T5 ties them with logit_scale d^−½ (Raffel et al.
    2019, arXiv 1910.10683); T5 v1.1 unties them with scale 1.

    Args:
        vocabulary_size: number of token ids.
        dim: embedding width d.
        tie_weights: share E between the input and output.
        logit_scale: factor on x before the reverse projection.
        embeddings_initializer: of E (and of W_out).

        embedding = ReversibleEmbedding(384, 64)
        x = embedding(np.array([[5, 7, 0]]))     # (1, 3, 64)
        logits = embedding(x, reverse=True)      # (1, 3, 384)
    """

    def __init__(self, vocabulary_size, dim, tie_weights=True, logit_scale=1.0,
                 embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size, owner)
        self.dim = check_positive_int("dim", dim, owner)
        self.tie_weights = check_bool("tie_weights", tie_weights, owner)
        self.logit_scale = float(check_number("logit_scale", logit_scale, owner, low=0.0))
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(name="embeddings", shape=(self.vocabulary_size, self.dim),
                                          initializer=fresh(self.embeddings_initializer))
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                name="reverse_embeddings", shape=(self.dim, self.vocabulary_size),
                initializer=fresh(self.embeddings_initializer))

    def call(self, inputs, reverse=False):
        if reverse:
            if inputs.shape[-1] != self.dim:
                raise ValueError(f"{type(self).__name__} '{self.name}': reverse `inputs` must have last dimension "
                                 f"{self.dim}; got shape {tuple(inputs.shape)}.")
            x = inputs * ops.cast(self.logit_scale, inputs.dtype) if self.logit_scale != 1.0 else inputs
            kernel = ops.transpose(self.embeddings) if self.tie_weights else self.reverse_embeddings
            return ops.matmul(x, ops.cast(kernel, x.dtype))
        if "int" not in keras.backend.standardize_dtype(inputs.dtype):
            raise ValueError(f"{type(self).__name__} '{self.name}': token ids must be integers; got dtype "
                             f"{keras.backend.standardize_dtype(inputs.dtype)}.")
        return ops.cast(ops.take(self.embeddings, inputs, axis=0), self.compute_dtype)

    def compute_output_spec(self, inputs, reverse=False):
        shape = (*inputs.shape[:-1], self.vocabulary_size) if reverse else (*inputs.shape, self.dim)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "dim": self.dim,
            "tie_weights": self.tie_weights,
            "logit_scale": self.logit_scale,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }
