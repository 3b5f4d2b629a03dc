"""The T5-style GLU Transformer of Shazeer 2020, "GLU Variants Improve
Transformer" (arXiv 2002.05202): T5 (Raffel et al. 2019, arXiv 1910.10683)
with any FFN or GLU variant, as an encoder–decoder or a decoder-only causal
LM; loads Hugging Face T5 and T5 v1.1 checkpoints (`from_hf`)."""

import json
import os

import keras
import numpy as np
from keras import ops

from glu_zoo.layers.checks import check_bool, check_dropout, check_number, check_positive_int
from glu_zoo.layers.embedding import ReversibleEmbedding
from glu_zoo.layers.ffn import FFN_ACTIVATIONS, GatedFFN
from glu_zoo.layers.transformer import T5Block, check_mlp
from glu_zoo.models.base import LanguageModel, check_batch, check_input_dict, check_token_ids, layout_map
from glu_zoo.models.checkpoints import check_arrays, read_arrays

__all__ = ["GLUTransformer", "ARCHITECTURES"]

ENCODER_DECODER_INPUTS = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask")
DECODER_ONLY_INPUTS = ("token_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="glu_zoo")
class GLUTransformer(LanguageModel):
    """T5 with any FFN: pre-norm RMSNorm blocks without biases, T5's relative
    position bias (one table per stack, in its first block), and the token
    embedding shared by the encoder, the decoder and (tied) the output:

        encoder:  h = RMSNorm(Blocks_enc(E[x]))                  (bidirectional)
        decoder:  s = RMSNorm(Blocks_dec(E[y], h))               (causal, cross-attends to h)
        logits  = (s · d^−½) · Eᵀ      tied (T5)  |  s · W_out   untied (T5 v1.1)

    The FFN of every block is `FFN(hidden_dim, ffn)` for relu, gelu, swish, …
    or `GatedFFN(hidden_dim, ffn)` for glu, bilinear, reglu, geglu,
    geglu_tanh (T5 v1.1's gated-gelu), swiglu, …. `hidden_dim=None` is
    4·model_dim for a two-matrix FFN and ⌊2/3·4·model_dim⌋ for a GLU, so all
    variants hold the same number of weights (the paper's 3072 and 2048 at
    base size).

    Inputs (KerasHub's T5 names), a dict of (batch, T) arrays:
    `encoder_token_ids`, `encoder_padding_mask`, `decoder_token_ids`,
    `decoder_padding_mask` (True on real tokens); output the decoder's logits
    (batch, T_dec, vocabulary_size). With `decoder_only=True` one causal stack
    of the same blocks (no cross-attention): inputs `token_ids`,
    `padding_mask`, output the next-token logits. `generate()` decodes with
    cached keys and values, greedily or by sampling.

    Args:
        vocabulary_size: token ids in [0, vocabulary_size); id 0 is padding
            and the decoder's start token, as in T5.
        model_dim: token width d.
        num_layers: blocks of the encoder (or of the decoder-only stack).
        num_heads: attention heads.
        key_dim: width of each head; None = model_dim // num_heads.
        ffn: an FFN activation or a GatedFFN variant.
        hidden_dim: the FFN's hidden width d_ff (see above for None).
        num_decoder_layers: blocks of the decoder; None = num_layers.
        decoder_only: one causal stack, a language model.
        tie_embeddings: output projection = the token embedding (T5).
        num_buckets, max_distance: T5's relative position buckets (32, 128).
        max_sequence_length: longest input accepted (None: any).
        dropout: rate in [0, 1) (T5 pre-trains without).
        epsilon: of the RMSNorms.

        model = GLUTransformer(384, model_dim=64, num_layers=2, num_heads=4, ffn="swiglu")
        logits = model({"encoder_token_ids": x, "encoder_padding_mask": x > 0,
                        "decoder_token_ids": y, "decoder_padding_mask": y > 0})
    """

    def __init__(self, vocabulary_size, model_dim, num_layers, num_heads, key_dim=None, ffn="geglu", hidden_dim=None,
                 num_decoder_layers=None, decoder_only=False, tie_embeddings=True, num_buckets=32, max_distance=128,
                 max_sequence_length=None, dropout=0.0, epsilon=1e-6, name=None, **kwargs):
        owner = "GLUTransformer"
        check_positive_int("vocabulary_size", vocabulary_size, owner)
        check_positive_int("model_dim", model_dim, owner)
        check_positive_int("num_layers", num_layers, owner)
        check_positive_int("num_heads", num_heads, owner)
        if key_dim is None:
            if model_dim % num_heads:
                raise ValueError(f"{owner}: `model_dim` must be divisible by `num_heads` when key_dim is None; "
                                 f"got model_dim={model_dim} and num_heads={num_heads}.")
            key_dim = model_dim // num_heads
        check_positive_int("key_dim", key_dim, owner)
        check_mlp(ffn, owner)
        if hidden_dim is None:
            hidden_dim = 4 * model_dim if ffn in FFN_ACTIVATIONS else GatedFFN.matched_hidden_dim(4 * model_dim)
        check_positive_int("hidden_dim", hidden_dim, owner)
        check_bool("decoder_only", decoder_only, owner)
        if num_decoder_layers is not None:
            check_positive_int("num_decoder_layers", num_decoder_layers, owner)
            if decoder_only:
                raise ValueError(f"{owner}: `num_decoder_layers` is for an encoder-decoder; a decoder-only model "
                                 f"has `num_layers` blocks (got num_decoder_layers={num_decoder_layers}).")
        check_bool("tie_embeddings", tie_embeddings, owner)
        if max_sequence_length is not None:
            check_positive_int("max_sequence_length", max_sequence_length, owner)
        check_dropout(dropout, owner)
        check_number("epsilon", epsilon, owner, low=0.0)
        decoder_layers = num_layers if decoder_only else (num_decoder_layers or num_layers)

        # === Layers ===
        embedding = ReversibleEmbedding(vocabulary_size, model_dim, tie_weights=tie_embeddings,
                                        logit_scale=model_dim ** -0.5 if tie_embeddings else 1.0,
                                        embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
                                        name="token_embedding")
        block = dict(hidden_dim=model_dim, num_heads=num_heads, key_dim=key_dim, mlp=ffn, mlp_dim=hidden_dim,
                     num_buckets=num_buckets, max_distance=max_distance, dropout=dropout, epsilon=epsilon)
        encoder_blocks = [] if decoder_only else [
            T5Block(**block, relative_position_bias=i == 0, name=f"encoder_block_{i}") for i in range(num_layers)]
        decoder_blocks = [
            T5Block(**block, causal=True, cross_attention=not decoder_only, relative_position_bias=i == 0,
                    name=f"decoder_block_{i}") for i in range(decoder_layers)]
        encoder_norm = None if decoder_only else keras.layers.RMSNormalization(epsilon=epsilon, name="encoder_norm")
        decoder_norm = keras.layers.RMSNormalization(epsilon=epsilon, name="decoder_norm")
        drop = keras.layers.Dropout(dropout, name="dropout")

        # === Functional Model ===
        names = DECODER_ONLY_INPUTS if decoder_only else ENCODER_DECODER_INPUTS
        inputs = {key: keras.Input(shape=(None,), dtype="int32" if key.endswith("ids") else "bool", name=key)
                  for key in names}
        encoder_outputs = encoder_mask = None
        if not decoder_only:
            encoder_mask = inputs["encoder_padding_mask"]
            x, bias = drop(embedding(inputs["encoder_token_ids"])), None
            for layer in encoder_blocks:
                x, bias = layer(x, position_bias=bias, padding_mask=encoder_mask)
            encoder_outputs = drop(encoder_norm(x))
        prefix = "" if decoder_only else "decoder_"
        x, bias = drop(embedding(inputs[prefix + "token_ids"])), None
        for layer in decoder_blocks:
            x, bias = layer(x, position_bias=bias, padding_mask=inputs[prefix + "padding_mask"],
                            encoder_outputs=encoder_outputs, encoder_padding_mask=encoder_mask)
        logits = embedding(drop(decoder_norm(x)), reverse=True)
        super().__init__(inputs=inputs, outputs=logits, name=name, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.model_dim = model_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.ffn = ffn
        self.hidden_dim = hidden_dim
        self.num_decoder_layers = num_decoder_layers
        self.decoder_only = decoder_only
        self.tie_embeddings = tie_embeddings
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.max_sequence_length = max_sequence_length
        self.dropout = float(dropout)
        self.epsilon = float(epsilon)
        self.token_embedding = embedding
        self.encoder_blocks = encoder_blocks
        self.decoder_blocks = decoder_blocks
        self.encoder_norm = encoder_norm
        self.decoder_norm = decoder_norm
        self._input_keys = names

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "model_dim": self.model_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "ffn": self.ffn,
            "hidden_dim": self.hidden_dim,
            "num_decoder_layers": self.num_decoder_layers,
            "decoder_only": self.decoder_only,
            "tie_embeddings": self.tie_embeddings,
            "num_buckets": self.num_buckets,
            "max_distance": self.max_distance,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
            "epsilon": self.epsilon,
        }

    # --- inputs --------------------------------------------------------------------

    def check_inputs(self, x, name=None):
        """A ValueError unless `x` is a dict of exactly the input names, each
        (batch, T) with one batch size, integer token ids in
        [0, vocabulary_size), masks of their ids' shape, and T at most
        max_sequence_length. Data sets and generators are left to the
        traced checks."""
        owner = self._owner(name)
        if not check_input_dict(x, self._input_keys, owner):
            return
        batch = None
        for key in self._input_keys:
            value = x[key] if hasattr(x[key], "shape") else np.asarray(x[key])
            shape = tuple(value.shape)
            if len(shape) != 2:
                raise ValueError(f"{owner}: `{key}` must have shape (batch, sequence); got shape {shape}.")
            check_batch(shape, owner)
            if batch is not None and shape[0] != batch:
                raise ValueError(f"{owner}: every input must have the same batch size; `{key}` has shape {shape}, "
                                 f"the others batch {batch}.")
            batch = shape[0]
            if key.endswith("padding_mask"):
                ids = x[key.replace("padding_mask", "token_ids")]
                if tuple(np.shape(ids)) != shape:
                    raise ValueError(f"{owner}: `{key}` must have the shape of its token ids, "
                                     f"{tuple(np.shape(ids))}; got shape {shape}.")
                continue
            if self.max_sequence_length is not None and shape[1] > self.max_sequence_length:
                raise ValueError(f"{owner}: `{key}` holds sequences of {shape[1]} tokens; this model takes at most "
                                 f"max_sequence_length={self.max_sequence_length}.")
            check_token_ids(value, self.vocabulary_size, owner, key)

    # --- several devices ----------------------------------------------------------------

    @staticmethod
    def get_layout_map(device_mesh, model_parallel_dim_name="model"):
        """Model parallelism for `keras.distribution.ModelParallel` (Megatron's split): the FFN hidden
        axis (`kernel_in` columns, `kernel_out` rows) and the attention heads (query/key/value columns,
        output rows) sharded over the mesh's `model_parallel_dim_name` axis, the embedding along its
        width; the rest replicated. Combine with data parallelism through the mesh's other axis.

            mesh = keras.distribution.DeviceMesh((2, 4), ["batch", "model"], keras.distribution.list_devices())
            keras.distribution.set_distribution(keras.distribution.ModelParallel(
                layout_map=GLUTransformer.get_layout_map(mesh), batch_dim_name="batch"))
        """
        return layout_map(device_mesh, {
            r".*ffn/kernel_in": "in", r".*ffn/kernel_out": "out",
            r".*attention/(query|key|value)_kernel": "in", r".*attention/output_kernel": "out",
            r"token_embedding/embeddings": "rows", r"token_embedding/reverse_embeddings": "out",
        }, model_parallel_dim_name)

    # --- training and presets ----------------------------------------------------------

    def preset_outputs(self, ids):
        """What a preset records: the logits of the first 16 ids at every position, for token ids (batch, T)
        fed to the encoder and the decoder alike (or to the decoder-only stack), no padding."""
        mask = np.ones(np.shape(ids), bool)
        if self.decoder_only:
            x = {"token_ids": ids, "padding_mask": mask}
        else:
            x = {"encoder_token_ids": ids, "encoder_padding_mask": mask, "decoder_token_ids": ids,
                 "decoder_padding_mask": mask}
        return self(x, training=False)[..., :16]

    # --- generation ------------------------------------------------------------------

    def _logits(self, x):
        return self.token_embedding(self.decoder_norm(x), reverse=True)

    def _encode(self, token_ids, padding_mask):
        x, bias = self.token_embedding(token_ids), None
        for layer in self.encoder_blocks:
            x, bias = layer(x, position_bias=bias, padding_mask=padding_mask)
        return self.encoder_norm(x)

    def init_cache(self, batch_size, max_length):
        """Zero key/value caches, one (batch, 2, max_length, heads, key_dim) per decoder block."""
        shape = (batch_size, 2, max_length, self.num_heads, self.key_dim)
        return [ops.zeros(shape, self.compute_dtype) for _ in self.decoder_blocks]

    def decode_step(self, token_ids, caches, index, cache_mask, encoder_outputs=None, encoder_padding_mask=None):
        """Logits (batch, T, vocab) of `token_ids` (batch, T) placed at positions
        index..index+T−1, attending to the cached ones; returns (logits, caches).
        `cache_mask` (batch, max_length) marks the cache slots holding real tokens."""
        x, bias, new = self.token_embedding(token_ids), None, []
        for layer, cache in zip(self.decoder_blocks, caches):
            x, bias, cache = layer(x, position_bias=bias, padding_mask=cache_mask, encoder_outputs=encoder_outputs,
                                   encoder_padding_mask=encoder_padding_mask, cache=cache, cache_update_index=index)
            new.append(cache)
        return self._logits(x), new

    def generate(self, inputs, max_length=32, strategy="greedy", temperature=1.0, top_k=None, seed=None,
                 end_token_id=1, start_token_id=0):
        """Continue each sequence token by token with cached keys and values.

        Encoder-decoder: `inputs` is a dict with `encoder_token_ids` and
        `encoder_padding_mask`; the decoder starts from `start_token_id` and
        returns (batch, max_length) generated ids (after the start token).
        Decoder-only: `inputs` is a dict with `token_ids` and `padding_mask`
        (prompts, right-padded) or an int array of prompts without padding;
        returns (batch, max_length) ids holding each prompt followed by its
        continuation. After `end_token_id` a row holds 0 (padding).
        `strategy` "greedy" (argmax) or "sample" (softmax(logits /
        temperature), restricted to the `top_k` most likely when given;
        `seed` makes it repeatable). Runs eagerly, one step per token.
        """
        owner = f"{type(self).__name__}.generate"
        if strategy not in ("greedy", "sample"):
            raise ValueError(f"{owner}: unknown `strategy` {strategy!r}; allowed: 'greedy', 'sample'.")
        check_positive_int("max_length", max_length, owner)
        check_number("temperature", temperature, owner, low=0.0)
        if top_k is not None:
            check_positive_int("top_k", top_k, owner)
        if self.max_sequence_length is not None and max_length > self.max_sequence_length:
            raise ValueError(f"{owner}: `max_length` {max_length} exceeds max_sequence_length="
                             f"{self.max_sequence_length}.")
        if self.decoder_only:
            if not isinstance(inputs, dict):
                ids = np.asarray(inputs)
                inputs = {"token_ids": ids, "padding_mask": np.ones(ids.shape, bool)}
            self.check_inputs(inputs, "generate inputs")
            prompt = ops.convert_to_numpy(inputs["token_ids"]).astype("int32")
            prompt_length = ops.convert_to_numpy(inputs["padding_mask"]).astype(bool).sum(axis=1)
            if prompt.shape[1] > max_length:
                raise ValueError(f"{owner}: prompts of {prompt.shape[1]} tokens do not fit max_length={max_length}.")
            encoder_outputs = encoder_mask = None
            batch = prompt.shape[0]
        else:
            missing = [k for k in ENCODER_DECODER_INPUTS[:2] if not isinstance(inputs, dict) or k not in inputs]
            if missing:
                raise ValueError(f"{owner}: `inputs` must be a dict with encoder_token_ids and encoder_padding_mask; "
                                 f"missing {', '.join(missing)}.")
            ids = inputs["encoder_token_ids"]
            encoder_mask = inputs["encoder_padding_mask"]
            self.check_inputs({**{k: inputs[k] for k in ENCODER_DECODER_INPUTS[:2]},
                               "decoder_token_ids": np.zeros((np.shape(ids)[0], 1), "int32"),
                               "decoder_padding_mask": np.ones((np.shape(ids)[0], 1), bool)}, "generate inputs")
            encoder_outputs = self._encode(ops.convert_to_tensor(ids, "int32"), ops.convert_to_tensor(encoder_mask))
            batch = np.shape(ids)[0]
            prompt = np.full((batch, 1), start_token_id, "int32")
            prompt_length = np.ones(batch, int)
            max_length += 1  # the start token
        seeds = keras.random.SeedGenerator(seed) if strategy == "sample" else None
        tokens = np.zeros((batch, max_length), "int32")
        tokens[:, :prompt.shape[1]] = prompt
        caches = self.init_cache(batch, max_length)
        cache_mask = np.zeros((batch, max_length), bool)
        done = np.zeros(batch, bool)
        for t in range(max_length - 1):
            cache_mask[:, t] = True
            logits, caches = self.decode_step(ops.convert_to_tensor(tokens[:, t:t + 1]), caches, t,
                                              ops.convert_to_tensor(cache_mask), encoder_outputs, encoder_mask)
            logits = logits[:, 0]
            if strategy == "greedy":
                chosen = ops.convert_to_numpy(ops.argmax(logits, axis=-1))
            else:
                logits = ops.cast(logits, "float32") / temperature
                if top_k is not None:
                    kth = ops.top_k(logits, min(top_k, self.vocabulary_size))[0][:, -1:]
                    logits = ops.where(logits < kth, -1e9, logits)
                chosen = ops.convert_to_numpy(keras.random.categorical(logits, 1, seed=seeds))[:, 0]
            chosen = np.where(done, 0, chosen).astype("int32")
            generating = t + 1 >= prompt_length  # rows whose prompt is used up
            tokens[:, t + 1] = np.where(generating, chosen, tokens[:, t + 1])
            done |= generating & (chosen == end_token_id)
            if done.all():
                break
        return tokens if self.decoder_only else tokens[:, 1:]

    # --- Hugging Face T5 checkpoints ---------------------------------------------------

    @classmethod
    def from_hf(cls, path, **overrides):
        """The T5 of a local Hugging Face folder (`config.json` and
        `model.safetensors` or `pytorch_model.bin`, the names of transformers'
        T5 implementation), with its weights.

        T5 ("relu", tied embeddings with the d^−½ logit scale) and T5 v1.1
        ("gated-gelu" = GEGLU with tanh-GELU, untied `lm_head`) are read, as
        are "gated-relu" (ReGLU), "gated-silu" (SwiGLU) and "gelu". Every weight
        must be there with its shape; a missing, unexpected or wrong-shaped
        one raises a ValueError naming it, before anything is assigned. The
        checkpoint is read as data (safetensors with NumPy, or a weights-only
        torch load); nothing is downloaded.

            model = GLUTransformer.from_hf("t5-v1_1-small/")
            logits = model({"encoder_token_ids": ids, "encoder_padding_mask": ids > 0,
                            "decoder_token_ids": dec, "decoder_padding_mask": dec_mask})
        """
        owner = "GLUTransformer.from_hf"
        path = os.fspath(path)
        config_path = os.path.join(path, "config.json")
        if not os.path.isfile(config_path):
            raise ValueError(f"{owner}: {path!r} has no config.json; expected a Hugging Face T5 folder.")
        with open(config_path) as f:
            try:
                hf = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"{owner}: {config_path} is not JSON: {error}") from None
        config = _config_from_hf(hf, owner)
        config.update(overrides)
        for name in ("model.safetensors", "pytorch_model.bin"):
            weights = os.path.join(path, name)
            if os.path.isfile(weights):
                break
        else:
            raise ValueError(f"{owner}: {path!r} has neither model.safetensors nor pytorch_model.bin (sharded "
                             f"checkpoints: merge them into one file first).")
        arrays = read_arrays(weights, owner)
        model = cls(**config)
        model.load_hf_weights(arrays, source=weights)
        return model

    def hf_weights(self):
        """{transformers T5 name: (our variable(s), how)}: how is "T" (transpose
        a torch Linear weight), "=" (as is) or "wi" (wi_0, wi_1 → one kernel)."""
        names = {"shared.weight": ([self.token_embedding.embeddings], "=")}
        if not self.tie_embeddings:
            names["lm_head.weight"] = ([self.token_embedding.reverse_embeddings], "T")
        stacks = [("decoder", self.decoder_blocks, self.decoder_norm)]
        if not self.decoder_only:
            stacks.insert(0, ("encoder", self.encoder_blocks, self.encoder_norm))
        for stack, blocks, norm in stacks:
            for i, block in enumerate(blocks):
                prefix = f"{stack}.block.{i}.layer"
                attentions = [("SelfAttention", block.self_attention, block.self_attention_norm)]
                if block.cross_attention_enabled:
                    attentions.append(("EncDecAttention", block.cross_attention, block.cross_attention_norm))
                for j, (kind, attention, attention_norm) in enumerate(attentions):
                    for letter, weight in (("q", "query"), ("k", "key"), ("v", "value"), ("o", "output")):
                        names[f"{prefix}.{j}.{kind}.{letter}.weight"] = ([getattr(attention, f"{weight}_kernel")], "T")
                    names[f"{prefix}.{j}.layer_norm.weight"] = ([attention_norm.scale], "=")
                    if kind == "SelfAttention" and block.relative_position_bias is not None:
                        names[f"{prefix}.{j}.{kind}.relative_attention_bias.weight"] = (
                            [block.relative_position_bias.embeddings], "=")
                j = len(attentions)
                if self.ffn in FFN_ACTIVATIONS:
                    names[f"{prefix}.{j}.DenseReluDense.wi.weight"] = ([block.ffn.kernel_in], "T")
                else:
                    names[f"{prefix}.{j}.DenseReluDense.wi_0.weight"] = ([block.ffn.kernel_in], "wi0")
                    names[f"{prefix}.{j}.DenseReluDense.wi_1.weight"] = ([block.ffn.kernel_in], "wi1")
                names[f"{prefix}.{j}.DenseReluDense.wo.weight"] = ([block.ffn.kernel_out], "T")
                names[f"{prefix}.{j}.layer_norm.weight"] = ([block.ffn_norm.scale], "=")
            names[f"{stack}.final_layer_norm.weight"] = ([norm.scale], "=")
        return names

    def load_hf_weights(self, arrays, source="the checkpoint"):
        """Assign a transformers T5 state dict ({name: array}) to this model."""
        owner = "GLUTransformer.from_hf"
        arrays = dict(arrays)
        names = self.hf_weights()
        expected = {}
        for name, ([variable], how) in names.items():
            shape = tuple(variable.shape)
            if how == "T":
                shape = shape[::-1]
            elif how in ("wi0", "wi1"):
                shape = (shape[1] // 2, shape[0])
            expected[name] = shape
        # Copies of the shared table that transformers may write, and the
        # unused cross-attention bias of old checkpoints (transformers skips it).
        embedding = arrays.get("shared.weight")
        for alias in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight") + (
                ("lm_head.weight",) if self.tie_embeddings else ()):
            if alias in arrays and embedding is not None and np.array_equal(arrays[alias], embedding):
                del arrays[alias]
        arrays.pop("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight", None)
        check_arrays(arrays, expected, owner, f"{source} does not fit {self.name} ({self.ffn}, "
                                              f"{len(self.decoder_blocks)} decoder blocks)")
        for name, ([variable], how) in names.items():
            value = np.asarray(arrays[name], "float32")
            if how == "T":
                variable.assign(value.T)
            elif how == "=":
                variable.assign(value)
        for name, ([variable], how) in names.items():
            if how == "wi0":
                variable.assign(np.concatenate(
                    [np.asarray(arrays[name], "float32").T, np.asarray(arrays[name.replace("wi_0", "wi_1")],
                                                                        "float32").T], axis=1))


