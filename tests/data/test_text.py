import itertools
import re

import keras
import numpy as np
import pytest

from glu_zoo import data
from glu_zoo.data import text

TOKENIZER = text.ByteTokenizer()
SENTINEL0 = 260


@pytest.fixture(scope="module")
def pydoc_train():
    return text.load_text("pydoc", "train")


# ------------------------------------------------------------------------------------------------ tokenizer


@pytest.mark.parametrize("string", ["", "plain ASCII", "héllo wörld", "日本語のテキスト", "emoji 🎉✓",
                                    "tab\tnew\nline\x00"])
def test_tokenizer_round_trip_and_byte_ids(string):
    ids = TOKENIZER.encode(string)
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert ids.tolist() == [b + 4 for b in string.encode("utf-8")]
    assert TOKENIZER.decode(ids) == string
    with_end = TOKENIZER.encode(string, add_end=True)
    assert with_end.tolist() == ids.tolist() + [1]
    assert TOKENIZER.decode(with_end) == string


def test_tokenizer_specials_and_vocabulary():
    t = TOKENIZER
    assert (t.pad_id, t.end_id, t.unk_id, t.mask_id) == (0, 1, 2, 3)
    assert (t.num_sentinels, t.vocabulary_size) == (100, 384)
    assert [t.sentinel_id(i) for i in (0, 1, 99)] == [260, 261, 359]
    for num_sentinels, size in [(0, 320), (60, 320), (61, 384), (124, 384), (125, 448)]:
        tokenizer = text.ByteTokenizer(num_sentinels)
        assert tokenizer.vocabulary_size == size and size % 64 == 0
    # pad, end and mask vanish; sentinels are written out; unk and unused ids become U+FFFD
    ids = [0, 108, 1, 3, 260, 109, 299, 2, 370, 0]
    assert TOKENIZER.decode(ids) == "h<extra_id_0>i<extra_id_39>\ufffd\ufffd"
    # invalid UTF-8 (a lone continuation byte, a truncated 3-byte sequence) is replaced, not raised
    assert TOKENIZER.decode([0x80 + 4, 108]) == "\ufffdh"
    assert TOKENIZER.decode([0xE6 + 4, 0x97 + 4]) == "\ufffd"
    assert TOKENIZER.decode(np.array([], np.int32)) == ""
    clone = text.ByteTokenizer.from_config(text.ByteTokenizer(7).get_config())
    assert clone == text.ByteTokenizer(7) and clone.vocabulary_size == 320 and clone != TOKENIZER


def test_tokenizer_bad_inputs():
    with pytest.raises(ValueError, match=r"`text` must be a str; got bytes"):
        TOKENIZER.encode(b"abc")
    with pytest.raises(ValueError, match=r"token ids in \[0, 384\); got 384 at position 1"):
        TOKENIZER.decode([5, 384])
    with pytest.raises(ValueError, match=r"got -1 at position 0"):
        TOKENIZER.decode([-1])
    with pytest.raises(ValueError, match="1-D sequence of integer token ids"):
        TOKENIZER.decode([1.0, 2.0])
    with pytest.raises(ValueError, match=r"`i` must be an integer in \[0, 100\); got 100"):
        TOKENIZER.sentinel_id(100)
    with pytest.raises(ValueError, match=r"`num_sentinels` must be an integer ≥ 0; got -1"):
        text.ByteTokenizer(-1)


# -------------------------------------------------------------------------------------------------- corpora


def test_pydoc_corpus_splits(pydoc_train):
    from pydoc_data.topics import topics

    splits = {s: text.load_documents("pydoc", s) for s in text.SPLITS}
    # every paragraph of every topic lands in exactly one split
    paragraphs = [p for key in sorted(topics) for p in re.split(r"\n[ \t]*\n", topics[key]) if p.strip()]
    assert sum(len(docs) for docs in splits.values()) == len(paragraphs)
    sizes = {s: len(text.load_text("pydoc", s).encode()) for s in text.SPLITS}
    total = sum(sizes.values())
    assert 430_000 < total < 500_000  # "about 465 KB"
    for s in ("validation", "test"):
        assert 0.02 < sizes[s] / total < 0.10, sizes
    assert text.load_text("pydoc", "train") == pydoc_train  # deterministic
    assert pydoc_train == "\n\n".join(splits["train"])
    for a, b in itertools.combinations(text.SPLITS, 2):  # pydoc repeats paragraphs: in one split only
        assert not set(splits[a]) & set(splits[b]), (a, b)


