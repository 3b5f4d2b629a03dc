"""The GLU logit lens (arXiv 2504.14379) on hand-built tiny models: planted
tokens, planted neurons, exact ablation, planted heads, bad inputs, report."""

import json

import keras
import numpy as np
import pytest

from glu_zoo.data.text import ByteTokenizer
from glu_zoo.interpret import logit_lens as ll
from glu_zoo.models import GLUTransformer, MosaicBERT
from tests import reference as ref

D, HIDDEN, VOCAB = 32, 16, 384


def t5(ffn="swiglu", decoder_only=True, tie=True, layers=2):
    return GLUTransformer(VOCAB, model_dim=D, num_layers=layers, num_heads=2, ffn=ffn, hidden_dim=HIDDEN,
                          decoder_only=decoder_only, tie_embeddings=tie, num_buckets=8, max_distance=16)


def mosaic():
    return MosaicBERT(VOCAB, hidden_dim=D, num_layers=2, num_heads=2, intermediate_dim=HIDDEN, dropout=0.0,
                      max_sequence_length=16)


def unit_rows(rng, n, centred=False):
    u = rng.normal(size=(n, D))
    if centred:
        u -= u.mean(axis=1, keepdims=True)
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def plant_unembedding(model, rng):
    """Weights that make the lens read token t as the unit vector u[t] (times `gain`), with
    a far from uniform output-norm scale γ: returns (u (vocab, d), gain)."""
    gamma = np.exp(rng.uniform(np.log(0.2), np.log(5.0), D))
    if isinstance(model, MosaicBERT):
        u = unit_rows(rng, VOCAB, centred=True)
        model.head_dense.kernel.assign(np.eye(D, dtype="float32"))
        model.head_dense.bias.assign(np.zeros(D, "float32"))  # GELU′(0) = ½
        model.head_norm.gamma.assign(gamma.astype("float32"))
        model.word_embedding.embeddings.assign((u / gamma).astype("float32"))
        return u, 0.5
    u = unit_rows(rng, VOCAB)
    model.decoder_norm.scale.assign(gamma.astype("float32"))
    if model.tie_embeddings:
        model.token_embedding.embeddings.assign((u / gamma * D ** 0.5).astype("float32"))
    else:
        model.token_embedding.reverse_embeddings.assign((u / gamma).T.astype("float32"))
    return u, 1.0


def plant_neurons(model, u, text="AbZ?"):
    """Neuron 3·i + 1 of each GLU layer writes 2·u[t] for the i-th byte of `text` (shifted per layer)."""
    tokenizer = ByteTokenizer()
    planted = {}
    for position, (name, layer) in enumerate(ll.glu_layers(model)):
        rows = keras.ops.convert_to_numpy(layer.kernel_out).copy()
        for i, char in enumerate(text):
            token = int(tokenizer.encode(chr(ord(char) + position))[0])
            rows[3 * i + 1] = 2.0 * u[token]
            planted[(name, 3 * i + 1)] = (token, chr(ord(char) + position))
        layer.kernel_out.assign(rows.astype("float32"))
    return planted


MODELS = {
    "t5_decoder_tied": lambda: t5(),
    "t5_encoder_decoder_untied": lambda: t5(decoder_only=False, tie=False, layers=1),
    "mosaic_bert": mosaic,
}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_logit_lens_returns_the_planted_tokens(kind):
    rng = np.random.default_rng(1)
    model = MODELS[kind]()
    u, gain = plant_unembedding(model, rng)
    planted = plant_neurons(model, u)
    lens = ll.logit_lens(model, k=5, tokenizer=ByteTokenizer())
    assert lens["k"] == 5 and list(lens["layers"]) == [name for name, _ in ll.glu_layers(model)]
    for (name, neuron), (token, char) in planted.items():
        entry = lens["layers"][name]
        assert entry["ids"].shape == (HIDDEN, 5) and entry["scores"].dtype == np.float64
        assert entry["ids"][neuron, 0] == token and entry["tokens"][neuron][0] == char
        # The planted logit is 2·gain·‖u_t‖² and every other token's is below it (unit rows).
        assert entry["scores"][neuron, 0] == pytest.approx(2.0 * gain, rel=1e-5)
        assert np.all(np.diff(entry["scores"][neuron]) <= 0)
    one = ll.logit_lens(model, layer=1 if len(lens["layers"]) > 1 else 0, k=1)
    assert len(one["layers"]) == 1 and "tokens" not in next(iter(one["layers"].values()))


