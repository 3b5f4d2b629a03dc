"""The GLU logit lens: value vectors read through the unembedding, neuron
search, neuron ablation and the attention heads that drive chosen neurons.

After "Understanding the self-verification geometry of reasoning models"
(arXiv 2504.14379). A GLU feed-forward layer writes

    FFN(x) = Σ_j h_j(x) · o_j,      h_j(x) = act(x·w_j) · (x·v_j),

where w_j, v_j are column j of the gate (W) and linear (V) halves of
`kernel_in` and o_j, row j of `kernel_out`, is neuron j's *value vector*: the
fixed direction it adds to the residual stream. Projected through the
unembedding U (d × vocabulary), o_j·U says which tokens the neuron promotes.

For `GLUTransformer` (T5 blocks, encoder and decoder stacks) and `MosaicBERT`.
All analysis outputs are NumPy float64.

    lens = logit_lens(model, k=5, tokenizer=ByteTokenizer())
    found = find_neurons(model, tokens=ByteTokenizer().encode("0123456789"))
    with ablate(model, found[:10]):
        logits = model.predict_on_batch(x)
"""

import contextlib
import math
import os

import keras
import numpy as np
from keras import ops

from glu_zoo.layers.checks import check_positive_int
from glu_zoo.layers.ffn import GatedFFN
from glu_zoo.plotting import pyplot

__all__ = ["glu_layers", "unembedding", "value_vectors", "logit_lens", "find_neurons", "ablate",
           "ablation_effect", "rank_heads", "plot_top_tokens", "report", "token_strings", "DEFAULT_TOKEN_TEXT"]

DEFAULT_TOKEN_TEXT = "0123456789"
"""The default token set of `report`'s neuron search: the digits (one byte token each)."""

_CHUNK = 1 << 22  # entries of one (neurons × vocabulary) block of logits


# --- the model's structure ----------------------------------------------------------

def _numpy(variable):
    return np.asarray(ops.convert_to_numpy(variable), dtype=np.float64)


def _kind(model, owner):
    from glu_zoo.models.glu_transformer import GLUTransformer
    from glu_zoo.models.mosaic_bert import MosaicBERT

    if isinstance(model, GLUTransformer):
        return "t5"
    if isinstance(model, MosaicBERT):
        return "mosaic"
    raise ValueError(f"{owner}: `model` must be a GLUTransformer or a MosaicBERT; got {type(model).__name__}.")


def _heads_of(attention, label, kind, input_scale):
    """[(label, head, W_V^h (d_in, dk), W_O^h (dk, d), input scale or None)] of one attention layer."""
    if kind == "mosaic":
        d, h = attention.hidden_dim, attention.num_heads
        dk = d // h
        w_v = _numpy(attention.qkv_kernel).reshape(d, 3, h, dk)[:, 2]  # [Q | K | V]: (d, h, dk)
        w_o = _numpy(attention.output_kernel).reshape(h, dk, d)
    else:
        h, dk = attention.num_heads, attention.key_dim
        w_v = _numpy(attention.value_kernel).reshape(-1, h, dk)
        w_o = _numpy(attention.output_kernel).reshape(h, dk, -1)
    return [(label, i, w_v[:, i], w_o[i], input_scale) for i in range(h)]


def _blocks(model, owner):
    """One dict per block holding a feed-forward layer, in stack order: name (of
    the FFN), stack, position, ffn, norm (the layer whose learned scale feeds
    the FFN) and attention (a function giving the block's heads)."""
    kind = _kind(model, owner)
    blocks = []
    if kind == "t5":
        stacks = [("encoder", model.encoder_blocks), ("decoder", model.decoder_blocks)]
        for stack, layers in stacks:
            for i, block in enumerate(layers):
                def heads(block=block):
                    out = _heads_of(block.self_attention, f"{block.name}/self_attention", "t5",
                                    _numpy(block.self_attention_norm.scale))
                    if block.cross_attention_enabled:
                        out += _heads_of(block.cross_attention, f"{block.name}/cross_attention", "t5",
                                         _numpy(model.encoder_norm.scale))
                    return out
                blocks.append(dict(name=f"{block.name}/ffn", stack=stack, position=i, ffn=block.ffn,
                                   norm_scale=lambda block=block: _numpy(block.ffn_norm.scale), heads=heads))
    else:
        for i, layer in enumerate(model.encoder_layers):
            blocks.append(dict(name=f"{layer.name}/mlp", stack="encoder", position=i, ffn=layer.mlp,
                               norm_scale=lambda layer=layer: _numpy(layer.attention_norm.gamma),
                               heads=lambda layer=layer: _heads_of(layer.attention, f"{layer.name}/attention",
                                                                   "mosaic", None)))
    return blocks