def test_file_corpus_split_is_fixed(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(f"paragraph {i}" for i in range(200)) + "\n", encoding="utf-8")
    splits = {s: [int(p.split()[1]) for p in text.load_documents(str(path), s)] for s in text.SPLITS}
    # crc32 of the paragraph text: these are the same on every machine and in every process
    assert splits["validation"] == [13, 14, 37, 57, 96, 117, 129, 135, 151, 153, 166]
    assert splits["test"] == [3, 19, 34, 55, 75, 116, 126, 140, 168]
    assert sorted(itertools.chain(*splits.values())) == list(range(200))
    assert text.load_text(path, "test") == "\n\n".join(f"paragraph {i}" for i in splits["test"])


def test_stdlib_corpus(monkeypatch):
    import inspect
    import json
    import textwrap

    files = text._stdlib_files()
    names = [name for name, _ in files]
    assert {"json", "json.decoder", "email.mime.text", "textwrap", "collections.abc"} <= set(names)
    assert not [n for n in names if n.startswith("_") or n.split(".")[0] in ("test", "idlelib", "tkinter", "lib2to3")]
    assert not [n for n in names if ".test" in n or "__pycache__" in n]
    # the whole standard library takes seconds to parse: a few packages here
    subset = [(name, path) for name, path in files if name.split(".")[0] in ("json", "email", "textwrap")]
    monkeypatch.setattr(text, "_stdlib_files", lambda: subset)
    text._stdlib_documents.cache_clear()
    try:
        splits = {s: text.load_documents("stdlib", s) for s in text.SPLITS}
    finally:
        text._stdlib_documents.cache_clear()
    assert all(len(docs) >= 5 for docs in splits.values()), {s: len(d) for s, d in splits.items()}
    for a, b in itertools.combinations(text.SPLITS, 2):
        assert not set(splits[a]) & set(splits[b]), (a, b)
    # module, function, class and method docstrings, each in exactly one split
    for obj in (json, json.dumps, json.JSONDecoder, json.JSONDecoder.raw_decode, textwrap.dedent,
                textwrap.TextWrapper.wrap):
        doc = inspect.cleandoc(obj.__doc__)
        assert sum(doc in docs for docs in splits.values()) == 1, obj


def test_corpus_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"unknown `source` 'wikipedia'; allowed: 'pydoc', 'stdlib' or"):
        text.load_text("wikipedia")
    with pytest.raises(ValueError, match=r"unknown `split` 'dev'; allowed: train, validation, test"):
        text.load_text("pydoc", "dev")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no text"):
        text.load_text(empty)
    one = tmp_path / "one.txt"
    one.write_text("paragraph 0", encoding="utf-8")  # in train
    with pytest.raises(ValueError, match=r"split 'test' of `source` .* is empty: none of its 1 documents"):
        text.load_text(one, "test")


# ------------------------------------------------------------------------------------------ span corruption


def test_random_spans_helper_t5_numbers():
    # T5's C4 pre-training: inputs of 512 tokens come from 568 raw tokens, targets 114
    assert text.random_spans_helper(512, 0.15, 3.0) == (568, 114)
    rng = np.random.default_rng(0)
    for inputs_length in (16, 64, 128, 200, 512):
        raw, targets_length = text.random_spans_helper(inputs_length)
        inputs, targets = text.span_corruption(TOKENIZER.encode("x" * raw), rng)
        assert len(inputs) == inputs_length and len(targets) == targets_length
        longer, _ = text.span_corruption(TOKENIZER.encode("x" * (raw + 1)), rng)
        assert len(longer) > inputs_length  # the longest raw length that fits


def test_noise_mask_is_uniform_over_allowed_masks():
    # length 10, 3 noise tokens in round(3 / 1.5) = 2 spans: non-noise, noise, non-noise, noise,
    # all four non-empty: C(2, 1) · C(6, 1) = 12 masks, each equally likely
    rng = np.random.default_rng(1)
    draws = 12_000
    counts = {}
    for _ in range(draws):
        mask = text.random_spans_noise_mask(10, rng, noise_density=0.3, mean_noise_span_length=1.5)
        counts[mask.tobytes()] = counts.get(mask.tobytes(), 0) + 1
    allowed = set()
    for a, b, c in itertools.product(range(1, 8), range(1, 3), range(1, 8)):
        d = 3 - b
        if a + c == 7:
            allowed.add(np.array([False] * a + [True] * b + [False] * c + [True] * d).tobytes())
    assert len(allowed) == 12 and set(counts) == allowed
    expected = draws / 12
    chi2 = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi2 < 31.3  # 11 degrees of freedom, p = 0.001


