"""MosaicBERT: official checkpoints against a NumPy transcription of the official forward, packed (unpadded)
batches against padded ones, packing round trips, low-precision LayerNorm, saving, fit, the base size's
parameter count, bad inputs."""

import keras
import numpy as np
import pytest

from glu_zoo.data.text import ByteTokenizer, MaskedLMDataset
from glu_zoo.layers.attention import alibi_slopes
from glu_zoo.models import MosaicBERT, build
from glu_zoo.models.mosaic_bert import MosaicLayerNorm, PackedMLMDataset, pack_mlm_batch, unpack_predictions
from tests import reference as ref
from tests.models.test_checkpoints import write_safetensors

VOCAB = 96
OFFICIAL = {"vocab_size": VOCAB, "hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 6,
            "intermediate_size": 20, "type_vocab_size": 2, "layer_norm_eps": 1e-12}
OVERRIDES = dict(vocabulary_size=VOCAB, hidden_dim=24, num_layers=2, num_heads=6, intermediate_dim=20, dropout=0.0)


def official_state_dict(rng, c=OFFICIAL):
    """Random weights under every name of the official BertForMaskedLM's state dict (torch Linear (out, in))."""
    d, inter, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]

    def normal(*shape, scale=None):
        return rng.normal(0, scale or shape[-1] ** -0.5, shape)

    sd = {"bert.embeddings.word_embeddings.weight": normal(v, d, scale=1.0),
          "bert.embeddings.token_type_embeddings.weight": normal(c["type_vocab_size"], d, scale=1.0),
          "bert.embeddings.LayerNorm.weight": rng.uniform(0.5, 1.5, d),
          "bert.embeddings.LayerNorm.bias": normal(d, scale=0.1)}
    for i in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}"
        sd.update({f"{p}.attention.self.Wqkv.weight": normal(3 * d, d), f"{p}.attention.self.Wqkv.bias": normal(3 * d),
                   f"{p}.attention.output.dense.weight": normal(d, d), f"{p}.attention.output.dense.bias": normal(d),
                   f"{p}.attention.output.LayerNorm.weight": rng.uniform(0.5, 1.5, d),
                   f"{p}.attention.output.LayerNorm.bias": normal(d, scale=0.1),
                   f"{p}.mlp.gated_layers.weight": normal(2 * inter, d), f"{p}.mlp.wo.weight": normal(d, inter),
                   f"{p}.mlp.wo.bias": normal(d), f"{p}.mlp.layernorm.weight": rng.uniform(0.5, 1.5, d),
                   f"{p}.mlp.layernorm.bias": normal(d, scale=0.1)})
    sd.update({"cls.predictions.transform.dense.weight": normal(d, d),
               "cls.predictions.transform.dense.bias": normal(d),
               "cls.predictions.transform.LayerNorm.weight": rng.uniform(0.5, 1.5, d),
               "cls.predictions.transform.LayerNorm.bias": normal(d, scale=0.1),
               "cls.predictions.decoder.bias": normal(v)})
    return {k: v.astype("float32") for k, v in sd.items()}


def padded_batch(rng, lengths, length, left=()):
    """Token ids (batch, length) and their mask: row b holds lengths[b] real tokens, right-padded (left-padded
    for the rows in `left`)."""
    lengths = np.asarray(lengths)
    mask = np.arange(length)[None] < lengths[:, None]
    for b in left:
        mask[b] = mask[b][::-1]
    ids = np.where(mask, rng.integers(4, VOCAB, mask.shape), 0).astype("int32")
    return {"token_ids": ids, "padding_mask": mask}


def small(**kwargs):
    keras.utils.set_random_seed(0)
    config = {**OVERRIDES, "max_sequence_length": 40, **kwargs}
    return MosaicBERT(**config)


@pytest.fixture(scope="module")
def model():
    return small()


def run(model, x):
    """The model's logits, compiled (one trace per shape; eager calls trace every op)."""
    return np.asarray(model.predict_on_batch(x))


