"""GLUTransformer: T5 checkpoints in transformers' names against a NumPy T5, parameter matching,
causality, cached generation, saving, bad inputs."""

import json

import keras
import numpy as np
import pytest

from glu_zoo.models import GLUTransformer, build
from tests import reference as ref
from tests.models.test_checkpoints import write_safetensors

VOCAB = 96


def hf_config(proj, tied, layers=2, decoder_layers=None, d_model=24, heads=3, d_kv=6, d_ff=40, buckets=8, distance=20):
    return {"vocab_size": VOCAB, "d_model": d_model, "d_kv": d_kv, "d_ff": d_ff, "num_layers": layers,
            "num_decoder_layers": decoder_layers or layers, "num_heads": heads,
            "relative_attention_num_buckets": buckets, "relative_attention_max_distance": distance,
            "layer_norm_epsilon": 1e-6, "feed_forward_proj": proj, "tie_word_embeddings": tied,
            "model_type": "t5", "is_encoder_decoder": True, "decoder_start_token_id": 0}


def hf_state_dict(config, rng):
    """Random weights under every name of transformers' T5ForConditionalGeneration."""
    d, inner, ff, h = config["d_model"], config["num_heads"] * config["d_kv"], config["d_ff"], config["num_heads"]
    sd = {"shared.weight": rng.normal(0, 1.0, (VOCAB, d))}
    gated = config["feed_forward_proj"].startswith("gated")

    def block(prefix, cross, first, bidirectional):
        attentions = ["SelfAttention"] + (["EncDecAttention"] if cross else [])
        for j, kind in enumerate(attentions):
            for letter in "qkv":
                sd[f"{prefix}.{j}.{kind}.{letter}.weight"] = rng.normal(0, d ** -0.5, (inner, d))
            sd[f"{prefix}.{j}.{kind}.o.weight"] = rng.normal(0, inner ** -0.5, (d, inner))
            sd[f"{prefix}.{j}.layer_norm.weight"] = rng.uniform(0.5, 1.5, d)
            if first and kind == "SelfAttention":
                sd[f"{prefix}.{j}.{kind}.relative_attention_bias.weight"] = rng.normal(
                    0, 1.0, (config["relative_attention_num_buckets"], h))
        j = len(attentions)
        for name in (["wi_0", "wi_1"] if gated else ["wi"]):
            sd[f"{prefix}.{j}.DenseReluDense.{name}.weight"] = rng.normal(0, d ** -0.5, (ff, d))
        sd[f"{prefix}.{j}.DenseReluDense.wo.weight"] = rng.normal(0, ff ** -0.5, (d, ff))
        sd[f"{prefix}.{j}.layer_norm.weight"] = rng.uniform(0.5, 1.5, d)

    for i in range(config["num_layers"]):
        block(f"encoder.block.{i}.layer", False, i == 0, True)
    for i in range(config["num_decoder_layers"]):
        block(f"decoder.block.{i}.layer", True, i == 0, False)
    sd["encoder.final_layer_norm.weight"] = rng.uniform(0.5, 1.5, d)
    sd["decoder.final_layer_norm.weight"] = rng.uniform(0.5, 1.5, d)
    if not config["tie_word_embeddings"]:
        sd["lm_head.weight"] = rng.normal(0, d ** -0.5, (VOCAB, d))
    return {k: v.astype("float32") for k, v in sd.items()}


def write_hf_folder(folder, config, sd, fmt="safetensors"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    if fmt == "safetensors":
        write_safetensors(folder / "model.safetensors", sd)
    else:
        import torch

        torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, folder / "pytorch_model.bin")


def t5_inputs(rng, batch=2, enc=9, dec=7):
    enc_ids = rng.integers(2, VOCAB, (batch, enc)).astype("int32")
    dec_ids = rng.integers(2, VOCAB, (batch, dec)).astype("int32")
    enc_mask = np.ones((batch, enc), bool)
    enc_mask[1, enc - 3:] = False  # padding on the second row
    dec_mask = np.ones((batch, dec), bool)
    dec_mask[0, dec - 2:] = False
    enc_ids[~enc_mask] = 0
    dec_ids[~dec_mask] = 0
    return {"encoder_token_ids": enc_ids, "encoder_padding_mask": enc_mask, "decoder_token_ids": dec_ids,
            "decoder_padding_mask": dec_mask}