def test_candidates_restrict_the_lens_to_those_tokens():
    rng = np.random.default_rng(2)
    model = t5()
    u, _ = plant_unembedding(model, rng)
    planted = plant_neurons(model, u)
    (name, neuron), (token, _) = next(iter(planted.items()))
    full = ll.logit_lens(model, layer=name, k=3)["layers"][name]
    allowed = np.array([t for t in range(4, 260) if t != token])
    lens = ll.logit_lens(model, layer=name, k=3, candidates=allowed)["layers"][name]
    assert np.isin(lens["ids"], allowed).all() and token not in lens["ids"][neuron]
    # The best allowed tokens, with the logits they have over the whole vocabulary.
    logits = ll.value_vectors(model, name) @ ll.unembedding(model)
    expected = allowed[np.argsort(-logits[:, allowed], axis=1, kind="stable")[:, :3]]
    np.testing.assert_array_equal(lens["ids"], expected)
    np.testing.assert_allclose(lens["scores"], np.take_along_axis(logits, lens["ids"], 1), rtol=1e-12)
    assert full["ids"][neuron, 0] == token
    with pytest.raises(ValueError, match=r"`candidates` must be ids in \[0, 384\); got 400"):
        ll.logit_lens(model, candidates=[5, 400])
    with pytest.raises(ValueError, match="`k` must be at most the number of candidate tokens 2"):
        ll.logit_lens(model, k=3, candidates=[5, 6])


@pytest.mark.parametrize("tie", [True, False])
def test_unembedding_is_the_models_read_out_up_to_the_norm(tie):
    """For any residual r, the model's logits are (r / rms(r))·U: U holds γ and the d^−½ scale."""
    rng = np.random.default_rng(2)
    model = t5(tie=tie)
    model.decoder_norm.scale.assign(rng.uniform(0.2, 3.0, D).astype("float32"))
    r = rng.normal(size=(1, 3, D)).astype("float32")
    logits = keras.ops.convert_to_numpy(model.token_embedding(model.decoder_norm(r), reverse=True))
    expected = ref.t5_rms_norm(r.astype(np.float64), 1.0) @ ll.unembedding(model)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_value_vectors_are_the_rows_of_kernel_out():
    model = t5()
    name, layer = ll.glu_layers(model)[1]
    rows = np.asarray(keras.ops.convert_to_numpy(layer.kernel_out), np.float64)
    for key in (name, 1):
        vectors = ll.value_vectors(model, key)
        assert vectors.dtype == np.float64 and vectors.shape == (HIDDEN, D)
        np.testing.assert_array_equal(vectors, rows)


def test_glu_layers_in_stack_order():
    assert [n for n, _ in ll.glu_layers(t5(decoder_only=False, layers=1))] == ["encoder_block_0/ffn",
                                                                               "decoder_block_0/ffn"]
    model = mosaic()
    layers = ll.glu_layers(model)
    assert [n for n, _ in layers] == ["encoder_layer_0/mlp", "encoder_layer_1/mlp"]
    assert layers[1][1] is model.encoder_layers[1].mlp