@pytest.mark.parametrize("fmt", ["safetensors", "bin", "dict"])
def test_from_official_matches_the_numpy_official_forward(tmp_path, fmt):
    rng = np.random.default_rng(0)
    sd = official_state_dict(rng)
    if fmt == "safetensors":
        path = tmp_path / "mosaic.safetensors"
        write_safetensors(path, sd)
    elif fmt == "bin":  # Composer's wrapper prefix and the tied decoder weight, as torch.save writes them
        torch = pytest.importorskip("torch")
        path = tmp_path / "mosaic.pt"
        full = {**sd, "cls.predictions.decoder.weight": sd["bert.embeddings.word_embeddings.weight"]}
        torch.save({f"model.{k}": torch.from_numpy(v) for k, v in full.items()}, path)
    else:
        path = dict(sd)
    model = MosaicBERT.from_official(path, architecture="mosaic_bert_tiny", **OVERRIDES)
    assert model.count_params() == sum(v.size for v in sd.values())
    x = padded_batch(rng, [11, 7, 4], 11, left=[2])
    got = run(model, x)
    want = ref.mosaic_bert_forward(sd, OFFICIAL, x["token_ids"], x["padding_mask"])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_alibi_slopes_are_the_official_rule():
    for n in (4, 6, 8, 12, 16):
        np.testing.assert_allclose(alibi_slopes(n), ref.mosaic_alibi_slopes(n), rtol=1e-12)


@pytest.mark.parametrize("row_factor", [1, 2])
def test_packed_batch_equals_the_padded_batch_on_real_tokens(model, row_factor):
    rng = np.random.default_rng(1)
    length = 16
    x = padded_batch(rng, rng.integers(2, length + 1, 9), length)
    padded = run(model, x)
    xp, _, _, packing = pack_mlm_batch(x, row_multiple=1, row_length=row_factor * length)
    most = max(len(set(row[row > 0])) for row in xp["padding_mask"])
    assert most >= 1 + row_factor and packing.num_rows < 9  # several sequences share a row
    packed = unpack_predictions(run(model, xp), packing)
    real = x["padding_mask"]
    np.testing.assert_allclose(packed[real], padded[real], rtol=1e-5, atol=1e-5)


def test_alibi_positions_restart_in_each_segment_even_when_interleaved(model):
    """A row holding two sequences with their tokens interleaved: ALiBi positions count the tokens of the
    token's own segment, so each sequence gets its padded logits."""
    rng = np.random.default_rng(2)
    x = padded_batch(rng, [7, 5], 7)
    padded = run(model, x)
    segments = np.array([[1, 2, 1, 1, 2, 2, 1, 1, 2, 1, 2, 1]], "int32")
    ids = np.zeros_like(segments)
    ids[segments == 1] = x["token_ids"][0, :7]
    ids[segments == 2] = x["token_ids"][1, :5]
    out = run(model, {"token_ids": ids, "padding_mask": segments})[0]
    np.testing.assert_allclose(out[segments[0] == 1], padded[0, :7], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[segments[0] == 2], padded[1, :5], rtol=1e-5, atol=1e-5)


def test_pack_mlm_batch_moves_every_real_token_and_back():
    rng = np.random.default_rng(3)
    data = MaskedLMDataset(rng.integers(4, 260, 4000), ByteTokenizer(), batch_size=12, sequence_length=24, seed=3)
    x, y, sw = data[0]
    xp, yp, swp, packing = pack_mlm_batch(x, y, sw, row_multiple=4)
    rows = packing.num_rows
    assert rows % 4 == 0 and rows < 12 and xp["token_ids"].shape == (rows, 24) == yp.shape == swp.shape
    real = x["padding_mask"]
    assert np.array_equal(unpack_predictions(xp["token_ids"], packing), np.where(real, x["token_ids"], 0))
    assert np.array_equal(unpack_predictions(yp, packing), np.where(real, y, 0))
    assert np.array_equal(unpack_predictions(swp, packing), sw)
    assert swp.sum() == sw.sum() and (xp["padding_mask"] > 0).sum() == real.sum()
    empty = xp["padding_mask"] == 0
    assert not xp["token_ids"][empty].any() and not yp[empty].any() and not swp[empty].any()
    assert pack_mlm_batch(x, y, sw, row_multiple=64)[3].num_rows == 12  # never more rows than the batch
    with pytest.raises(ValueError, match=r"need \d+ rows of 24; got num_rows=1"):
        pack_mlm_batch(x, y, sw, num_rows=1)
    with pytest.raises(ValueError, match=r"`outputs` must have shape \(rows, row_length, ...\)"):
        unpack_predictions(yp[:, :5], packing)


