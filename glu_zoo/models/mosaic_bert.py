"""MosaicBERT (Portes et al. 2023, "MosaicBERT: A Bidirectional Encoder
Optimized for Fast Pretraining", arXiv 2312.17482): BERT with ALiBi instead of
position embeddings, GeGLU feed-forward layers, post-LN, a tied masked-LM
head, and unpadding — here packing: the real tokens of several sequences share
one row, attention kept within each sequence. Loads the official PyTorch
state dicts (`from_official`, the names of mosaicml/examples'
`BertForMaskedLM`)."""

import os

import keras
import numpy as np
from keras import ops

from glu_zoo.layers.attention import (alibi_bias, alibi_slopes, attention_probabilities,
                                     dot_product_attention, large_negative, pack_sequences)
from glu_zoo.layers.checks import check_bool, check_choice, check_dropout, check_floating, check_number
from glu_zoo.layers.checks import check_positive_int, fresh
from glu_zoo.layers.embedding import ReversibleEmbedding
from glu_zoo.layers.ffn import GatedFFN
from glu_zoo.models.base import LanguageModel, check_batch, check_input_dict, check_token_ids, layout_map, value_range
from glu_zoo.models.checkpoints import check_arrays, read_arrays

__all__ = ["MosaicBERT", "MosaicLayerNorm", "MosaicSelfAttention", "MosaicBERTLayer", "SegmentALiBi",
           "PackedMLMDataset", "pack_mlm_batch", "unpack_predictions", "ARCHITECTURES"]

INPUTS = ("token_ids", "padding_mask")


def _initializer():
    # BERT's initialisation (transformers' BertPreTrainedModel): N(0, 0.02) for every matrix and table.
    return keras.initializers.RandomNormal(stddev=0.02)


# --- layers -----------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="glu_zoo")
class MosaicLayerNorm(keras.layers.LayerNormalization):
    """LayerNorm over the last axis, y = (x − μ)/√(σ² + ε)·γ + β, with an
    optional low-precision mode.

    Default (as `keras.layers.LayerNormalization`): computed in float32
    whatever the compute dtype. `low_precision=True` (MosaicBERT's "low
    precision LayerNorm", Composer's LowPrecisionLayerNorm): input, γ, β,
    mean, variance and output in the compute dtype (bfloat16 or float16 under a
    mixed policy), no float32 copy of the activations: less memory traffic, at
    the cost of bfloat16's 8-bit mantissa in the normalised values (the backend
    may still accumulate the means wider). Under a float32 policy both modes are
    the same computation. Note ε = 1e-12 underflows to 0 in float16.
    """

    def __init__(self, low_precision=False, **kwargs):
        super().__init__(**kwargs)
        self.low_precision = check_bool("low_precision", low_precision, type(self).__name__)

    def call(self, inputs):
        dtype = self.compute_dtype
        if not self.low_precision or keras.backend.standardize_dtype(dtype) in ("float32", "float64"):
            return super().call(inputs)
        x = ops.cast(inputs, dtype)
        mean = ops.mean(x, axis=-1, keepdims=True)
        centred = x - mean
        variance = ops.mean(centred * centred, axis=-1, keepdims=True)
        y = centred * ops.rsqrt(variance + ops.cast(self.epsilon, dtype))
        return y * ops.cast(self.gamma, dtype) + ops.cast(self.beta, dtype)

    def get_config(self):
        return {**super().get_config(), "low_precision": self.low_precision}