def test_noise_statistics_over_many_sequences():
    rng = np.random.default_rng(2)
    noise = total = spans = 0
    first_noise = last_noise = 0
    for _ in range(400):
        length = int(rng.integers(50, 600))
        mask = text.random_spans_noise_mask(length, rng)
        noise += mask.sum()
        total += length
        spans += int(mask[0]) + np.sum(mask[1:] & ~mask[:-1])
        first_noise += mask[0]
        last_noise += mask[-1]
    assert abs(noise / total - 0.15) < 0.01
    assert abs(noise / spans - 3.0) < 0.15
    assert first_noise == 0 and last_noise == 400  # T5: non-noise first, noise last


def _reference_corruption(ids, mask):
    """Span corruption written as a loop over tokens."""
    inputs, targets, sentinel = [], [], SENTINEL0 - 1
    for i, (token, noisy) in enumerate(zip(ids.tolist(), mask.tolist())):
        if noisy and (i == 0 or not mask[i - 1]):
            sentinel += 1
            inputs.append(sentinel)
            targets.append(sentinel)
        (targets if noisy else inputs).append(token)
    return inputs + [1], targets + [1]


def test_span_corruption_matches_loop_and_is_reversible():
    rng = np.random.default_rng(3)
    tokenizer = text.ByteTokenizer(300)  # up to 179 spans here
    for trial in range(300):
        length = int(rng.integers(1, 300))
        ids = rng.integers(1, 260, size=length)
        density = float(rng.uniform(0.05, 0.6))
        span = float(rng.uniform(1.0, 6.0))
        seed = int(rng.integers(2**31))
        inputs, targets = text.span_corruption(ids, np.random.default_rng(seed), density, span, tokenizer)
        mask = text.random_spans_noise_mask(length, np.random.default_rng(seed), density, span)
        ref_inputs, ref_targets = _reference_corruption(ids, mask)
        assert inputs.dtype == targets.dtype == np.int32
        assert inputs.tolist() == ref_inputs and targets.tolist() == ref_targets
        np.testing.assert_array_equal(text.span_uncorrupt(inputs, targets, tokenizer), ids)
        # sentinels 0, 1, … in order in both
        k = int(np.sum(inputs >= SENTINEL0))
        assert inputs[inputs >= SENTINEL0].tolist() == targets[targets >= SENTINEL0].tolist() == list(
            range(SENTINEL0, SENTINEL0 + k))
        # padded, without end: still reversible
        padded = np.concatenate([inputs[:-1], np.zeros(5, np.int32)])
        np.testing.assert_array_equal(text.span_uncorrupt(padded, targets, tokenizer), ids)


def test_span_corruption_example():
    ids = TOKENIZER.encode("Thank you for inviting me to your party last week.")
    inputs, targets = text.span_corruption(ids, np.random.default_rng(0))
    decoded_inputs, decoded_targets = TOKENIZER.decode(inputs), TOKENIZER.decode(targets)
    assert decoded_targets.startswith("<extra_id_0>")
    pieces = re.split(r"<extra_id_\d+>", decoded_targets)[1:]
    rebuilt = re.split(r"<extra_id_\d+>", decoded_inputs)
    merged = "".join(a + b for a, b in zip(rebuilt, pieces + [""]))
    assert merged == "Thank you for inviting me to your party last week."