@pytest.mark.parametrize("proj, tied, fmt", [("gated-gelu", False, "safetensors"), ("relu", True, "safetensors"),
                                             ("gated-silu", False, "bin")])
def test_from_hf_matches_numpy_t5(tmp_path, proj, tied, fmt):
    rng = np.random.default_rng(0)
    config = hf_config(proj, tied, layers=2, decoder_layers=3)
    sd = hf_state_dict(config, rng)
    if fmt == "bin":
        pytest.importorskip("torch")
    write_hf_folder(tmp_path / "t5", config, sd, fmt)
    model = GLUTransformer.from_hf(tmp_path / "t5")
    assert model.ffn == {"gated-gelu": "geglu_tanh", "relu": "relu", "gated-silu": "swiglu"}[proj]
    assert model.tie_embeddings is tied and len(model.decoder_blocks) == 3
    assert model.count_params() == sum(v.size for v in sd.values())
    x = t5_inputs(rng)
    got = keras.ops.convert_to_numpy(model.predict_on_batch(x))  # compiled: quicker than eager ops on JAX
    want = ref.t5_forward(sd, config, x["encoder_token_ids"], x["encoder_padding_mask"], x["decoder_token_ids"],
                          x["decoder_padding_mask"])
    real = x["decoder_padding_mask"]
    np.testing.assert_allclose(got[real], want[real], rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_from_hf_equals_transformers_when_installed(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    config = hf_config("gated-gelu", False)
    sd = hf_state_dict(config, rng)
    hf = transformers.T5ForConditionalGeneration(transformers.T5Config(**config)).eval()
    hf.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    hf.save_pretrained(tmp_path / "t5")
    model = GLUTransformer.from_hf(tmp_path / "t5")
    x = t5_inputs(rng)
    with torch.no_grad():
        want = hf(input_ids=torch.from_numpy(x["encoder_token_ids"]).long(),
                  attention_mask=torch.from_numpy(x["encoder_padding_mask"]).long(),
                  decoder_input_ids=torch.from_numpy(x["decoder_token_ids"]).long(),
                  decoder_attention_mask=torch.from_numpy(x["decoder_padding_mask"]).long()).logits.numpy()
    got = keras.ops.convert_to_numpy(model(x))
    real = x["decoder_padding_mask"]
    np.testing.assert_allclose(got[real], want[real], rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_from_hf_refuses_checkpoints_that_do_not_fit(tmp_path):
    rng = np.random.default_rng(2)
    config = hf_config("gated-gelu", False)
    sd = hf_state_dict(config, rng)
    missing = {k: v for k, v in sd.items() if k != "decoder.block.1.layer.2.DenseReluDense.wi_1.weight"}
    write_hf_folder(tmp_path / "missing", config, missing)
    with pytest.raises(ValueError, match=r"missing 1 weight\(s\): decoder.block.1.layer.2.DenseReluDense.wi_1.weight "
                                         r"\(40, 24\)"):
        GLUTransformer.from_hf(tmp_path / "missing")
    extra = {**sd, "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight": np.zeros((8, 3), "f4")}
    write_hf_folder(tmp_path / "extra", config, extra)
    with pytest.raises(ValueError, match=r"1 unexpected name\(s\): encoder.block.1.layer.0.SelfAttention."
                                         r"relative_attention_bias.weight \(8, 3\)"):
        GLUTransformer.from_hf(tmp_path / "extra")
    wrong = {**sd, "encoder.block.0.layer.0.SelfAttention.q.weight": np.zeros((18, 25), "f4")}
    write_hf_folder(tmp_path / "wrong", config, wrong)
    with pytest.raises(ValueError, match=r"encoder.block.0.layer.0.SelfAttention.q.weight must have shape \(18, 24\); "
                                         r"got shape \(18, 25\)"):
        GLUTransformer.from_hf(tmp_path / "wrong")
    write_hf_folder(tmp_path / "odd", {**config, "feed_forward_proj": "gated-tanh"}, sd)
    with pytest.raises(ValueError, match=r"feed_forward_proj 'gated-tanh'; readable: relu"):
        GLUTransformer.from_hf(tmp_path / "odd")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"has no config.json"):
        GLUTransformer.from_hf(tmp_path / "empty")


def test_base_size_relu_3072_and_every_glu_2048_hold_the_same_weights():
    """Shazeer's matching at T5-base (d 768, 12 + 12 blocks): the real model counted on 1 + 1 and 2 + 2
    blocks (blocks after the first of a stack are identical) and extrapolated to 12 + 12; the variants
    compared on 1 + 1 blocks with a small vocabulary (the embedding is the same for all)."""
    def count(ffn, hidden_dim, layers, **kwargs):
        return build("glu_transformer_base", ffn=ffn, hidden_dim=hidden_dim, num_layers=layers,
                     **kwargs).count_params()

    relu_1, relu_2 = count("relu", 3072, 1), count("relu", 3072, 2)
    assert relu_1 + 11 * (relu_2 - relu_1) == 222_903_552  # t5-base (tied embeddings, 32,128 ids)
    small = count("relu", 3072, 1, vocabulary_size=8)
    assert small == relu_1 - (32128 - 8) * 768
    assert count("gelu", None, 1, vocabulary_size=8) == count("swish", None, 1, vocabulary_size=8) == small
    for ffn in ("glu", "bilinear", "reglu", "geglu", "swiglu"):
        assert count(ffn, None, 1, vocabulary_size=8) == small  # hidden_dim None: 2048 for a GLU


def tiny(decoder_only=False, **kwargs):
    keras.utils.set_random_seed(0)
    return GLUTransformer(VOCAB, model_dim=16, num_layers=2, num_heads=2, ffn="swiglu", hidden_dim=24,
                          decoder_only=decoder_only, num_buckets=8, max_distance=16, **kwargs)


def test_decoder_is_causal():
    rng = np.random.default_rng(3)
    model = tiny()
    x = t5_inputs(rng, dec=8)
    x["decoder_padding_mask"][:] = True
    base = keras.ops.convert_to_numpy(model.predict_on_batch(x))
    changed = {**x, "decoder_token_ids": x["decoder_token_ids"].copy()}
    changed["decoder_token_ids"][:, 5:] = rng.integers(2, VOCAB, (2, 3))
    after = keras.ops.convert_to_numpy(model.predict_on_batch(changed))
    np.testing.assert_allclose(after[:, :5], base[:, :5], rtol=1e-6, atol=1e-6)
    assert np.abs(after[:, 5:] - base[:, 5:]).max() > 1e-3


@pytest.mark.parametrize("decoder_only", [False, True])
def test_cached_decoding_equals_the_whole_sequence(decoder_only):
    rng = np.random.default_rng(4)
    model = tiny(decoder_only)
    x = t5_inputs(rng, dec=6)
    x["decoder_padding_mask"][:] = True
    ids = x["decoder_token_ids"]
    if decoder_only:
        full = model.predict_on_batch({"token_ids": ids, "padding_mask": x["decoder_padding_mask"]})
        enc = mask = None
    else:
        full = model.predict_on_batch(x)
        mask = x["encoder_padding_mask"]
        enc = model._encode(keras.ops.convert_to_tensor(x["encoder_token_ids"]), keras.ops.convert_to_tensor(mask))
    full = keras.ops.convert_to_numpy(full)
    caches = model.init_cache(2, 6)
    cache_mask = np.zeros((2, 6), bool)
    for t in range(6):
        cache_mask[:, t] = True
        logits, caches = model.decode_step(ids[:, t:t + 1], caches, t, cache_mask, enc, mask)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(logits)[:, 0], full[:, t], rtol=1e-5, atol=1e-5)


def test_generate_greedy_follows_the_argmax_and_sampling_is_seeded():
    rng = np.random.default_rng(5)
    model = tiny(decoder_only=True)
    prompt = rng.integers(2, VOCAB, (2, 3)).astype("int32")
    out = model.generate(prompt, max_length=6, end_token_id=-1)
    assert out.shape == (2, 6) and np.array_equal(out[:, :3], prompt)
    # Each generated token is the argmax of the uncached (causal) model on what precedes it.
    logits = keras.ops.convert_to_numpy(model.predict_on_batch({"token_ids": out,
                                                                 "padding_mask": np.ones(out.shape, bool)}))
    assert np.array_equal(out[:, 3:], logits[:, 2:-1].argmax(-1))
    a = model.generate(prompt, max_length=6, strategy="sample", seed=3, top_k=5)
    b = model.generate(prompt, max_length=6, strategy="sample", seed=3, top_k=5)
    assert np.array_equal(a, b) and np.array_equal(a[:, :3], prompt)
    encdec = tiny()
    x = t5_inputs(rng)
    encoder = {k: x[k] for k in ("encoder_token_ids", "encoder_padding_mask")}
    out = encdec.generate(encoder, max_length=3, end_token_id=-1)
    dec = np.concatenate([np.zeros((2, 1), "int32"), out[:, :-1]], axis=1)  # the start token, then the output
    logits = keras.ops.convert_to_numpy(encdec.predict_on_batch(
        {**encoder, "decoder_token_ids": dec, "decoder_padding_mask": np.ones(dec.shape, bool)}))
    assert np.array_equal(out, logits.argmax(-1))


def test_keras_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    model = tiny(tie_embeddings=False)
    x = t5_inputs(rng)
    path = tmp_path / "t5.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)),
                               rtol=1e-6, atol=1e-6)