@keras.saving.register_keras_serializable(package="glu_zoo")
class SegmentALiBi(keras.layers.Layer):
    """The attention bias of MosaicBERT for a (packed) batch, from its segment ids:

        bias[b, h, i, j] = −slope_h·|p_i − p_j|   if s_i = s_j ≠ 0
                         = −∞ (a large negative)  otherwise

    with s = segment_ids (b, L) (0 = padding or empty slot, k ≥ 1 = the k-th
    sequence of the row; a padded batch's 0/1 mask is one segment per row),
    slopes of ALiBi (Press et al. 2021, arXiv 2108.12409; `alibi_slopes`) and
    p_i = #{j < i : s_j = s_i}, the position of token i inside its own
    sequence — so a sequence's bias is the same wherever it sits in a row.
    (The official model takes |i − j| over the padded row; for contiguous
    sequences, right- or left-padded, that is the same.) Returns
    (batch, heads, L, L) in the compute dtype, computed in float32.
    """

    def __init__(self, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads, type(self).__name__)
        self.slopes = alibi_slopes(num_heads).astype("float32")

    def call(self, segment_ids):
        seg = ops.cast(segment_ids, "int32")
        index = ops.arange(ops.shape(seg)[1])
        earlier = ops.less(index[None, :], index[:, None])  # [i, j]: j < i
        same = ops.equal(seg[:, :, None], seg[:, None, :])  # (b, L, L)
        positions = ops.sum(ops.cast(ops.logical_and(same, earlier[None]), "int32"), axis=-1)  # (b, L)
        bias = alibi_bias(self.slopes, positions, positions)
        allowed = ops.logical_and(same, ops.not_equal(seg, 0)[:, :, None])[:, None]
        dtype = self.compute_dtype
        return ops.where(allowed, ops.cast(bias, dtype), ops.cast(large_negative(dtype), dtype))

    def compute_output_spec(self, segment_ids):
        b, length = segment_ids.shape
        return keras.KerasTensor((b, self.num_heads, length, length), dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package="glu_zoo")