def test_span_corruption_bad_inputs():
    rng = np.random.default_rng(4)
    ids = TOKENIZER.encode("some text here")
    with pytest.raises(ValueError, match=r"`noise_density` must be a number in \(0, 1\); got 0"):
        text.span_corruption(ids, rng, noise_density=0)
    with pytest.raises(ValueError, match=r"`noise_density` must be a number in \(0, 1\); got 1.5"):
        text.span_corruption(ids, rng, noise_density=1.5)
    with pytest.raises(ValueError, match=r"`mean_noise_span_length` must be a number ≥ 1; got 0.5"):
        text.span_corruption(ids, rng, mean_noise_span_length=0.5)
    with pytest.raises(ValueError, match="`ids` is empty"):
        text.span_corruption([], rng)
    with pytest.raises(ValueError,
                       match=r"`ids` must not hold pad \(0\) or sentinel ids \(≥ 260\).*; got 261 at position 1"):
        text.span_corruption([5, 261, 7], rng)
    with pytest.raises(ValueError, match=r"make 17 noise spans but the tokenizer has `num_sentinels` 4"):
        text.span_corruption(np.full(340, 9), rng, tokenizer=text.ByteTokenizer(4))
    with pytest.raises(ValueError, match=r"same sentinels 0, 1, … in order; got \[1\] and \[0\]"):
        text.span_uncorrupt([5, 261, 1], [260, 6, 1])
    with pytest.raises(ValueError, match="`tokenizer` must be a ByteTokenizer"):
        text.span_corruption(ids, rng, tokenizer="bytes")


# ------------------------------------------------------------------------------------------------- datasets


def _assert_same_batch(a, b):
    for key in a[0]:
        np.testing.assert_array_equal(a[0][key], b[0][key])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])