def _glu_blocks(model, owner):
    blocks = [b for b in _blocks(model, owner) if isinstance(b["ffn"], GatedFFN)]
    if not blocks:
        raise ValueError(f"{owner}: `model` {model.name!r} ({type(model).__name__}, ffn="
                         f"{getattr(model, 'ffn', '?')!r}) has no GLU feed-forward layer; the logit lens reads "
                         f"GatedFFN layers (glu, bilinear, reglu, geglu, swiglu, …).")
    return blocks


def glu_layers(model):
    """The GLU feed-forward layers of a GLUTransformer or MosaicBERT, in order
    (encoder blocks, then decoder blocks): a list of (name, GatedFFN) with
    names such as "encoder_block_0/ffn" or "encoder_layer_1/mlp". Each is
    FFN(x) = (act(x·W) ⊗ x·V)·kernel_out (arXiv 2504.14379 reads its rows).
    A ValueError if the model has none (a two-matrix FFN such as ffn="relu")."""
    return [(b["name"], b["ffn"]) for b in _glu_blocks(model, "glu_layers")]


def _select_layers(model, layer, owner):
    """The blocks named by `layer`: None (all), a name or position of
    `glu_layers`, or a list of those."""
    blocks = _glu_blocks(model, owner)
    if layer is None:
        return blocks
    wanted = list(layer) if isinstance(layer, (list, tuple)) else [layer]
    if not wanted:
        raise ValueError(f"{owner}: `layer` must be None, a layer name or position, or a non-empty list of them; "
                         f"got an empty {type(layer).__name__}.")
    names = [b["name"] for b in blocks]
    chosen = []
    for item in wanted:
        chosen.append(blocks[_layer_position(item, names, owner, "layer")])
    return chosen


def _layer_position(item, names, owner, argument):
    if isinstance(item, str) and item in names:
        return names.index(item)
    if isinstance(item, (int, np.integer)) and not isinstance(item, bool) and 0 <= item < len(names):
        return int(item)
    raise ValueError(f"{owner}: unknown `{argument}` {item!r}; allowed: a GLU layer name "
                     f"({', '.join(names)}) or its position 0…{len(names) - 1}.")


# --- unembedding and value vectors ---------------------------------------------------