class MosaicSelfAttention(keras.layers.Layer):
    """BERT self-attention with one fused projection (MosaicBERT's `Wqkv`):

        [Q | K | V] = x·W_qkv + b_qkv        (each d columns, head-major)
        out = concat_h softmax(Q_h·K_hᵀ/√d_h + bias_h) V_h · W_o + b_o

    Weights `qkv_kernel` (d, 3d), `qkv_bias` (3d,), `output_kernel` (d, d),
    `output_bias` (d,) (the official `Wqkv.weight` and
    `attention.output.dense.weight`, transposed). `bias` (batch, heads, L, L)
    carries ALiBi and the mask (`SegmentALiBi`). Attention runs through
    `glu_zoo.layers.attention.dot_product_attention`; with `dropout` > 0 and
    training, dropout on the probabilities (the plain softmax path).
    """

    def __init__(self, num_heads, dropout=0.0, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.num_heads = check_positive_int("num_heads", num_heads, owner)
        self.dropout = check_dropout(dropout, owner)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or _initializer())
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.hidden_dim = None

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} '{self.name}': inputs must have shape (batch, length, "
                             f"features); got shape {tuple(input_shape)}.")
        d = int(input_shape[-1])
        if d % self.num_heads:
            raise ValueError(f"{type(self).__name__} '{self.name}': the width {d} must be divisible by "
                             f"num_heads={self.num_heads}.")
        self.hidden_dim = d
        init = self.kernel_initializer
        self.qkv_kernel = self.add_weight(name="qkv_kernel", shape=(d, 3 * d), initializer=fresh(init))
        self.qkv_bias = self.add_weight(name="qkv_bias", shape=(3 * d,), initializer="zeros")
        self.output_kernel = self.add_weight(name="output_kernel", shape=(d, d), initializer=fresh(init))
        self.output_bias = self.add_weight(name="output_bias", shape=(d,), initializer="zeros")

    def call(self, inputs, bias, training=None):
        check_floating(inputs.dtype, f"{type(self).__name__} '{self.name}'")
        d, h = self.hidden_dim, self.num_heads
        kernel = ops.reshape(self.qkv_kernel, (d, 3, h, d // h))
        qkv = ops.einsum("btd,dshk->btshk", inputs, kernel) + ops.reshape(self.qkv_bias, (3, h, d // h))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        bias = ops.cast(bias, q.dtype)
        if self.dropout > 0 and training:
            probs = attention_probabilities(q, k, bias, None, None)
            probs = self.dropout_layer(ops.cast(probs, v.dtype), training=training)
            out = ops.einsum("bhts,bshd->bthd", probs, v)
        else:
            out = dot_product_attention(q, k, v, bias=bias)
        y = ops.einsum("bthk,hkd->btd", out, ops.reshape(self.output_kernel, (h, d // h, d)))
        return y + self.output_bias

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="glu_zoo")
class MosaicBERTLayer(keras.layers.Layer):
    """One post-LN MosaicBERT encoder layer (official `BertLayer`):

        a = LN(x + Dropout(SelfAttention(x, bias)))
        y = LN(a + GeGLU(a)·W_o + b_o),  GeGLU(a) = Dropout(GELU(a·W) ⊗ a·V)

    GELU exact (erf); W = the first `intermediate_dim` columns of the fused
    `gated_layers` (no bias), V the rest, as the official code gates.
    Sublayers `attention` (MosaicSelfAttention), `attention_norm`,
    `mlp` (GatedFFN "geglu": kernel_in (d, 2I), kernel_out (I, d)),
    weight `mlp_bias` (d,) (b_o), `mlp_norm`.
    """

    def __init__(self, num_heads, intermediate_dim, dropout=0.1, attention_dropout=0.0, epsilon=1e-12,
                 low_precision_layer_norm=False, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.num_heads = check_positive_int("num_heads", num_heads, owner)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim, owner)
        self.dropout = check_dropout(dropout, owner)
        self.attention_dropout = check_dropout(attention_dropout, owner, "attention_dropout")
        self.epsilon = check_number("epsilon", epsilon, owner, low=0.0)
        self.low_precision_layer_norm = check_bool("low_precision_layer_norm", low_precision_layer_norm, owner)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or _initializer())
        policy = self.dtype_policy
        self.attention = MosaicSelfAttention(num_heads, attention_dropout, self.kernel_initializer, dtype=policy,
                                             name="attention")
        self.attention_output_dropout = keras.layers.Dropout(self.dropout, dtype=policy)
        self.attention_norm = MosaicLayerNorm(low_precision_layer_norm, epsilon=epsilon, dtype=policy,
                                              name="attention_norm")
        self.mlp = GatedFFN(intermediate_dim, variant="geglu", dropout=dropout,
                            kernel_initializer=self.kernel_initializer, dtype=policy, name="mlp")
        self.mlp_norm = MosaicLayerNorm(low_precision_layer_norm, epsilon=epsilon, dtype=policy, name="mlp_norm")

    def build(self, input_shape):
        self.attention.build(input_shape)
        self.attention_norm.build(input_shape)
        self.mlp.build(input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_bias = self.add_weight(name="mlp_bias", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs, bias, training=None):
        a = self.attention(inputs, bias, training=training)
        x = self.attention_norm(inputs + self.attention_output_dropout(a, training=training))
        return self.mlp_norm(x + self.mlp(x, training=training) + self.mlp_bias)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout, "attention_dropout": self.attention_dropout, "epsilon": self.epsilon,
                "low_precision_layer_norm": self.low_precision_layer_norm,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="glu_zoo")
class _LogitBias(keras.layers.Layer):
    """logits + b (b: `bias` (vocabulary_size,), the official `cls.predictions.decoder.bias`)."""

    def __init__(self, vocabulary_size, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size, type(self).__name__)

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(self.vocabulary_size,), initializer="zeros")

    def call(self, logits):
        return ops.cast(logits, self.compute_dtype) + self.bias

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size}


# --- the model ----------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="glu_zoo")
class MosaicBERT(LanguageModel):
    """MosaicBERT for masked language modelling (arXiv 2312.17482):

        x = Dropout(LN(E_word[ids] + E_type[0]))              (no position table)
        x = MosaicBERTLayer(x, ALiBi + mask)   × num_layers     (post-LN, GeGLU)
        logits = LN(GELU(x·W_t + b_t))·E_wordᵀ + b_dec          (tied MLM head)

    ALiBi (−slope_h·|i − j|, Press et al. 2021, arXiv 2108.12409) is the only
    position information; attention is bidirectional within each sequence.
    GELU is exact; the head's LayerNorm has ε = 1e-12 (as the official code,
    whatever `epsilon`); attention logits are scaled by 1/√head_dim.

    Inputs, a dict of (batch, L) arrays:
    - `token_ids`: int ids in [0, vocabulary_size).
    - `padding_mask`: either a boolean (or 0/1) padding mask of an ordinary
      padded batch, or the int segment ids of an unpadded (packed) batch:
      0 = empty slot, k ≥ 1 = the k-th sequence packed in that row (see
      `pack_mlm_batch` / `PackedMLMDataset`, built on
      `glu_zoo.layers.attention.pack_sequences`). A token attends only to its
      own segment, ALiBi positions restart in each segment (`SegmentALiBi`),
      so a packed batch gives the padded batch's logits on every real token.
      Packing is MosaicBERT's unpadding under static shapes: the rows, not
      the padded batch, pay for the matmuls.
    Output: MLM logits (batch, L, vocabulary_size), float32; at padding and
    empty slots the head sees zeros (as the official model's re-padding).

    Args:
        vocabulary_size: 30528 in the paper (BERT's 30522 WordPiece ids padded
            to a multiple of 64).
        hidden_dim, num_layers, num_heads: width, encoder layers, heads.
        intermediate_dim: GeGLU width I (gated_layers is d → 2I).
        type_vocabulary_size: rows of the token-type table (type 0 is added).
        dropout: on the embeddings, attention output and GeGLU hidden units.
        attention_dropout: on the attention probabilities (official default
            0.0, which keeps the fused kernel).
        epsilon: of the LayerNorms.
        low_precision_layer_norm: LayerNorms in the compute dtype (see
            `MosaicLayerNorm`); changes nothing under float32.
        max_sequence_length: longest row accepted (ALiBi extrapolates; this is
            a guard, not a table).

        model = MosaicBERT(384, hidden_dim=128, num_layers=2, num_heads=4, intermediate_dim=256)
        logits = model({"token_ids": ids, "padding_mask": ids != 0})
    """

    def __init__(self, vocabulary_size=30528, hidden_dim=768, num_layers=12, num_heads=12, intermediate_dim=3072,
                 type_vocabulary_size=2, dropout=0.1, attention_dropout=0.0, epsilon=1e-12,
                 low_precision_layer_norm=False, max_sequence_length=512, name=None, **kwargs):
        owner = "MosaicBERT"
        check_positive_int("vocabulary_size", vocabulary_size, owner)
        check_positive_int("hidden_dim", hidden_dim, owner)
        check_positive_int("num_layers", num_layers, owner)
        check_positive_int("num_heads", num_heads, owner)
        if hidden_dim % num_heads:
            raise ValueError(f"{owner}: `hidden_dim` must be divisible by `num_heads`; got hidden_dim={hidden_dim} "
                             f"and num_heads={num_heads}.")
        check_positive_int("intermediate_dim", intermediate_dim, owner)
        check_positive_int("type_vocabulary_size", type_vocabulary_size, owner)
        check_dropout(dropout, owner)
        check_dropout(attention_dropout, owner, "attention_dropout")
        check_number("epsilon", epsilon, owner, low=0.0)
        check_bool("low_precision_layer_norm", low_precision_layer_norm, owner)
        check_positive_int("max_sequence_length", max_sequence_length, owner)

        # === Layers ===
        word_embedding = ReversibleEmbedding(vocabulary_size, hidden_dim, tie_weights=True,
                                             embeddings_initializer=_initializer(), name="word_embedding")
        type_embedding = keras.layers.Embedding(type_vocabulary_size, hidden_dim,
                                                embeddings_initializer=_initializer(), name="token_type_embedding")
        embedding_norm = MosaicLayerNorm(low_precision_layer_norm, epsilon=epsilon, name="embedding_norm")
        encoder_layers = [
            MosaicBERTLayer(num_heads, intermediate_dim, dropout=dropout, attention_dropout=attention_dropout,
                            epsilon=epsilon, low_precision_layer_norm=low_precision_layer_norm,
                            name=f"encoder_layer_{i}") for i in range(num_layers)]
        head_dense = keras.layers.Dense(hidden_dim, kernel_initializer=_initializer(), name="mlm_dense")
        head_norm = MosaicLayerNorm(low_precision_layer_norm, epsilon=1e-12, name="mlm_norm")
        logit_bias = _LogitBias(vocabulary_size, dtype="float32", name="mlm_bias")

        # === Functional Model ===
        inputs = {"token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
                  "padding_mask": keras.Input(shape=(None,), dtype="int32", name="padding_mask")}
        ids, segments = inputs["token_ids"], inputs["padding_mask"]
        x = word_embedding(ids) + type_embedding(ops.zeros_like(ids))
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(embedding_norm(x))
        bias = SegmentALiBi(num_heads, name="alibi")(segments)
        for layer in encoder_layers:
            x = layer(x, bias)
        real = ops.expand_dims(ops.not_equal(segments, 0), -1)
        x = ops.where(real, x, ops.zeros_like(x))
        x = head_norm(ops.gelu(head_dense(x), approximate=False))
        logits = logit_bias(word_embedding(x, reverse=True))
        super().__init__(inputs=inputs, outputs=logits, name=name, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.type_vocabulary_size = type_vocabulary_size
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.epsilon = float(epsilon)
        self.low_precision_layer_norm = low_precision_layer_norm
        self.max_sequence_length = max_sequence_length
        self.word_embedding = word_embedding
        self.type_embedding = type_embedding
        self.embedding_norm = embedding_norm
        self.encoder_layers = encoder_layers
        self.head_dense = head_dense
        self.head_norm = head_norm
        self.logit_bias = logit_bias

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "type_vocabulary_size": self.type_vocabulary_size,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "epsilon": self.epsilon,
            "low_precision_layer_norm": self.low_precision_layer_norm,
            "max_sequence_length": self.max_sequence_length,
        }

    # --- inputs --------------------------------------------------------------------

    def check_inputs(self, x, name=None):
        """A ValueError unless `x` is a dict {"token_ids", "padding_mask"} of
        (batch, L) arrays of one shape, L ≤ max_sequence_length, integer ids in
        [0, vocabulary_size), and a boolean or integer (segment ids ≥ 0)
        padding_mask. Data sets and generators are left to the traced checks."""
        owner = self._owner(name)
        if not check_input_dict(x, INPUTS, owner):
            return
        ids, mask = (x[k] if hasattr(x[k], "shape") else np.asarray(x[k]) for k in INPUTS)
        shape = tuple(ids.shape)
        if len(shape) != 2:
            raise ValueError(f"{owner}: `token_ids` must have shape (batch, sequence); got shape {shape}.")
        check_batch(shape, owner)
        if tuple(mask.shape) != shape:
            raise ValueError(f"{owner}: `padding_mask` must have the shape of token_ids, {shape}; got shape "
                             f"{tuple(mask.shape)}.")
        if shape[1] > self.max_sequence_length:
            raise ValueError(f"{owner}: `token_ids` holds sequences of {shape[1]} tokens; this model takes at most "
                             f"max_sequence_length={self.max_sequence_length}.")
        check_token_ids(ids, self.vocabulary_size, owner)
        dtype = keras.backend.standardize_dtype(mask.dtype)
        if dtype == "bool":
            return
        if not dtype.startswith(("int", "uint")):
            raise ValueError(f"{owner}: `padding_mask` must hold booleans or integer segment ids; got dtype {dtype}.")
        if np.prod(shape):
            low, high = value_range(mask)
            if low < 0:
                raise ValueError(f"{owner}: `padding_mask` must hold 0/1 or segment ids ≥ 0; got values in "
                                 f"[{low}, {high}].")

    # --- several devices -------------------------------------------------------------------

    @staticmethod
    def get_layout_map(device_mesh, model_parallel_dim_name="model"):
        """Model parallelism for `keras.distribution.ModelParallel`: the GeGLU hidden axis (`kernel_in`
        columns, `kernel_out` rows), the fused QKV's columns and the attention output's rows, the MLM
        transform and the word embedding's width sharded over `model_parallel_dim_name`; the rest
        (LayerNorms, biases) replicated. See `GLUTransformer.get_layout_map`."""
        return layout_map(device_mesh, {
            r".*mlp/kernel_in": "in", r".*mlp/kernel_out": "out",
            r".*attention/qkv_kernel": "in", r".*attention/output_kernel": "out",
            r"word_embedding/embeddings": "rows", r"mlm_dense/kernel": "in",
        }, model_parallel_dim_name)

    # --- training and presets -------------------------------------------------------------

    def preset_outputs(self, ids):
        """What a preset records: the logits of the first 16 ids at every position of token ids (batch, L)
        without padding."""
        return self({"token_ids": ids, "padding_mask": np.ones(np.shape(ids), bool)}, training=False)[..., :16]

    # --- official checkpoints -------------------------------------------------------------

    @classmethod
    def from_official(cls, path, architecture="mosaic_bert_base", **overrides):
        """A MosaicBERT with the weights of an official `BertForMaskedLM` state
        dict (mosaicml/examples, examples/benchmarks/bert/src/bert_layers.py):
        a `.bin`/`.pt`/`.pth` (weights-only torch load), `.safetensors`,
        `.npz`, or a dict {name: array}. Names `bert.embeddings.…`,
        `bert.encoder.layer.{i}.attention.self.Wqkv.weight`, …,
        `cls.predictions.decoder.bias` (see `official_weights`); the `model.`
        prefix of Composer's HuggingFaceModel wrapper is removed.
        `cls.predictions.decoder.weight` is the tied word table: optional, and
        if present it must equal `bert.embeddings.word_embeddings.weight`.
        The model is `architecture` (a name of ARCHITECTURES) with
        `overrides`; a missing, unexpected or wrong-shaped weight raises a
        ValueError naming it before anything is assigned.

            model = MosaicBERT.from_official("mosaic-bert-base.pt")
        """
        owner = "MosaicBERT.from_official"
        check_choice("architecture", architecture, sorted(ARCHITECTURES), owner)
        arrays = read_arrays(path, owner)
        if arrays and all(name.startswith("model.") for name in arrays):
            arrays = {name[len("model."):]: value for name, value in arrays.items()}
        _, config = ARCHITECTURES[architecture]
        model = cls(**{**config, **overrides})
        source = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "the checkpoint"
        model.load_official_weights(arrays, source=source)
        return model

    def official_weights(self):
        """{official name: (our variable, how)}: how "T" (a torch Linear weight,
        transposed) or "=" (as is)."""
        names = {
            "bert.embeddings.word_embeddings.weight": (self.word_embedding.embeddings, "="),
            "bert.embeddings.token_type_embeddings.weight": (self.type_embedding.embeddings, "="),
            "bert.embeddings.LayerNorm.weight": (self.embedding_norm.gamma, "="),
            "bert.embeddings.LayerNorm.bias": (self.embedding_norm.beta, "="),
        }
        for i, layer in enumerate(self.encoder_layers):
            p = f"bert.encoder.layer.{i}"
            names.update({
                f"{p}.attention.self.Wqkv.weight": (layer.attention.qkv_kernel, "T"),
                f"{p}.attention.self.Wqkv.bias": (layer.attention.qkv_bias, "="),
                f"{p}.attention.output.dense.weight": (layer.attention.output_kernel, "T"),
                f"{p}.attention.output.dense.bias": (layer.attention.output_bias, "="),
                f"{p}.attention.output.LayerNorm.weight": (layer.attention_norm.gamma, "="),
                f"{p}.attention.output.LayerNorm.bias": (layer.attention_norm.beta, "="),
                f"{p}.mlp.gated_layers.weight": (layer.mlp.kernel_in, "T"),
                f"{p}.mlp.wo.weight": (layer.mlp.kernel_out, "T"),
                f"{p}.mlp.wo.bias": (layer.mlp_bias, "="),
                f"{p}.mlp.layernorm.weight": (layer.mlp_norm.gamma, "="),
                f"{p}.mlp.layernorm.bias": (layer.mlp_norm.beta, "="),
            })
        names.update({
            "cls.predictions.transform.dense.weight": (self.head_dense.kernel, "T"),
            "cls.predictions.transform.dense.bias": (self.head_dense.bias, "="),
            "cls.predictions.transform.LayerNorm.weight": (self.head_norm.gamma, "="),
            "cls.predictions.transform.LayerNorm.bias": (self.head_norm.beta, "="),
            "cls.predictions.decoder.bias": (self.logit_bias.bias, "="),
        })
        return names

    def load_official_weights(self, arrays, source="the checkpoint"):
        """Assign an official state dict ({name: array}, without the `model.` prefix)."""
        owner = "MosaicBERT.from_official"
        arrays = dict(arrays)
        names = self.official_weights()
        tied = arrays.pop("cls.predictions.decoder.weight", None)
        words = arrays.get("bert.embeddings.word_embeddings.weight")
        if tied is not None and words is not None and not (
                tied.shape == words.shape and np.array_equal(np.asarray(tied), np.asarray(words))):
            raise ValueError(f"{owner}: {source}: cls.predictions.decoder.weight {tied.shape} differs from "
                             f"bert.embeddings.word_embeddings.weight {words.shape}; MosaicBERT ties them.")
        expected = {name: tuple(v.shape)[::-1] if how == "T" else tuple(v.shape) for name, (v, how) in names.items()}
        check_arrays(arrays, expected, owner, f"{source} does not fit {self.name} ({self.num_layers} layers, "
                                              f"hidden {self.hidden_dim}, intermediate {self.intermediate_dim})")
        for name, (variable, how) in names.items():
            value = np.asarray(arrays[name], "float32")
            variable.assign(value.T if how == "T" else value)


# --- unpadding on the host -------------------------------------------------------------

def _gather_rows(x, index):
    """NumPy: x (batch, L, ...) flattened, gathered at `index` (any shape, −1 → 0)."""
    flat = np.asarray(x).reshape(-1, *np.shape(x)[2:])
    out = flat[np.maximum(index, 0)]
    return np.where((index >= 0).reshape(*index.shape, *([1] * (out.ndim - index.ndim))), out,
                    np.zeros((), out.dtype))


def pack_mlm_batch(x, y=None, sample_weight=None, num_rows=None, row_multiple=8, row_length=None):
    """Pack a padded masked-LM batch into rows for MosaicBERT (NumPy, on the host).

    `x` = {"token_ids", "padding_mask" (bool, True on real tokens)} (batch, L),
    `y` and `sample_weight` (batch, L) or None. The sequences are placed by
    `glu_zoo.layers.attention.pack_sequences` (first-fit decreasing, several
    per row, each contiguous) into rows of `row_length` (default L) slots.
    `num_rows` None: the rows needed, rounded up to a multiple of
    `row_multiple` (so that a compiled train step sees few shapes) but never
    more than max(batch, needed); an int: exactly that many (ValueError if too
    few). Returns `(x_packed, y_packed, sample_weight_packed, packing)`:
    x_packed = {"token_ids" int32 (rows, row_length) (0 in empty slots),
    "padding_mask" int32 segment ids}, y and sample_weight moved alike (0 in
    empty slots; None stays None), and the `Packing` for `unpack_predictions`.

        xp, yp, swp, packing = pack_mlm_batch(x, y, sw)
        logits = unpack_predictions(model.predict_on_batch(xp), packing)
    """
    owner = "pack_mlm_batch"
    if not isinstance(x, dict) or set(x) != set(INPUTS):
        raise ValueError(f"{owner}: `x` must be a dict with keys token_ids, padding_mask; got "
                         f"{sorted(x) if isinstance(x, dict) else type(x).__name__}.")
    check_positive_int("row_multiple", row_multiple, owner)
    mask = np.asarray(x["padding_mask"])
    ids = np.asarray(x["token_ids"])
    if ids.shape != mask.shape or ids.ndim != 2:
        raise ValueError(f"{owner}: `token_ids` and `padding_mask` must have one shape (batch, L); got "
                         f"{ids.shape} and {mask.shape}.")
    if num_rows is None:
        needed = pack_sequences(mask, row_length).num_rows
        rounded = -(-needed // row_multiple) * row_multiple
        num_rows = min(rounded, max(needed, mask.shape[0]))
    packing = pack_sequences(mask, row_length, num_rows)
    xp = {"token_ids": _gather_rows(ids, packing.source).astype("int32"),
          "padding_mask": packing.segment_ids.astype("int32")}
    yp = None if y is None else _gather_rows(y, packing.source)
    swp = None if sample_weight is None else _gather_rows(sample_weight, packing.source)
    return xp, yp, swp, packing


def unpack_predictions(outputs, packing):
    """(rows, row_length, ...) outputs of a packed batch → (batch, L, ...) NumPy,
    each real token back in its place, zeros at padding."""
    outputs = np.asarray(ops.convert_to_numpy(outputs) if ops.is_tensor(outputs) else outputs)
    if outputs.shape[:2] != packing.segment_ids.shape:
        raise ValueError(f"unpack_predictions: `outputs` must have shape (rows, row_length, ...) = "
                         f"{packing.segment_ids.shape} + (...); got shape {outputs.shape}.")
    return _gather_rows(outputs, packing.target)


class PackedMLMDataset(keras.utils.PyDataset):
    """The batches of a padded masked-LM PyDataset (such as
    `glu_zoo.data.text.MaskedLMDataset`: (x, y, sample_weight) with x =
    {"token_ids", "padding_mask"}) packed for MosaicBERT by `pack_mlm_batch`:
    batch i is `pack_mlm_batch(*dataset[i], num_rows, row_multiple,
    row_length)[:3]`, ready for `fit`. `on_epoch_end` is passed on (the
    epoch decides the wrapped batches). `packing(i)` gives batch i's
    `Packing`.

    Keras averages a weighted loss over every slot of the batch (rows × L),
    so the same masked tokens give a packed batch a loss batch/rows times the
    padded one's (a larger step under the same optimizer); compare losses
    per selected token, or scale the learning rate.

        train = PackedMLMDataset(MaskedLMDataset(text, tokenizer, 32))
        model.fit(train, epochs=3)
    """

    def __init__(self, dataset, num_rows=None, row_multiple=8, row_length=None, **kwargs):
        super().__init__(**kwargs)
        owner = "PackedMLMDataset"
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise ValueError(f"{owner}: `dataset` must be an indexable with a length (a PyDataset); got "
                             f"{type(dataset).__name__}.")
        if num_rows is not None:
            check_positive_int("num_rows", num_rows, owner)
        check_positive_int("row_multiple", row_multiple, owner)
        if row_length is not None:
            check_positive_int("row_length", row_length, owner)
        self.dataset = dataset
        self.num_rows = num_rows
        self.row_multiple = row_multiple
        self.row_length = row_length

    def __len__(self):
        return len(self.dataset)

    def _packed(self, index):
        batch = self.dataset[index]
        x, y, sw = (tuple(batch) + (None, None))[:3]
        return pack_mlm_batch(x, y, sw, self.num_rows, self.row_multiple, self.row_length)

    def __getitem__(self, index):
        xp, yp, swp, _ = self._packed(index)
        return tuple(v for v in (xp, yp, swp) if v is not None)

    def packing(self, index):
        return self._packed(index)[3]

    def on_epoch_end(self):
        if hasattr(self.dataset, "on_epoch_end"):
            self.dataset.on_epoch_end()


ARCHITECTURES = {
    # The paper's MosaicBERT-Base: 137,400,384 weights (BERT-base's 110M plus the GeGLU's third matrix,
    # 12 × 768 × 3072 = 28.3M, less the 0.4M of the dropped position table).
    "mosaic_bert_base": (MosaicBERT, dict(vocabulary_size=30528, hidden_dim=768, num_layers=12, num_heads=12,
                                          intermediate_dim=3072, max_sequence_length=512)),
    # The CPU recipe's size: the byte vocabulary of glu_zoo.data.text (384 ids).
    "mosaic_bert_tiny": (MosaicBERT, dict(vocabulary_size=384, hidden_dim=128, num_layers=2, num_heads=4,
                                          intermediate_dim=256, max_sequence_length=128)),
}