_HF_FFN = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh", "silu": "swish", "swish": "swish",
           "gated-gelu": "geglu_tanh", "gated-gelu_new": "geglu_tanh", "gated-relu": "reglu", "gated-silu": "swiglu",
           "gated-swish": "swiglu"}


def _config_from_hf(hf, owner):
    """GLUTransformer arguments of a transformers T5Config dict."""
    proj = hf.get("feed_forward_proj", "relu")
    if proj not in _HF_FFN:
        raise ValueError(f"{owner}: config.json has feed_forward_proj {proj!r}; readable: {', '.join(_HF_FFN)}.")
    try:
        return dict(vocabulary_size=int(hf["vocab_size"]), model_dim=int(hf["d_model"]),
                    num_layers=int(hf["num_layers"]), num_heads=int(hf["num_heads"]), key_dim=int(hf["d_kv"]),
                    ffn=_HF_FFN[proj], hidden_dim=int(hf["d_ff"]),
                    num_decoder_layers=int(hf.get("num_decoder_layers") or hf["num_layers"]),
                    tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
                    num_buckets=int(hf.get("relative_attention_num_buckets", 32)),
                    max_distance=int(hf.get("relative_attention_max_distance", 128)),
                    epsilon=float(hf.get("layer_norm_epsilon", 1e-6)))
    except KeyError as error:
        raise ValueError(f"{owner}: config.json lacks {error.args[0]!r}, which a T5 config has.") from None


ARCHITECTURES = {
    # The GLU-variant study's size (CPU recipes): the byte vocabulary of glu_zoo.data.text (384 ids).
    "glu_transformer_tiny": (GLUTransformer, dict(vocabulary_size=384, model_dim=64, num_layers=2, num_heads=4,
                                                  ffn="geglu")),
    # T5-small and T5-base (Raffel et al.; Shazeer's Table 1 is at base size), T5's 32,128 ids.
    "glu_transformer_small": (GLUTransformer, dict(vocabulary_size=32128, model_dim=512, num_layers=6, num_heads=8,
                                                   key_dim=64, ffn="geglu")),
    "glu_transformer_base": (GLUTransformer, dict(vocabulary_size=32128, model_dim=768, num_layers=12, num_heads=12,
                                                  key_dim=64, ffn="geglu")),
}