def test_fit_on_padded_and_packed_masked_lm_batches():
    rng = np.random.default_rng(4)
    text = rng.integers(4, 40, 6000)  # a small alphabet: learnable in a few steps
    data = MaskedLMDataset(text, ByteTokenizer(), batch_size=8, sequence_length=24, steps=4, seed=4)
    losses = {}
    for kind, train in (("padded", data), ("packed", PackedMLMDataset(data, row_multiple=4))):
        model = small(vocabulary_size=384, num_layers=1)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile="auto",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        losses[kind] = model.fit(train, epochs=3, verbose=0).history["loss"]
    for kind, loss in losses.items():
        assert np.all(np.isfinite(loss)) and loss[-1] < 0.9 * loss[0], (kind, loss)
    packed = PackedMLMDataset(data, row_multiple=4)
    xp, yp, swp = packed[1]
    assert xp["token_ids"].shape[0] % 4 == 0 and packed.packing(1).num_rows == xp["token_ids"].shape[0]


def test_base_size_has_the_papers_137m_weights():
    """mosaic_bert_base counted on one layer of the real model (every layer is the same), extrapolated
    to 12: 137,400,384 (the paper's 137M)."""
    base = build("mosaic_bert_base", num_layers=1)
    layer = base.encoder_layers[0].count_params()
    assert layer == 9_444_096  # Wqkv 1,771,776 + output 590,592 + GeGLU 4,718,592 + wo 2,360,064 + 2 LN
    assert base.count_params() + 11 * layer == 137_400_384
    assert build("mosaic_bert_tiny").count_params() == 396_800


def test_low_precision_layer_norm_computes_in_the_compute_dtype():
    rng = np.random.default_rng(5)
    x = (3.0 + 0.05 * rng.normal(size=(4, 64))).astype("float32")  # a large mean: bfloat16 statistics lose it
    quantised = keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(x, "bfloat16"), "float32")).astype("f8")
    want = ref.layer_norm(quantised, 1.0, 0.0, 1e-12)
    errors = {}
    for low in (False, True):
        norm = MosaicLayerNorm(low_precision=low, epsilon=1e-12, dtype="mixed_bfloat16")
        out = norm(keras.ops.cast(x, "bfloat16"))
        assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
        errors[low] = np.abs(keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")) - want).max()
    assert errors[False] < 0.02 and errors[True] > 3 * errors[False], errors
    outs = [keras.ops.convert_to_numpy(MosaicLayerNorm(low_precision=low, epsilon=1e-12)(x)) for low in (False, True)]
    np.testing.assert_array_equal(outs[0], outs[1])  # float32: the same computation


def test_attention_dropout_acts_only_in_training(model):
    rng = np.random.default_rng(9)
    dropping = small(attention_dropout=0.5)
    dropping.set_weights(model.get_weights())
    x = padded_batch(rng, [9, 4], 9)
    real = x["padding_mask"]
    inference = keras.ops.convert_to_numpy(dropping(x, training=False))
    np.testing.assert_allclose(inference[real], run(model, x)[real], rtol=1e-5, atol=1e-5)
    attention = dropping.encoder_layers[0].attention  # the probabilities dropped: its output changes
    h = rng.normal(size=(2, 9, 24)).astype("float32")
    bias = dropping.get_layer("alibi")(x["padding_mask"].astype("int32"))
    kept, dropped = (keras.ops.convert_to_numpy(attention(h, bias, training=t)) for t in (False, True))
    assert np.all(np.isfinite(dropped)) and np.abs(dropped - kept).max() > 0.1 * np.abs(kept).max()


def test_keras_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    model = small(low_precision_layer_norm=True)
    x = padded_batch(rng, [9, 3], 9)
    path = tmp_path / "mosaic.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)),
                               rtol=1e-6, atol=1e-6)