@pytest.mark.parametrize("kind", ["t5_decoder_tied", "mosaic_bert"])
def test_find_neurons_finds_the_planted_neurons(kind):
    rng = np.random.default_rng(3)
    model = MODELS[kind]()
    u, _ = plant_unembedding(model, rng)
    planted = plant_neurons(model, u)
    for (name, neuron), (token, char) in planted.items():
        by_token = ll.find_neurons(model, tokens=[token], top=3)
        assert by_token[0][:2] == (name, neuron) and by_token[0][2] > 3.0
        by_text = ll.find_neurons(model, tokens=char, tokenizer=ByteTokenizer(), top=1)
        assert by_text[0][:2] == (name, neuron)
        by_direction = ll.find_neurons(model, direction=u[token], top=2)
        assert by_direction[0][:2] == (name, neuron) and by_direction[0][2] == pytest.approx(1.0, abs=1e-6)
    # A direction planted (with noise) in one neuron of the last layer; the search limited to that layer.
    name, layer = ll.glu_layers(model)[-1]
    direction = rng.normal(size=D)
    rows = keras.ops.convert_to_numpy(layer.kernel_out).copy()
    rows[7] = 3.0 * direction + 0.3 * rng.normal(size=D)
    layer.kernel_out.assign(rows.astype("float32"))
    found = ll.find_neurons(model, direction=direction, top=4, layer=name)
    assert found[0][:2] == (name, 7) and len(found) == 4 and all(n == name for n, _, _ in found)
    assert [s for _, _, s in found] == sorted((s for _, _, s in found), reverse=True)


def batch(model, rng, n=4, length=8):
    ids = rng.integers(4, 260, size=(n, length)).astype("int32")
    mask = np.ones((n, length), bool)
    mask[1, 5:] = False
    ids[~mask] = 0
    y = np.where(mask, rng.integers(4, 260, size=(n, length)), 0).astype("int32")
    if isinstance(model, MosaicBERT) or model.decoder_only:
        return {"token_ids": ids, "padding_mask": mask}, y
    # An encoder input longer than the decoder's, as span corruption gives: the labels follow the decoder.
    encoder_ids = rng.integers(4, 260, size=(n, length + 3)).astype("int32")
    return {"encoder_token_ids": encoder_ids, "encoder_padding_mask": np.ones_like(encoder_ids, bool),
            "decoder_token_ids": ids, "decoder_padding_mask": mask}, y


def weights(model):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]


ABLATION_MODELS = {"t5_glu": lambda: t5(ffn="glu"), "t5_encoder_decoder_geglu": lambda: t5("geglu", False, False, 1),
                   "mosaic_bert": mosaic}


@pytest.mark.parametrize("kind", sorted(ABLATION_MODELS))
def test_ablating_every_neuron_equals_removing_the_ffns(kind):
    """All neurons ablated = every GLU layer's hidden units zero, built independently here by zeroing
    the linear half V of kernel_in (act(xW) ⊗ 0 = 0: no output from the FFN's neurons)."""
    rng = np.random.default_rng(4)
    model = ABLATION_MODELS[kind]()
    x, _ = batch(model, rng)
    layers = ll.glu_layers(model)
    plain = keras.ops.convert_to_numpy(model.predict_on_batch(x))
    with ll.ablate(model, {name: range(HIDDEN) for name, _ in layers}) as chosen:
        assert {k: v.tolist() for k, v in chosen.items()} == {name: list(range(HIDDEN)) for name, _ in layers}
        ablated = keras.ops.convert_to_numpy(model.predict_on_batch(x))
    twin = ABLATION_MODELS[kind]()
    twin.set_weights(model.get_weights())
    for _, layer in ll.glu_layers(twin):
        kernel = keras.ops.convert_to_numpy(layer.kernel_in).copy()
        kernel[:, HIDDEN:] = 0.0
        layer.kernel_in.assign(kernel)
    removed = keras.ops.convert_to_numpy(twin.predict_on_batch(x))
    np.testing.assert_allclose(ablated, removed, rtol=1e-6, atol=1e-6)
    assert np.max(np.abs(plain - removed)) > 1e-4  # the FFNs matter (BERT init: small), 100× the tolerance
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.predict_on_batch(x)), plain)