def test_span_dataset_batches(pydoc_train):
    ds = text.SpanCorruptionDataset(pydoc_train, TOKENIZER, batch_size=8, input_length=64, seed=5)
    assert isinstance(ds, keras.utils.PyDataset)
    assert (ds.raw_length, ds.target_length) == text.random_spans_helper(64)
    assert len(ds) == (len(pydoc_train.encode()) // ds.raw_length) // 8
    x, y, w = ds[2]
    assert set(x) == {"encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask"}
    assert x["encoder_token_ids"].shape == (8, 64) and x["encoder_token_ids"].dtype == np.int32
    assert x["decoder_token_ids"].shape == (8, ds.target_length) and x["decoder_token_ids"].dtype == np.int32
    assert x["encoder_padding_mask"].dtype == x["decoder_padding_mask"].dtype == np.bool_
    assert y.shape == (8, ds.target_length) and y.dtype == np.int32 and w.dtype == np.float32
    assert x["encoder_padding_mask"].all()  # T5's lengths: inputs fill input_length exactly
    np.testing.assert_array_equal(x["decoder_token_ids"][:, 0], 0)
    np.testing.assert_array_equal(x["decoder_token_ids"][:, 1:], y[:, :-1])
    np.testing.assert_array_equal(w, (y != 0).astype(np.float32))
    stream = TOKENIZER.encode(pydoc_train)
    for row in range(8):
        original = text.span_uncorrupt(x["encoder_token_ids"][row], y[row])
        assert len(original) == ds.raw_length
        # a crop of the token stream
        starts = np.flatnonzero(stream[: len(stream) - ds.raw_length + 1] == original[0])
        assert any(np.array_equal(stream[s: s + ds.raw_length], original) for s in starts)


def test_span_dataset_padding_and_determinism(pydoc_train):
    kwargs = dict(batch_size=4, input_length=32, target_length=20, seed=1, steps=3)
    ds = text.SpanCorruptionDataset(pydoc_train, TOKENIZER, **kwargs)
    x, y, w = ds[0]
    need = text.random_spans_helper(32)[1]
    assert y.shape == (4, 20) and w[:, :need].all() and not w[:, need:].any()
    np.testing.assert_array_equal(x["decoder_padding_mask"], np.tile(np.arange(20) < need, (4, 1)))
    _assert_same_batch(ds[1], text.SpanCorruptionDataset(pydoc_train, TOKENIZER, **kwargs)[1])
    assert len(ds) == 3 and len(list(ds)) == 3  # a plain iterable too
    first = ds[1]
    ds.on_epoch_end()
    assert ds.epoch == 1
    assert not np.array_equal(first[0]["encoder_token_ids"], ds[1][0]["encoder_token_ids"])
    ds.epoch = 0
    _assert_same_batch(first, ds[1])
    with pytest.raises(IndexError):
        ds[3]
    # shuffle=False: consecutive chunks, the same batches in every epoch
    fixed = text.SpanCorruptionDataset(pydoc_train, TOKENIZER, batch_size=4, input_length=32, shuffle=False)
    batch = fixed[1]
    fixed.on_epoch_end()
    _assert_same_batch(batch, fixed[1])
    stream = TOKENIZER.encode(pydoc_train)
    for row in range(4):
        chunk = stream[(4 + row) * fixed.raw_length: (5 + row) * fixed.raw_length]
        np.testing.assert_array_equal(text.span_uncorrupt(batch[0]["encoder_token_ids"][row], batch[1][row]), chunk)


def test_span_dataset_feeds_model_fit(pydoc_train):
    ds = text.SpanCorruptionDataset(pydoc_train, TOKENIZER, batch_size=4, input_length=16, steps=2)
    inputs = {"encoder_token_ids": keras.Input((16,), dtype="int32", name="encoder_token_ids"),
              "encoder_padding_mask": keras.Input((16,), dtype="bool", name="encoder_padding_mask"),
              "decoder_token_ids": keras.Input((ds.target_length,), dtype="int32", name="decoder_token_ids"),
              "decoder_padding_mask": keras.Input((ds.target_length,), dtype="bool", name="decoder_padding_mask")}
    hidden = keras.layers.Embedding(TOKENIZER.vocabulary_size, 8)(inputs["decoder_token_ids"])
    model = keras.Model(inputs, keras.layers.Dense(TOKENIZER.vocabulary_size)(hidden))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert history.history["loss"][0] == pytest.approx(np.log(TOKENIZER.vocabulary_size), rel=0.05)


def test_span_dataset_bad_inputs(pydoc_train):
    with pytest.raises(ValueError, match=r"`batch_size` must be an integer ≥ 1; got 0"):
        text.SpanCorruptionDataset(pydoc_train, TOKENIZER, 0)
    with pytest.raises(ValueError, match="`text_or_ids` is empty text"):
        text.SpanCorruptionDataset("", TOKENIZER, 2)
    with pytest.raises(ValueError, match=r"has 5 tokens; a sequence needs 141"):
        text.SpanCorruptionDataset("short", TOKENIZER, 2)
    with pytest.raises(ValueError, match=r"`noise_density` must be a number in \(0, 1\); got -0.1"):
        text.SpanCorruptionDataset(pydoc_train, TOKENIZER, 2, noise_density=-0.1)
    with pytest.raises(ValueError, match=r"`target_length` must be an integer ≥ 29 .*; got 10"):
        text.SpanCorruptionDataset(pydoc_train, TOKENIZER, 2, target_length=10)
    with pytest.raises(ValueError, match=r"`steps` must be an integer ≥ 1; got 0"):
        text.SpanCorruptionDataset(pydoc_train, TOKENIZER, 2, steps=0)
    with pytest.raises(ValueError, match=r"makes 7 noise spans but the tokenizer has `num_sentinels` 3"):
        text.SpanCorruptionDataset(pydoc_train, text.ByteTokenizer(3), 2)


def test_masked_lm_statistics(pydoc_train):
    ds = text.MaskedLMDataset(pydoc_train, TOKENIZER, batch_size=256, sequence_length=128, seed=7)
    x, y, w = ds[0]
    ids, padding = x["token_ids"], x["padding_mask"]
    assert ids.shape == y.shape == w.shape == padding.shape == (256, 128)
    assert ids.dtype == y.dtype == np.int32 and padding.dtype == np.bool_ and w.dtype == np.float32
    lengths = padding.sum(axis=1)
    assert lengths.min() >= 32 and lengths.max() <= 128 and len(np.unique(lengths)) > 50  # variable lengths
    np.testing.assert_array_equal(padding, np.arange(128) < lengths[:, None])  # padding at the end only
    np.testing.assert_array_equal(y[np.arange(256), lengths - 1], 1)  # end token last
    assert (y[~padding] == 0).all() and (ids[~padding] == 0).all()
    selected = w == 1
    assert set(np.unique(w)) <= {0.0, 1.0}
    assert not (selected & ~padding).any()  # pad never selected
    assert not selected[np.arange(256), lengths - 1].any()  # end never selected
    assert abs(selected.sum() / (lengths - 1).sum() - 0.30) < 0.002
    # each row: the nearest whole number to 30% of its tokens (end excluded)
    assert (np.abs(selected.sum(axis=1) - 0.30 * (lengths - 1)) <= 0.5).all()
    np.testing.assert_array_equal(ids[~selected], y[~selected])  # only selected positions change
    masked = ids[selected] == 3
    kept = ids[selected] == y[selected]
    replaced = ~masked & ~kept
    assert abs(masked.mean() - 0.8) < 0.02
    assert abs(kept.mean() - 0.1 - 0.1 / 256) < 0.015  # a random byte may equal the original
    assert abs(replaced.mean() - 0.1 + 0.1 / 256) < 0.015
    assert ((ids[selected][replaced] >= 4) & (ids[selected][replaced] < 260)).all()
    stream = TOKENIZER.encode(pydoc_train)
    row = y[0, : lengths[0] - 1]
    starts = np.flatnonzero(stream == row[0])
    assert any(np.array_equal(stream[s: s + len(row)], row) for s in starts)


def test_masked_lm_determinism_and_bad_inputs(pydoc_train):
    kwargs = dict(batch_size=4, sequence_length=16, seed=3, steps=2)
    ds = text.MaskedLMDataset(pydoc_train, TOKENIZER, **kwargs)
    _assert_same_batch(ds[1], text.MaskedLMDataset(pydoc_train, TOKENIZER, **kwargs)[1])
    batch = ds[1]
    ds.on_epoch_end()
    assert not np.array_equal(batch[0]["token_ids"], ds[1][0]["token_ids"])
    fixed = text.MaskedLMDataset(pydoc_train, TOKENIZER, batch_size=4, sequence_length=16, min_length=16,
                                 shuffle=False)
    batch = fixed[0]
    fixed.on_epoch_end()
    _assert_same_batch(batch, fixed[0])
    stream = TOKENIZER.encode(pydoc_train)
    np.testing.assert_array_equal(batch[1][:, :15], stream[:60].reshape(4, 15))
    ids = text.MaskedLMDataset(np.arange(4, 100), TOKENIZER, batch_size=2, sequence_length=8)[0][1]
    assert ids.shape == (2, 8)
    with pytest.raises(ValueError, match=r"`mask_rate` must be a number in \(0, 1\); got 1.0"):
        text.MaskedLMDataset(pydoc_train, TOKENIZER, 2, mask_rate=1.0)
    with pytest.raises(ValueError, match=r"`min_length` must be an integer in \[2, sequence_length = 16\] or "
                                         r"None; got 17"):
        text.MaskedLMDataset(pydoc_train, TOKENIZER, 2, sequence_length=16, min_length=17)
    with pytest.raises(ValueError, match=r"`sequence_length` must be an integer ≥ 2; got 1"):
        text.MaskedLMDataset(pydoc_train, TOKENIZER, 2, sequence_length=1)
    with pytest.raises(ValueError, match=r"`batch_size` must be an integer ≥ 1; got -3"):
        text.MaskedLMDataset(pydoc_train, TOKENIZER, -3)
    with pytest.raises(ValueError, match=r"`text_or_ids` must be token ids in \[0, 384\); got 999"):
        text.MaskedLMDataset([5, 999], TOKENIZER, 2)
    with pytest.raises(ValueError, match="`tokenizer` must be a ByteTokenizer"):
        text.MaskedLMDataset(pydoc_train, None, 2)


def test_package_exports():
    assert data.ByteTokenizer is text.ByteTokenizer and data.load_text is text.load_text
    assert {"ByteTokenizer", "SpanCorruptionDataset", "MaskedLMDataset", "load_text"} <= set(data.__all__)


def test_recipe_loaders_give_fixed_splits_with_ignored_labels_at_zero():
    from glu_zoo.data import load

    small = load("span_corruption", input_length=32, train_size=40, seed=0)
    other = load("span_corruption", input_length=32, train_size=72, seed=1)
    assert small.train[1].shape[0] == 40 and other.train[1].shape[0] == 72
    for a, b in ((small.validation, other.validation), (small.test, other.test)):  # not tied to the training draw
        assert np.array_equal(a[1], b[1]) and all(np.array_equal(a[0][k], b[0][k]) for k in a[0])
    x, y = small.test
    assert np.array_equal(y > 0, x["decoder_padding_mask"])  # a padded target is label 0, ignored by the loss
    assert np.array_equal(x["decoder_token_ids"][:, 1:], y[:, :-1]) and not x["decoder_token_ids"][:, 0].any()
    mlm = load("masked_lm", sequence_length=32, train_size=40)
    x, y = mlm.test
    selected = y > 0
    assert selected.any() and not (selected & ~x["padding_mask"]).any()
    assert 0.10 < selected.sum() / x["padding_mask"].sum() < 0.20  # evaluated at 15%, as MosaicBERT
    assert mlm.num_classes == small.num_classes == 384