def test_bad_inputs_name_the_problem():
    rng = np.random.default_rng(7)
    model = tiny(max_sequence_length=10)
    x = t5_inputs(rng)
    with pytest.raises(ValueError, match=rf"`encoder_token_ids` must hold token ids in \[0, {VOCAB}\); got values in "
                                         rf"\[0, {VOCAB}\]"):
        model({**x, "encoder_token_ids": np.where(x["encoder_padding_mask"], VOCAB, 0).astype("int32")})
    long = t5_inputs(rng, enc=12)
    with pytest.raises(ValueError, match=r"`encoder_token_ids` holds sequences of 12 tokens; this model takes at most "
                                         r"max_sequence_length=10"):
        model(long)
    with pytest.raises(ValueError, match=r"`decoder_padding_mask` must have the shape of its token ids, \(2, 7\); "
                                         r"got shape \(2, 6\)"):
        model({**x, "decoder_padding_mask": x["decoder_padding_mask"][:, :6]})
    with pytest.raises(ValueError, match=r"inputs must be a dict with keys encoder_token_ids, encoder_padding_mask, "
                                         r"decoder_token_ids, decoder_padding_mask; got keys"):
        model({k: v for k, v in x.items() if k != "decoder_padding_mask"})
    with pytest.raises(ValueError, match=r"`encoder_token_ids` must hold integer token ids; got dtype float32"):
        model.check_inputs({**x, "encoder_token_ids": x["encoder_token_ids"].astype("float32")})
    with pytest.raises(ValueError, match=r"unknown `mlp` 'tanh'"):
        GLUTransformer(VOCAB, 16, 1, 2, ffn="tanh")
    with pytest.raises(ValueError, match=r"`num_decoder_layers` is for an encoder-decoder"):
        GLUTransformer(VOCAB, 16, 1, 2, decoder_only=True, num_decoder_layers=2)
    with pytest.raises(ValueError, match=r"unknown `strategy` 'beam'"):
        model.generate({k: x[k] for k in ("encoder_token_ids", "encoder_padding_mask")}, strategy="beam")


def test_fit_compiled_then_predict_at_another_length():
    """`fit` under XLA where the backend has it (eager on torch), then the same model on longer inputs."""
    rng = np.random.default_rng(8)
    model = tiny()
    x = t5_inputs(rng, batch=4)
    y = np.roll(x["decoder_token_ids"], -1, axis=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile="auto",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, sample_weight=x["decoder_padding_mask"].astype("float32"), batch_size=2, epochs=2,
                        verbose=0)
    assert np.all(np.isfinite(history.history["loss"])) and history.history["loss"][-1] < history.history["loss"][0]
    longer = t5_inputs(rng, batch=4, enc=13, dec=11)
    assert model.predict(longer, batch_size=4, verbose=0).shape == (4, 11, VOCAB)