def test_ablation_zeroes_exactly_the_chosen_gated_activations():
    rng = np.random.default_rng(5)
    model = t5(ffn="swiglu")
    name, layer = ll.glu_layers(model)[0]
    x = rng.normal(size=(2, 5, D)).astype("float32")
    kernel_in = np.asarray(keras.ops.convert_to_numpy(layer.kernel_in), np.float64)
    kernel_out = np.asarray(keras.ops.convert_to_numpy(layer.kernel_out), np.float64)
    h = x.astype(np.float64) @ kernel_in
    gated = ref.VARIANT_GATES["swiglu"](h[..., :HIDDEN], 0.0) * h[..., HIDDEN:]
    gated[..., [2, 9]] = 0.0
    with ll.ablate(model, [(name, 9, 0.5), (name, 2, 0.1), (name, 9, 0.4)]):
        y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, gated @ kernel_out, rtol=1e-5, atol=1e-5)


def test_ablate_restores_the_weights_exactly_even_after_an_error():
    rng = np.random.default_rng(6)
    model = mosaic()
    before = weights(model)
    name, layer = ll.glu_layers(model)[1]
    with pytest.raises(RuntimeError, match="inside"):
        with ll.ablate(model, [(name, 4), (0, 0)]):
            rows = keras.ops.convert_to_numpy(layer.kernel_out)
            assert not rows[4].any() and rows[5].any()
            raise RuntimeError("inside the block")
    for a, b in zip(before, weights(model)):
        np.testing.assert_array_equal(a, b)
    # A bad neuron after a good one: nothing is left changed either.
    with pytest.raises(ValueError, match="neuron index"):
        with ll.ablate(model, [(name, 4), (name, HIDDEN)]):
            pass
    for a, b in zip(before, weights(model)):
        np.testing.assert_array_equal(a, b)
    x, y = batch(model, rng)
    assert ll.ablation_effect(model, [(name, 4)], x, y)["neurons"] == 1
    for a, b in zip(before, weights(model)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", sorted(ABLATION_MODELS))
def test_ablation_effect_is_the_compiled_loss_before_and_after(kind):
    rng = np.random.default_rng(7)
    model = ABLATION_MODELS[kind]()
    x, y = batch(model, rng)
    y[0, :3] = 0  # ignored labels, as the models' loss ignores label 0
    for _, layer in ll.glu_layers(model):  # value vectors large enough to move the loss
        layer.kernel_out.assign(rng.normal(size=(HIDDEN, D)).astype("float32"))
    if isinstance(model, MosaicBERT):  # BERT's N(0, 0.02) table gives near-uniform logits
        model.word_embedding.embeddings.assign(rng.normal(size=(VOCAB, D)).astype("float32"))
    neurons = [(ll.glu_layers(model)[0][0], j) for j in range(0, HIDDEN, 2)]
    effect = ll.ablation_effect(model, neurons, x, y, batch_size=3)
    model.compile(loss=model.classification_loss())
    loss = model.evaluate(x, y, batch_size=len(y), verbose=0)
    with ll.ablate(model, neurons):
        ablated = model.evaluate(x, y, batch_size=len(y), verbose=0)
    assert effect["loss_before"] == pytest.approx(loss, rel=1e-4)
    assert effect["loss_after"] == pytest.approx(ablated, rel=1e-4)
    assert effect["change"] == pytest.approx(effect["loss_after"] - effect["loss_before"])
    assert abs(effect["change"]) > 1e-2
    assert effect["tokens"] == int(np.sum(y != 0)) and effect["neurons"] == HIDDEN // 2


def set_head_ov(attention, head, w_v, w_o, mosaic_layout):
    """Head `head`'s value columns (d, dk) and output rows (dk, d)."""
    if mosaic_layout:
        d, h = attention.hidden_dim, attention.num_heads
        dk = d // h
        qkv = keras.ops.convert_to_numpy(attention.qkv_kernel).copy().reshape(d, 3, h, dk)
        qkv[:, 2, head] = w_v  # [Q | K | V] (MosaicSelfAttention: q, k, v = qkv[:, :, 0], 1, 2)
        attention.qkv_kernel.assign(qkv.reshape(d, 3 * d))
    else:
        dk = attention.key_dim
        value = keras.ops.convert_to_numpy(attention.value_kernel).copy()
        value[:, head * dk:(head + 1) * dk] = w_v
        attention.value_kernel.assign(value)
    out = keras.ops.convert_to_numpy(attention.output_kernel).copy()
    out[head * dk:(head + 1) * dk] = w_o
    attention.output_kernel.assign(out)


@pytest.mark.parametrize("kind", ["t5", "mosaic_bert"])
def test_rank_heads_finds_the_planted_head(kind):
    """Every head's output rows random of one norm; head 1 of block 0 writes along the neuron's
    (scaled) gate row; head 0 of block 0 too, but reads nothing (W_V = 0): it must score 0."""
    rng = np.random.default_rng(8)
    model = t5(ffn="swiglu") if kind == "t5" else mosaic()
    layers = ll.glu_layers(model)
    neuron = 5
    name, ffn = layers[1]
    blocks = model.decoder_blocks if kind == "t5" else model.encoder_layers
    attentions = [b.self_attention if kind == "t5" else b.attention for b in blocks]
    dk = D // 2
    norm = (blocks[1].ffn_norm.scale if kind == "t5" else blocks[1].attention_norm.gamma)
    scale = rng.uniform(0.3, 3.0, D)
    norm.assign(scale.astype("float32"))
    gate = keras.ops.convert_to_numpy(ffn.kernel_in)[:, neuron] * scale
    for i, attention in enumerate(attentions):
        for head in range(2):
            w_o = rng.normal(size=(dk, D))
            if i == 0:
                w_o = np.outer(rng.normal(size=dk), gate)
            w_o *= 1.0 / np.linalg.norm(w_o)
            w_v = np.zeros((D, dk)) if (i, head) == (0, 0) else rng.normal(size=(D, dk)) / D ** 0.5
            set_head_ov(attention, head, w_v.astype("float32"), w_o.astype("float32"), kind != "t5")
    ranked = ll.rank_heads(model, [(name, neuron)])
    labels = [(label, head) for label, head, _ in ranked]
    first = f"{blocks[0].name}/{'self_attention' if kind == 't5' else 'attention'}"
    assert labels[0] == (first, 1) and labels[-1] == (first, 0) and ranked[-1][2] == 0.0
    assert len(ranked) == 4 and [s for _, _, s in ranked] == sorted((s for _, _, s in ranked), reverse=True)
    # Upstream only: a neuron of block 0 is driven by block 0's heads alone.
    early = ll.rank_heads(model, [(layers[0][0], neuron)])
    assert {label for label, _, _ in early} == {first}
    assert len(ll.rank_heads(model, [(name, neuron)], top=2)) == 2


@pytest.mark.parametrize("kind", ["t5", "mosaic_bert"])
def test_rank_heads_score_is_the_heads_map_read_through_the_attention_layer(kind):
    """Reference from behaviour: a one-token input attends only to itself, so the attention layer
    maps row i of diag(g_in) to row i of head h's diag(g_in)·W_V^h·W_O^h when the other heads'
    output rows are zero; score = √(‖M_h·w̃‖² + ‖M_h·ṽ‖²) with w̃, ṽ = g_f ⊙ (gate, linear) rows."""
    rng = np.random.default_rng(11)
    model = t5(ffn="swiglu") if kind == "t5" else mosaic()
    blocks = model.decoder_blocks if kind == "t5" else model.encoder_layers
    name, ffn = ll.glu_layers(model)[1]
    g_f = rng.uniform(0.3, 3.0, D)
    (blocks[1].ffn_norm.scale if kind == "t5" else blocks[1].attention_norm.gamma).assign(g_f.astype("float32"))
    g_in = [rng.uniform(0.3, 3.0, D) if kind == "t5" else np.ones(D) for _ in blocks]
    if kind == "t5":
        for block, g in zip(blocks, g_in):
            block.self_attention_norm.scale.assign(g.astype("float32"))
    neurons = [3, 8]
    kernel = np.asarray(keras.ops.convert_to_numpy(ffn.kernel_in), np.float64)
    expected = {}
    for block, g in zip(blocks, g_in):
        attention = block.self_attention if kind == "t5" else block.attention
        label = f"{block.name}/{'self_attention' if kind == 't5' else 'attention'}"
        full = keras.ops.convert_to_numpy(attention.output_kernel).copy()
        for head in range(2):
            rows = np.zeros_like(full)
            rows[head * D // 2:(head + 1) * D // 2] = full[head * D // 2:(head + 1) * D // 2]
            attention.output_kernel.assign(rows)
            x = np.diag(g)[:, None, :].astype("float32")  # (d, 1, d): d one-token inputs
            if kind == "t5":
                m = attention(x)
            else:
                m = attention(x, np.zeros((D, 2, 1, 1), "float32")) - attention.output_bias
            m = np.asarray(keras.ops.convert_to_numpy(m), np.float64)[:, 0]
            if kind == "mosaic_bert":  # the value bias: what a zero input gives
                m -= np.asarray(keras.ops.convert_to_numpy(attention(
                    np.zeros((1, 1, D), "float32"), np.zeros((1, 2, 1, 1), "float32")) - attention.output_bias),
                    np.float64)[0]
            scores = [np.sqrt(np.sum((m @ (g_f * kernel[:, j])) ** 2)
                              + np.sum((m @ (g_f * kernel[:, HIDDEN + j])) ** 2)) for j in neurons]
            expected[(label, head)] = np.mean(scores)
        attention.output_kernel.assign(full)
    ranked = ll.rank_heads(model, [(name, j) for j in neurons])
    assert {(label, head) for label, head, _ in ranked} == set(expected)
    for label, head, score in ranked:
        assert score == pytest.approx(expected[(label, head)], rel=1e-4)


def test_rank_heads_of_an_encoder_decoder_stays_in_each_stack():
    model = t5(decoder_only=False, layers=1)
    ranked = ll.rank_heads(model, [("decoder_block_0/ffn", 0)])
    assert {label for label, _, _ in ranked} == {"decoder_block_0/self_attention", "decoder_block_0/cross_attention"}
    ranked = ll.rank_heads(model, [("encoder_block_0/ffn", 0)])
    assert {label for label, _, _ in ranked} == {"encoder_block_0/self_attention"}


def test_bad_inputs_raise_clear_errors():
    relu = t5(ffn="relu")
    for call in (lambda: ll.glu_layers(relu), lambda: ll.logit_lens(relu), lambda: ll.report(relu),
                 lambda: ll.find_neurons(relu, tokens=[5]), lambda: ll.rank_heads(relu, [("x", 0)])):
        with pytest.raises(ValueError, match="has no GLU feed-forward layer"):
            call()
    with pytest.raises(ValueError, match="GLUTransformer or a MosaicBERT"):
        ll.unembedding(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    model = t5()
    name = ll.glu_layers(model)[0][0]
    for k in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="`k` must be a positive integer"):
            ll.logit_lens(model, k=k)
    with pytest.raises(ValueError, match=r"`k` must be at most the vocabulary size 384; got 385"):
        ll.logit_lens(model, k=VOCAB + 1)
    assert ll.logit_lens(model, layer=name, k=VOCAB)["layers"][name]["ids"].shape == (HIDDEN, VOCAB)
    for direction in (np.ones(D + 1), np.zeros(D), np.ones((2, D)), [np.nan] * D):
        with pytest.raises(ValueError, match=r"`direction` must be a finite non-zero vector of shape \(32,\)"):
            ll.find_neurons(model, direction=direction)
    with pytest.raises(ValueError, match="exactly one of `direction` and `tokens`; got neither"):
        ll.find_neurons(model)
    with pytest.raises(ValueError, match="got both"):
        ll.find_neurons(model, direction=np.ones(D), tokens=[5])
    for tokens in ([VOCAB], [-1], []):
        with pytest.raises(ValueError, match="`tokens`"):
            ll.find_neurons(model, tokens=tokens)
    with pytest.raises(ValueError, match="needs a `tokenizer`"):
        ll.find_neurons(model, tokens="abc")
    for layer in ("decoder_block_9/ffn", 2, -1, []):
        with pytest.raises(ValueError, match="`layer`"):
            ll.logit_lens(model, layer=layer)
    with pytest.raises(ValueError, match=r"unknown `neurons' layer` 'nope'.*decoder_block_0/ffn"):
        ll.rank_heads(model, [("nope", 0)])
    for bad in ([(name, HIDDEN)], [(name, -1)], [(name, 1.5)], {name: [HIDDEN + 3]}):
        with pytest.raises(ValueError, match=rf"neuron index .* must be an integer in \[0, {HIDDEN}\)"):
            with ll.ablate(model, bad):
                pass
    for bad in ([], {}, 5, [3]):
        with pytest.raises(ValueError, match="`neurons`"):
            ll.rank_heads(model, bad)
    rng = np.random.default_rng(9)
    x, y = batch(model, rng)
    with pytest.raises(ValueError, match="`y` must be integer labels of shape"):
        ll.ablation_effect(model, [(name, 0)], x, y[:, :3])
    with pytest.raises(ValueError, match="no label other than 0"):
        ll.ablation_effect(model, [(name, 0)], x, np.zeros_like(y))
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        ll.ablation_effect(model, [(name, 0)], x, y, batch_size=0)
    with pytest.raises(ValueError, match="`result` must be what `logit_lens` returns"):
        ll.plot_top_tokens({}, "unused.png")


@pytest.mark.parametrize("kind", ["t5_decoder_tied", "mosaic_bert"])
def test_report_is_json_and_writes_the_plot(kind, tmp_path):
    rng = np.random.default_rng(10)
    model = MODELS[kind]()
    u, _ = plant_unembedding(model, rng)
    digits = ByteTokenizer().encode(ll.DEFAULT_TOKEN_TEXT)
    planted = set()
    for (name, layer), neuron in zip(ll.glu_layers(model), (6, 11)):
        rows = keras.ops.convert_to_numpy(layer.kernel_out).copy()
        rows[neuron] = u[digits].sum(axis=0)
        layer.kernel_out.assign(rows.astype("float32"))
        planted.add((name, neuron))
    x, y = batch(model, rng)
    result = ll.report(model, out=tmp_path / "lens", data=(x, y), k=3, neurons_per_layer=4, ablate_top=2,
                       heads_top=3, batch_size=2)
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text) == result
    assert [layer["name"] for layer in result["layers"]] == [n for n, _ in ll.glu_layers(model)]
    first = result["layers"][0]["neurons"][0]
    assert len(first["tokens"]) == 3 and len(first["ids"]) == 3 and first["logits"][0] >= first["logits"][1]
    # The default token set (the digits) finds the two neurons planted to write all digits.
    assert result["search"]["tokens"] == list(ll.DEFAULT_TOKEN_TEXT)
    assert {(n["layer"], n["index"]) for n in result["search"]["neurons"]} == set(planted)
    assert result["ablation"]["neurons"] == 2 and result["ablation"]["random_baseline"]["neurons"] == 2
    assert len(result["heads"]) == 3
    [png] = result["plots"]
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    bare = ll.report(model, k=2, neurons_per_layer=1, tokenizer=ByteTokenizer(), tokens="ab")
    assert "ablation" not in bare and "plots" not in bare and bare["search"]["tokens"] == ["a", "b"]