def test_bad_inputs_name_the_problem(tmp_path):
    rng = np.random.default_rng(7)
    model = small(max_sequence_length=10)
    x = padded_batch(rng, [6, 4], 8)
    with pytest.raises(ValueError, match=rf"`token_ids` must hold token ids in \[0, {VOCAB}\); got values in "
                                         rf"\[0, {VOCAB}\]"):
        model({**x, "token_ids": np.where(x["padding_mask"], VOCAB, 0).astype("int32")})
    with pytest.raises(ValueError, match=r"`token_ids` holds sequences of 12 tokens; this model takes at most "
                                         r"max_sequence_length=10"):
        model(padded_batch(rng, [12], 12))
    with pytest.raises(ValueError, match=r"`padding_mask` must have the shape of token_ids, \(2, 8\); got shape "
                                         r"\(2, 7\)"):
        model({**x, "padding_mask": x["padding_mask"][:, :7]})
    with pytest.raises(ValueError, match=r"`padding_mask` must hold booleans or integer segment ids; got dtype "
                                         r"float32"):
        model({**x, "padding_mask": x["padding_mask"].astype("float32")})
    with pytest.raises(ValueError, match=r"`padding_mask` must hold 0/1 or segment ids ≥ 0; got values in \[-1, 1\]"):
        model({**x, "padding_mask": np.where(x["padding_mask"], 1, -1).astype("int32")})
    with pytest.raises(ValueError, match=r"inputs must be a dict with keys token_ids, padding_mask; got keys "
                                         r"token_ids\."):
        model.check_inputs({"token_ids": x["token_ids"]})
    with pytest.raises(ValueError, match=r"`hidden_dim` must be divisible by `num_heads`; got hidden_dim=24 and "
                                         r"num_heads=5"):
        MosaicBERT(VOCAB, hidden_dim=24, num_heads=5)
    with pytest.raises(ValueError, match=r"`attention_dropout` must be a number in \[0, 1\); got 1.5"):
        MosaicBERT(VOCAB, hidden_dim=24, num_heads=6, attention_dropout=1.5)


def test_from_official_refuses_checkpoints_that_do_not_fit(tmp_path):
    rng = np.random.default_rng(8)
    sd = official_state_dict(rng)
    load = dict(architecture="mosaic_bert_tiny", **OVERRIDES)
    missing = {k: v for k, v in sd.items() if k != "bert.encoder.layer.1.mlp.wo.bias"}
    with pytest.raises(ValueError, match=r"missing 1 weight\(s\): bert.encoder.layer.1.mlp.wo.bias \(24,\)"):
        MosaicBERT.from_official(missing, **load)
    extra = {**sd, "bert.pooler.dense.weight": np.zeros((24, 24), "f4")}
    with pytest.raises(ValueError, match=r"1 unexpected name\(s\): bert.pooler.dense.weight \(24, 24\)"):
        MosaicBERT.from_official(extra, **load)
    wrong = {**sd, "bert.encoder.layer.0.mlp.gated_layers.weight": np.zeros((20, 24), "f4")}
    with pytest.raises(ValueError, match=r"bert.encoder.layer.0.mlp.gated_layers.weight must have shape \(40, 24\); "
                                         r"got shape \(20, 24\)"):
        MosaicBERT.from_official(wrong, **load)
    untied = {**sd, "cls.predictions.decoder.weight": np.zeros((VOCAB, 24), "f4")}
    with pytest.raises(ValueError, match=r"cls.predictions.decoder.weight \(96, 24\) differs from "
                                         r"bert.embeddings.word_embeddings.weight"):
        MosaicBERT.from_official(untied, **load)
    with pytest.raises(ValueError, match=r"unknown `architecture` 'bert_base'; allowed: mosaic_bert_base"):
        MosaicBERT.from_official(sd, architecture="bert_base")
    write_safetensors(tmp_path / "three_layers.safetensors", sd)
    with pytest.raises(ValueError, match=r"missing 11 weight\(s\): bert.encoder.layer.2"):
        MosaicBERT.from_official(tmp_path / "three_layers.safetensors", **{**load, "num_layers": 3})