def _gelu_slope(z):
    """d/dz of the exact GELU z·Φ(z): Φ(z) + z·φ(z)."""
    erf = np.vectorize(math.erf)
    return 0.5 * (1.0 + erf(z / math.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def unembedding(model):
    """The (d, vocabulary) matrix U that the logit lens uses, float64:
    logits ≈ r·U for a residual-stream vector r (arXiv 2504.14379).

    GLUTransformer: the read-out is logits = (RMSNorm(r) ⊙ γ)·s·Eᵀ (tied, s =
    d^−½, T5) or (RMSNorm(r) ⊙ γ)·W_out (untied), so U = diag(γ)·s·Eᵀ or
    diag(γ)·W_out, with γ the final (decoder) norm's learned scale. The
    normalisation itself, a positive factor per position, is left out: it
    does not change which tokens rank first. Encoder neurons are read through
    the same U.

    MosaicBERT: the head logits = LN(GELU(r·W_t + b_t)) ⊙ γ + β)·Eᵀ + b is
    not linear; U is its linearisation U = W_t·diag(GELU′(b_t))·C·diag(γ)·Eᵀ
    with C = I − 11ᵀ/d (LayerNorm's centring): the transform's GELU replaced
    by its slope at the transform's bias (its operating point for r = 0),
    LayerNorm's division by the standard deviation left out (a positive
    factor), and the constants β·Eᵀ and b (the same for every neuron)
    dropped.
    """
    kind = _kind(model, "unembedding")
    if kind == "t5":
        embedding = model.token_embedding
        kernel = _numpy(embedding.embeddings).T if embedding.tie_weights else _numpy(embedding.reverse_embeddings)
        return _numpy(model.decoder_norm.scale)[:, None] * embedding.logit_scale * kernel
    d = model.hidden_dim
    slope = _gelu_slope(_numpy(model.head_dense.bias))
    centred = np.eye(d) - 1.0 / d
    transform = (_numpy(model.head_dense.kernel) * slope[None, :]) @ centred
    return transform @ (_numpy(model.head_norm.gamma)[:, None] * _numpy(model.word_embedding.embeddings).T)


def value_vectors(model, layer):
    """Neuron j's value vector o_j = row j of `kernel_out` of the GLU layer
    `layer` (a name or position of `glu_layers`): (hidden, d) float64, so that
    FFN(x) = Σ_j act(x·w_j)(x·v_j)·o_j (arXiv 2504.14379)."""
    if layer is None or isinstance(layer, (list, tuple)):
        raise ValueError(f"value_vectors: `layer` must be one GLU layer's name or position; got {layer!r}.")
    [block] = _select_layers(model, layer, "value_vectors")
    return _numpy(block["ffn"].kernel_out)


# --- token strings -------------------------------------------------------------------

def _byte_string(b):
    char = chr(b)
    if char == " ":
        return "␣"
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if 33 <= b < 127:
        return char
    return f"\\x{b:02x}"


def token_strings(tokenizer, ids):
    """Display strings of token ids: for `glu_zoo.data.text.ByteTokenizer`,
    the byte (printable ASCII as is, space as "␣", others as "\\xNN"), the
    specials <pad>, </s>, <unk>, <mask> and the sentinels <extra_id_i>; for
    another tokenizer its `id_to_token` or `decode([id])`."""
    ids = [int(i) for i in np.asarray(ids).ravel()]
    from glu_zoo.data.text import ByteTokenizer

    if isinstance(tokenizer, ByteTokenizer):
        specials = {0: "<pad>", 1: "</s>", 2: "<unk>", 3: "<mask>"}
        out = []
        for i in ids:
            if i in specials:
                out.append(specials[i])
            elif 4 <= i < tokenizer.first_sentinel_id:
                out.append(_byte_string(i - 4))
            elif i - tokenizer.first_sentinel_id < tokenizer.num_sentinels:
                out.append(f"<extra_id_{i - tokenizer.first_sentinel_id}>")
            else:
                out.append(f"<unused_{i}>")
        return out
    if hasattr(tokenizer, "id_to_token"):
        return [str(tokenizer.id_to_token(i)) for i in ids]
    if hasattr(tokenizer, "decode"):
        return [str(tokenizer.decode([i])) for i in ids]
    raise ValueError(f"token_strings: `tokenizer` must have `id_to_token` or `decode`; got "
                     f"{type(tokenizer).__name__}.")


# --- the logit lens -------------------------------------------------------------------

def _top_k(vectors, matrix, k):
    """Per row of vectors @ matrix: the k largest (ids, scores), best first,
    ties broken by the smaller id; computed in blocks of rows."""
    rows = vectors.shape[0]
    ids = np.empty((rows, k), np.int64)
    scores = np.empty((rows, k), np.float64)
    step = max(1, _CHUNK // max(1, matrix.shape[1]))
    for start in range(0, rows, step):
        logits = vectors[start:start + step] @ matrix
        if k < logits.shape[1]:
            candidates = np.argpartition(-logits, k - 1, axis=1)[:, :k]
        else:
            candidates = np.broadcast_to(np.arange(logits.shape[1]), logits.shape).copy()
        values = np.take_along_axis(logits, candidates, axis=1)
        order = np.lexsort((candidates, -values), axis=-1)
        ids[start:start + step] = np.take_along_axis(candidates, order, axis=1)
        scores[start:start + step] = np.take_along_axis(values, order, axis=1)
    return ids, scores


def logit_lens(model, layer=None, k=10, tokenizer=None, candidates=None):
    """Each GLU neuron's top-k tokens: the largest entries of o_j·U, with o_j
    its value vector (`value_vectors`) and U the unembedding (`unembedding`)
    (arXiv 2504.14379).

    `layer`: None (every GLU layer), a name or position of `glu_layers`, or a
    list of them. Returns {"k": k, "layers": {name: {"ids": (hidden, k)
    int64, "scores": (hidden, k) float64, ["tokens": hidden lists of k
    strings, with a `tokenizer`]}}}, best token first. `candidates`: the
    token ids to rank (None: the whole vocabulary); a byte model's sentinel
    and unused rows never appear as targets in text, their embeddings are
    barely trained and would otherwise fill the lists.
    """
    owner = "logit_lens"
    check_positive_int("k", k, owner)
    vocabulary = model.vocabulary_size
    matrix = unembedding(model)
    if candidates is not None:
        candidates = _token_ids(model, candidates, None, owner, "candidates")
        matrix = matrix[:, candidates]
    if k > matrix.shape[1]:
        limit = (f"the vocabulary size {vocabulary}" if candidates is None else
                 f"the number of candidate tokens {matrix.shape[1]}")
        raise ValueError(f"{owner}: `k` must be at most {limit}; got {k}.")
    blocks = _select_layers(model, layer, owner)
    out = {"k": k, "layers": {}}
    for block in blocks:
        ids, scores = _top_k(_numpy(block["ffn"].kernel_out), matrix, k)
        if candidates is not None:
            ids = candidates[ids]
        entry = {"ids": ids, "scores": scores}
        if tokenizer is not None:
            flat = token_strings(tokenizer, ids)
            entry["tokens"] = [flat[r * k:(r + 1) * k] for r in range(ids.shape[0])]
        out["layers"][block["name"]] = entry
    return out


# --- neuron search ---------------------------------------------------------------------

def _token_ids(model, tokens, tokenizer, owner, argument="tokens"):
    if isinstance(tokens, str):
        if tokenizer is None or not hasattr(tokenizer, "encode"):
            raise ValueError(f"{owner}: `{argument}` given as text {tokens!r:.40} needs a `tokenizer` with `encode`; "
                             f"or pass token ids.")
        tokens = tokenizer.encode(tokens)
    array = np.asarray(tokens)
    vocabulary = model.vocabulary_size
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{owner}: `{argument}` must be a non-empty 1-D sequence of integer token ids (or text "
                         f"with a tokenizer); got {tokens!r:.80}.")
    bad = (array < 0) | (array >= vocabulary)
    if bad.any():
        raise ValueError(f"{owner}: `{argument}` must be ids in [0, {vocabulary}); got {int(array[bad][0])}.")
    return np.unique(array.astype(np.int64))


def find_neurons(model, direction=None, tokens=None, top=20, layer=None, tokenizer=None):
    """GLU neurons whose value vectors o_j align with a direction or promote a
    token set (arXiv 2504.14379), best first: a list of (layer name, neuron
    index, score) of at most `top` entries.

    - `direction` (d,): the cosine o_j·u / (‖o_j‖‖u‖) in the residual space.
    - `tokens` (ids, or text with a `tokenizer`): the standardised mean logit
      of the set in the neuron's projection ℓ = o_j·U, z_j = (mean_{t∈T} ℓ_t
      − mean_s ℓ_s) / std_s ℓ_s over the whole vocabulary s (a scale-free
      "how far above its typical token does the neuron push the set"),
      computed as o_j·(ū_T − ū) / √(o_jᵀ Σ_U o_j) with the mean and
      covariance of U's columns.
    Exactly one of the two. `layer` limits the search (as in `logit_lens`).
    """
    owner = "find_neurons"
    check_positive_int("top", top, owner)
    if (direction is None) == (tokens is None):
        raise ValueError(f"{owner}: give exactly one of `direction` and `tokens`; got "
                         f"{'both' if direction is not None else 'neither'}.")
    blocks = _select_layers(model, layer, owner)
    d = blocks[0]["ffn"].kernel_out.shape[1]
    if direction is not None:
        u = np.asarray(ops.convert_to_numpy(direction) if ops.is_tensor(direction) else direction, np.float64)
        if u.shape != (d,) or not np.all(np.isfinite(u)) or not np.any(u):
            raise ValueError(f"{owner}: `direction` must be a finite non-zero vector of shape ({d},) (the residual "
                             f"width); got shape {u.shape}.")
        read, spread = u / np.linalg.norm(u), None
    else:
        ids = _token_ids(model, tokens, tokenizer, owner)
        matrix = unembedding(model)
        mean = matrix.mean(axis=1)
        read = matrix[:, ids].mean(axis=1) - mean
        centred = matrix - mean[:, None]
        spread = centred @ centred.T / matrix.shape[1]
    found = []
    for block in blocks:
        vectors = _numpy(block["ffn"].kernel_out)
        if spread is None:
            scale = np.linalg.norm(vectors, axis=1)
        else:
            scale = np.sqrt(np.maximum(np.einsum("jd,de,je->j", vectors, spread, vectors), 0.0))
        raw = vectors @ read
        score = np.divide(raw, scale, out=np.zeros_like(raw), where=scale > 0)
        found += [(block["name"], j, float(s)) for j, s in enumerate(score)]
    found.sort(key=lambda item: (-item[2], item[0], item[1]))
    return found[:top]


# --- ablation ----------------------------------------------------------------------------

def _neuron_sets(model, neurons, owner):
    """{layer name: sorted unique indices} from (name, index[, …]) tuples or a
    dict {name: indices}; names or positions of `glu_layers`."""
    blocks = _glu_blocks(model, owner)
    names = [b["name"] for b in blocks]
    if isinstance(neurons, dict):
        pairs = [(name, j) for name, indices in neurons.items() for j in np.atleast_1d(np.asarray(indices))]
    else:
        try:
            pairs = [(item[0], item[1]) for item in neurons]
        except (TypeError, IndexError, KeyError):
            raise ValueError(f"{owner}: `neurons` must be (layer, index[, score]) tuples (as `find_neurons` "
                             f"returns) or a dict {{layer: indices}}; got {neurons!r:.80}.") from None
    if not pairs:
        raise ValueError(f"{owner}: `neurons` must name at least one neuron; got {neurons!r:.80}.")
    chosen = {}
    for name, j in pairs:
        position = _layer_position(name, names, owner, "neurons' layer")
        hidden = blocks[position]["ffn"].hidden_dim
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < hidden:
            raise ValueError(f"{owner}: neuron index {j!r} of layer {names[position]!r} must be an integer in "
                             f"[0, {hidden}).")
        chosen.setdefault(names[position], set()).add(int(j))
    return {name: np.array(sorted(chosen[name]), np.int64) for name in names if name in chosen}


@contextlib.contextmanager
def ablate(model, neurons):
    """Zero the gated activations h_j of the chosen GLU neurons inside a `with`
    block (arXiv 2504.14379), restoring the weights on exit, error or not.

    Done by zeroing row j of `kernel_out`: FFN(x) = Σ_j h_j·o_j (+ bias), so
    a zero row removes exactly neuron j's term and nothing else, in floating
    point too (h_j·0 = 0 exactly for any finite h_j; no other weight is
    touched). The saved rows are written back bit for bit. `neurons`: (layer,
    index[, score]) tuples as `find_neurons` returns, or {layer: indices}.
    Yields {layer name: indices}.

        with ablate(model, find_neurons(model, tokens=ids, top=10)):
            logits = model.predict_on_batch(x)
    """
    chosen = _neuron_sets(model, neurons, "ablate")
    layers = dict(glu_layers(model))
    saved = []
    try:
        for name, indices in chosen.items():
            kernel = layers[name].kernel_out
            original = np.array(ops.convert_to_numpy(kernel))
            saved.append((kernel, original))
            zeroed = original.copy()
            zeroed[indices] = 0
            kernel.assign(zeroed)
        yield chosen
    finally:
        for kernel, original in reversed(saved):
            kernel.assign(original)


def _batches(x, size):
    n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    for start in range(0, n, size):
        if isinstance(x, dict):
            yield start, {key: value[start:start + size] for key, value in x.items()}
        else:
            yield start, x[start:start + size]


def _check_data(model, x, y, batch_size, owner):
    check_positive_int("batch_size", batch_size, owner)
    if not isinstance(x, dict):
        raise ValueError(f"{owner}: `x` must be the model's input dict of (batch, T) arrays; got "
                         f"{type(x).__name__}.")
    x = {key: np.asarray(ops.convert_to_numpy(value)) for key, value in x.items()}
    if hasattr(model, "check_inputs"):
        model.check_inputs(x, "x")
    y = np.asarray(ops.convert_to_numpy(y))
    # The labels of the logits: the decoder's tokens for an encoder-decoder, else the only tokens.
    targets = x["decoder_token_ids"] if "decoder_token_ids" in x else next(iter(x.values()))
    if y.shape != targets.shape[:2] or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{owner}: `y` must be integer labels of shape {targets.shape[:2]} (one per output "
                         f"position; label 0 is ignored); got shape {y.shape}, dtype {y.dtype}.")
    if y.size and (y.min() < 0 or y.max() >= model.vocabulary_size):
        raise ValueError(f"{owner}: `y` must hold token ids in [0, {model.vocabulary_size}); got values in "
                         f"[{y.min()}, {y.max()}].")
    if not np.any(y != 0):
        raise ValueError(f"{owner}: `y` has no label other than 0 (ignored); nothing to score.")
    return x, y


def _held_out_loss(model, x, y, batch_size, progbar=None):
    """Mean token cross-entropy −log softmax(logits)[y] over every label y ≠ 0, float64."""
    total, count = 0.0, 0
    for start, batch in _batches(x, batch_size):
        labels = y[start:start + batch_size]
        rows = len(labels)
        if rows < batch_size < len(y):  # the last batch padded with copies: one compiled shape
            batch = {key: np.concatenate([value, np.repeat(value[:1], batch_size - rows, axis=0)])
                     for key, value in batch.items()}
        logits = np.asarray(ops.convert_to_numpy(model.predict_on_batch(batch)), np.float64)[:rows]
        keep = labels != 0
        chosen = logits[keep]
        peak = chosen.max(axis=-1, keepdims=True)
        log_z = peak[:, 0] + np.log(np.exp(chosen - peak).sum(axis=-1))
        total += float(np.sum(log_z - chosen[np.arange(len(chosen)), labels[keep]]))
        count += int(keep.sum())
        if progbar is not None:
            progbar.add(1)
    return total / count


def ablation_effect(model, neurons, x, y, batch_size=32, progbar=None):
    """The held-out loss with and without the chosen neurons (arXiv 2504.14379):
    the mean cross-entropy −log softmax(logits)[y] over every label y ≠ 0
    (label 0 is ignored, as the models' compiled loss ignores it), pooled
    over all tokens of (x, y), in float64, before and inside `ablate`.
    Returns {"loss_before", "loss_after", "change", "tokens", "neurons"}.
    `progbar`: a keras.utils.Progbar advanced once per batch (optional)."""
    owner = "ablation_effect"
    chosen = _neuron_sets(model, neurons, owner)
    x, y = _check_data(model, x, y, batch_size, owner)
    before = _held_out_loss(model, x, y, batch_size, progbar)
    with ablate(model, chosen):
        after = _held_out_loss(model, x, y, batch_size, progbar)
    return {"loss_before": before, "loss_after": after, "change": after - before, "tokens": int(np.sum(y != 0)),
            "neurons": int(sum(len(v) for v in chosen.values()))}


# --- attention heads ---------------------------------------------------------------------

def rank_heads(model, neurons, top=None):
    """Attention heads ranked by how strongly their OV circuit drives the chosen
    neurons' gate and linear rows (after arXiv 2504.14379), best first: a list
    of (attention layer, head, score).

    A head h reads the (normalised) residual stream through W_V^h and writes
    through W_O^h: M_h = diag(g_in)·W_V^h·W_O^h (d × d), g_in the learned
    scale of the norm before it (T5; MosaicBERT's post-LN stream has none).
    Neuron j reads its input through w̃_j = g_f ⊙ w_j (gate) and ṽ_j = g_f ⊙
    v_j (linear), g_f the scale of the norm feeding the FFN. With p = M_h·w̃_j
    and q = M_h·ṽ_j, score(h, j) = √(‖p‖² + ‖q‖²): for an isotropic head
    input r, E[(r·p)² + (r·q)²] ∝ score², the power the head sends into the
    neuron's two pre-activations. A head counts only for neurons downstream
    in its own stack (its block or a later one; T5 decoders: self- and
    cross-attention); its score is the mean over those neurons. Norms
    between the head and the FFN other than g_f are left out.
    """
    owner = "rank_heads"
    if top is not None:
        check_positive_int("top", top, owner)
    chosen = _neuron_sets(model, neurons, owner)
    blocks = _blocks(model, owner)
    by_name = {b["name"]: b for b in blocks}
    totals = {}
    for name, indices in chosen.items():
        block = by_name[name]
        ffn = block["ffn"]
        kernel = _numpy(ffn.kernel_in)
        hidden = ffn.hidden_dim
        scale = block["norm_scale"]()[:, None]
        rows = np.concatenate([scale * kernel[:, indices], scale * kernel[:, hidden + indices]], axis=1)
        for upstream in blocks:
            if upstream["stack"] != block["stack"] or upstream["position"] > block["position"]:
                continue
            for label, head, w_v, w_o, input_scale in upstream["heads"]():
                driven = w_v @ (w_o @ rows)  # (d_in, 2n)
                if input_scale is not None:
                    driven = input_scale[:, None] * driven
                power = np.sum(driven * driven, axis=0)
                score = np.sqrt(power[:len(indices)] + power[len(indices):])
                entry = totals.setdefault((label, head), [0.0, 0])
                entry[0] += float(score.sum())
                entry[1] += len(indices)
    ranked = sorted(((label, head, total / n) for (label, head), (total, n) in totals.items()),
                    key=lambda item: (-item[2], item[0], item[1]))
    return ranked if top is None else ranked[:top]


# --- plots and the report ------------------------------------------------------------------

def _strongest(entry, count):
    """The `count` neurons with the largest top-1 score, best first."""
    best = entry["scores"][:, 0]
    return np.lexsort((np.arange(len(best)), -best))[:count]


def plot_top_tokens(result, path, neurons_per_layer=12):
    """A PNG at `path` (returned) of a `logit_lens` result: per layer, the
    `neurons_per_layer` neurons with the largest top-1 logit o_j·U (arXiv
    2504.14379) as rows, their top-k tokens as cells coloured by the logit."""
    owner = "plot_top_tokens"
    if not isinstance(result, dict) or "layers" not in result or not result["layers"]:
        raise ValueError(f"{owner}: `result` must be what `logit_lens` returns (a dict with 'layers'); got "
                         f"{type(result).__name__}.")
    check_positive_int("neurons_per_layer", neurons_per_layer, owner)
    plt = pyplot(owner)
    names = list(result["layers"])
    k = result["layers"][names[0]]["ids"].shape[1]
    cols = min(2, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.0 + 0.75 * k * cols, 0.45 * neurons_per_layer * rows + 1),
                             squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        entry = result["layers"][name]
        chosen = _strongest(entry, neurons_per_layer)
        scores = entry["scores"][chosen]
        labels = entry.get("tokens")
        ax.imshow(scores, aspect="auto", cmap="viridis")
        for r, j in enumerate(chosen):
            for c in range(k):
                text = labels[j][c] if labels is not None else str(entry["ids"][j, c])
                ax.text(c, r, text, ha="center", va="center", fontsize=7, color="white")
        ax.set_yticks(range(len(chosen)), [f"#{j}" for j in chosen], fontsize=7)
        ax.set_xticks(range(k), [str(c + 1) for c in range(k)], fontsize=7)
        ax.set_xlabel("rank", fontsize=8)
        ax.set_title(name, fontsize=9)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.suptitle("top tokens of GLU value vectors (logit lens)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _default_tokenizer(model):
    from glu_zoo.data.text import ByteTokenizer

    tokenizer = ByteTokenizer()
    return tokenizer if model.vocabulary_size == tokenizer.vocabulary_size else None


def _byte_ids(tokenizer):
    """The byte ids of a ByteTokenizer, else None."""
    from glu_zoo.data.text import ByteTokenizer

    if not isinstance(tokenizer, ByteTokenizer):
        return None
    return np.arange(4, tokenizer.first_sentinel_id)


def report(model, out=None, tokenizer=None, data=None, k=10, neurons_per_layer=8, tokens=None, ablate_top=10,
           heads_top=10, batch_size=32, verbose=0, candidates="auto"):
    """A JSON-able summary of a GLU model's logit lens (arXiv 2504.14379).

    - "layers": per GLU layer, the `neurons_per_layer` neurons with the
      largest top-1 logit o_j·U and their top-k tokens (ids, logits, strings);
    - "search": the neurons found for a token set (`tokens`: ids or text;
      default the digits "0123456789" when the tokenizer can encode them) by
      `find_neurons`, the top `ablate_top` of them;
    - "ablation": with `data` = (x, y), `ablation_effect` of those neurons and,
      for scale, of as many neurons drawn at random (seed 0) from the same layers;
    - "heads": `rank_heads` for those neurons, the top `heads_top`.
    `tokenizer` None: the byte tokenizer when the vocabulary is its size. With
    `out` (a folder, created) the plot top_tokens.png is written and listed in
    "plots". `verbose` 1: a keras Progbar over the steps. `candidates`: the
    token ids the lens ranks; "auto": the 256 bytes for the byte tokenizer
    (the only ids text holds), else the whole vocabulary (None).
    """
    owner = "report"
    check_positive_int("k", k, owner)
    check_positive_int("neurons_per_layer", neurons_per_layer, owner)
    check_positive_int("ablate_top", ablate_top, owner)
    check_positive_int("heads_top", heads_top, owner)
    check_positive_int("batch_size", batch_size, owner)
    if tokenizer is None:
        tokenizer = _default_tokenizer(model)
    blocks = _glu_blocks(model, owner)
    if data is not None:
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError(f"{owner}: `data` must be (x, y); got {type(data).__name__}.")
        x, y = _check_data(model, data[0], data[1], batch_size, owner)
        batches = -(-len(y) // batch_size)
    if tokens is None and tokenizer is not None and hasattr(tokenizer, "encode"):
        tokens = DEFAULT_TOKEN_TEXT
    if isinstance(candidates, str) and candidates == "auto":
        candidates = _byte_ids(tokenizer)
    steps = len(blocks) + 2 + (4 * batches if data is not None and tokens is not None else 0)
    progbar = keras.utils.Progbar(steps, verbose=verbose) if verbose else None

    lens = {"k": k, "layers": {}}
    summary = {"model": type(model).__name__, "name": model.name, "k": k,
               "candidates": "all tokens" if candidates is None else f"{len(candidates)} token ids",
               "unembedding": ("tied decoder through the MLM transform, linearised (see logit_lens.unembedding)"
                               if _kind(model, owner) == "mosaic" else
                               "final RMSNorm scale × output embedding (see logit_lens.unembedding)"),
               "layers": []}
    for block in blocks:
        part = logit_lens(model, block["name"], k, tokenizer, candidates)
        entry = part["layers"][block["name"]]
        lens["layers"][block["name"]] = entry
        chosen = _strongest(entry, neurons_per_layer)
        summary["layers"].append({
            "name": block["name"], "hidden": int(block["ffn"].hidden_dim),
            "neurons": [{"index": int(j), "ids": entry["ids"][j].tolist(), "logits": entry["scores"][j].tolist(),
                         **({"tokens": entry["tokens"][j]} if "tokens" in entry else {})} for j in chosen]})
        if progbar is not None:
            progbar.add(1)
    if tokens is not None:
        ids = _token_ids(model, tokens, tokenizer, owner)
        found = find_neurons(model, tokens=ids, top=ablate_top)
        summary["search"] = {"token_ids": ids.tolist(),
                             **({"tokens": token_strings(tokenizer, ids)} if tokenizer is not None else {}),
                             "neurons": [{"layer": n, "index": j, "score": s} for n, j, s in found]}
        summary["heads"] = [{"layer": n, "head": h, "score": s} for n, h, s in rank_heads(model, found, heads_top)]
        if progbar is not None:
            progbar.add(1)
        if data is not None:
            summary["ablation"] = ablation_effect(model, found, x, y, batch_size, progbar)
            rng = np.random.default_rng(0)
            counts = {}
            for name, _, _ in found:
                counts[name] = counts.get(name, 0) + 1
            hidden = {b["name"]: b["ffn"].hidden_dim for b in blocks}
            random = {name: rng.choice(hidden[name], n, replace=False) for name, n in counts.items()}
            summary["ablation"]["random_baseline"] = ablation_effect(model, random, x, y, batch_size, progbar)
    if out is not None:
        os.makedirs(out, exist_ok=True)
        path = plot_top_tokens(lens, os.path.join(os.fspath(out), "top_tokens.png"), neurons_per_layer)
        summary["plots"] = [path]
    if progbar is not None:
        progbar.update(steps)
    return summary
