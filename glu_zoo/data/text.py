"""Text for the language models: a byte tokenizer, bundled corpora, T5 span
corruption and BERT masking; nothing is downloaded.

**Tokenizer.** `ByteTokenizer` reads UTF-8 bytes as ByT5 does (Xue et al.
2021, arXiv 2105.13626): ids pad 0, end 1, unk 2, mask 3, byte b ↦ b + 4
(4 … 259), sentinel i ↦ 260 + i; the vocabulary is padded up to a multiple
of 64 (the top ids are never produced).

**Corpora.** `load_text(source, split)`:

- ``"pydoc"``: the English text of Python's documentation topics
  (`pydoc_data.topics`, about 465 KB); each paragraph of a topic (split on
  blank lines) is a document (2,608 on Python 3.11): split by whole topics
  (only 79) the test split held 0.7 KB; by paragraph it holds about 20 KB.
- ``"stdlib"``: the docstrings of the installed standard library (public
  modules of `sys.stdlib_module_names`, read with `ast`, nothing imported;
  tests, IDLE, tkinter, turtle, lib2to3, ensurepip and pydoc_data skipped),
  one document per docstring (module, class, function), in file order;
  about 1.3 MB on Python 3.11. It depends on the Python version.
- a path to a UTF-8 text file: its paragraphs (split on blank lines) are the
  documents.

A document goes to train, validation or test by the crc32 of its UTF-8
text, mod 100 (< 90, < 95, else): a fixed 90 / 5 / 5 split, the same on
every machine, and equal documents (pydoc repeats short paragraphs, the
standard library docstrings) share a split, so no text is in two splits.
A split's documents are joined with ``"\\n\\n"``.

**Span corruption** (Raffel et al. 2019, T5, arXiv 1910.10683, §3.1.4):
`random_spans_noise_mask` and `random_spans_helper` as the T5 code's, and
`span_corruption` / `span_uncorrupt`. **Masking** (Devlin et al. 2018,
BERT, arXiv 1810.04805, §3.1): `MaskedLMDataset`.

    tokenizer = ByteTokenizer()
    train = SpanCorruptionDataset(load_text("pydoc", "train"), tokenizer, batch_size=32)
    x, y, sample_weight = train[0]   # x["encoder_token_ids"] (32, 128) int32 …
"""

import ast
import functools
import math
import os
import re
import sys
import sysconfig
import zlib

import keras
import numpy as np

__all__ = ["ByteTokenizer", "SOURCES", "SPLITS", "load_documents", "load_text", "random_spans_helper",
           "random_spans_noise_mask", "span_corruption", "span_uncorrupt", "SpanCorruptionDataset",
           "MaskedLMDataset", "load_span_corruption", "load_masked_lm"]

SOURCES = ("pydoc", "stdlib")
SPLITS = ("train", "validation", "test")
_BYTE_OFFSET = 4
_NUM_BYTES = 256
_STDLIB_SKIP = frozenset({"test", "idlelib", "tkinter", "turtle", "turtledemo", "lib2to3", "ensurepip",
                          "pydoc_data", "this", "antigravity"})
_PARAGRAPH = re.compile(r"\n[ \t]*\n")


def _is_int(value):
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _check_int(owner, name, value, low):
    if not _is_int(value) or value < low:
        raise ValueError(f"{owner}: `{name}` must be an integer ≥ {low}; got {value!r}.")
    return int(value)


def _check_fraction(owner, name, value):
    """A number in (0, 1)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.floating)) and 0.0 < value < 1.0
    if not ok:
        raise ValueError(f"{owner}: `{name}` must be a number in (0, 1); got {value!r}.")
    return float(value)


def _check_span_length(owner, value):
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.floating)) and math.isfinite(value)
          and value >= 1.0)
    if not ok:
        raise ValueError(f"{owner}: `mean_noise_span_length` must be a number ≥ 1; got {value!r}.")
    return float(value)


class ByteTokenizer:
    """UTF-8 bytes as token ids, with specials and T5 sentinels.

    ids: pad 0, end 1, unk 2, mask 3, byte b ↦ b + 4, sentinel i ↦ 260 + i
    (i < num_sentinels); `vocabulary_size` = 260 + num_sentinels rounded up
    to a multiple of 64 (100 sentinels: 384).
    """

    pad_id, end_id, unk_id, mask_id = 0, 1, 2, 3

    def __init__(self, num_sentinels=100):
        self.num_sentinels = _check_int("ByteTokenizer", "num_sentinels", num_sentinels, 0)
        self.first_sentinel_id = _BYTE_OFFSET + _NUM_BYTES
        self.vocabulary_size = -(-(self.first_sentinel_id + self.num_sentinels) // 64) * 64

    def sentinel_id(self, i):
        """The id of sentinel i (T5's `<extra_id_i>`), 0 ≤ i < num_sentinels."""
        if not _is_int(i) or not 0 <= i < self.num_sentinels:
            raise ValueError(f"ByteTokenizer.sentinel_id: `i` must be an integer in [0, {self.num_sentinels}); "
                             f"got {i!r}.")
        return self.first_sentinel_id + int(i)

    def encode(self, text, add_end=False):
        """The int32 ids of `text`'s UTF-8 bytes (+ end if `add_end`)."""
        if not isinstance(text, str):
            raise ValueError(f"ByteTokenizer.encode: `text` must be a str; got {type(text).__name__} {text!r:.80}.")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"ByteTokenizer.encode: `text` is not encodable as UTF-8 ({error}).") from None
        ids = np.frombuffer(data, np.uint8).astype(np.int32) + _BYTE_OFFSET
        if add_end:
            ids = np.append(ids, np.int32(self.end_id))
        return ids

    def check_ids(self, ids, owner="ByteTokenizer", name="ids"):
        """`ids` as a 1-D int64 array, or a ValueError unless integers in [0, vocabulary_size)."""
        array = np.asarray(ids)
        if array.size == 0:
            array = array.astype(np.int64)
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{owner}: `{name}` must be a 1-D sequence of integer token ids; got shape "
                             f"{array.shape}, dtype {array.dtype}.")
        bad = (array < 0) | (array >= self.vocabulary_size)
        if bad.any():
            raise ValueError(f"{owner}: `{name}` must be token ids in [0, {self.vocabulary_size}); got "
                             f"{int(array[bad][0])} at position {int(np.flatnonzero(bad)[0])}.")
        return array.astype(np.int64)

    def decode(self, ids):
        """The text of `ids`: pad, end and mask dropped, sentinels written
        `<extra_id_i>`, unk and unused ids as U+FFFD, invalid UTF-8 replaced."""
        ids = self.check_ids(ids, "ByteTokenizer.decode")
        pieces, run = [], bytearray()
        for i in ids.tolist():
            if _BYTE_OFFSET <= i < self.first_sentinel_id:
                run.append(i - _BYTE_OFFSET)
                continue
            if i in (self.pad_id, self.end_id, self.mask_id):
                continue
            pieces.append(run.decode("utf-8", errors="replace"))
            run = bytearray()
            s = i - self.first_sentinel_id
            pieces.append(f"<extra_id_{s}>" if 0 <= s < self.num_sentinels else "\ufffd")
        pieces.append(run.decode("utf-8", errors="replace"))
        return "".join(pieces)

    def get_config(self):
        return {"num_sentinels": self.num_sentinels}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"ByteTokenizer(num_sentinels={self.num_sentinels})"

    def __eq__(self, other):
        return isinstance(other, ByteTokenizer) and other.num_sentinels == self.num_sentinels

    def __hash__(self):
        return hash(("ByteTokenizer", self.num_sentinels))


# ----------------------------------------------------------------------------------------------- corpora


def _paragraphs(text):
    return [p.strip("\n") for p in _PARAGRAPH.split(text) if p.strip()]


@functools.lru_cache(maxsize=None)
def _pydoc_documents():
    from pydoc_data.topics import topics

    return tuple(paragraph for key in sorted(topics) for paragraph in _paragraphs(topics[key]))


def _stdlib_files():
    """(module name, path) of the public standard library's Python files, sorted."""
    root = sysconfig.get_paths()["stdlib"]
    files = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in _STDLIB_SKIP:
            continue
        single, package = os.path.join(root, name + ".py"), os.path.join(root, name)
        if os.path.isfile(single):
            files.append((name, single))
        elif os.path.isfile(os.path.join(package, "__init__.py")):
            found = []
            for folder, subfolders, names in os.walk(package):
                subfolders[:] = [d for d in subfolders if d not in ("test", "tests", "idle_test", "__pycache__")]
                for file in names:
                    if file.endswith(".py"):
                        path = os.path.join(folder, file)
                        module = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                        found.append((module.removesuffix(".__init__"), path))
            files += sorted(found)
    return files


@functools.lru_cache(maxsize=None)
def _stdlib_documents():
    documents = []

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(child)
                if doc and doc.strip():
                    documents.append(doc)
                walk(child)

    for _, path in _stdlib_files():
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        doc = ast.get_docstring(tree)
        if doc and doc.strip():
            documents.append(doc)
        walk(tree)
    return tuple(documents)


def _file_documents(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return _paragraphs(f.read())


def _split_of(document):
    bucket = zlib.crc32(document.encode("utf-8", errors="surrogatepass")) % 100
    return "train" if bucket < 90 else "validation" if bucket < 95 else "test"


def load_documents(source="pydoc", split="train"):
    """The documents (a list of str, in corpus order) of `split` of `source`:
    "pydoc", "stdlib" or a text file's path (see the module's docstring)."""
    owner = "load_text"
    if split not in SPLITS:
        raise ValueError(f"{owner}: unknown `split` {split!r}; allowed: {', '.join(SPLITS)}.")
    if isinstance(source, str) and source in SOURCES:
        documents = _pydoc_documents() if source == "pydoc" else _stdlib_documents()
    elif isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        documents = _file_documents(source)
    else:
        raise ValueError(f"{owner}: unknown `source` {source!r}; allowed: {', '.join(map(repr, SOURCES))} or "
                         f"the path of an existing text file.")
    if not documents:
        raise ValueError(f"{owner}: `source` {source!r} holds no text.")
    chosen = [document for document in documents if _split_of(document) == split]
    if not chosen:
        raise ValueError(f"{owner}: split {split!r} of `source` {source!r} is empty: none of its "
                         f"{len(documents)} documents (paragraphs) falls in it; give a longer text.")
    return chosen


def load_text(source="pydoc", split="train"):
    """`split` ("train", "validation" or "test") of `source` as one str, its
    documents joined with blank lines. Deterministic, offline."""
    return "\n\n".join(load_documents(source, split))


# ------------------------------------------------------------------------------------------ span corruption


def _counts(length, noise_density, mean_noise_span_length):
    """T5's (noise tokens, noise spans) of a sequence of `length` (≥ 2) tokens,
    both ≥ 1; the spans capped at the non-noise tokens (T5 does not cap: its
    segmentation would give empty spans there)."""
    num_noise = min(max(int(round(length * noise_density)), 1), length - 1)
    num_spans = max(int(round(num_noise / mean_noise_span_length)), 1)
    return num_noise, min(num_spans, length - num_noise)


def _random_segmentation(rng, num_items, num_segments):
    """Lengths (≥ 1, summing to num_items) of `num_segments` segments: the cuts
    are a uniform choice of num_segments − 1 of the num_items − 1 gaps."""
    first = np.zeros(num_items, bool)
    first[1 + rng.choice(num_items - 1, num_segments - 1, replace=False)] = True
    return np.bincount(np.cumsum(first), minlength=num_segments)


def _noise_mask(length, rng, noise_density, mean_noise_span_length):
    work = max(length, 2)
    num_noise, num_spans = _counts(work, noise_density, mean_noise_span_length)
    noise = _random_segmentation(rng, num_noise, num_spans)
    nonnoise = _random_segmentation(rng, work - num_noise, num_spans)
    lengths = np.stack([nonnoise, noise], axis=1).reshape(-1)  # non-noise first, alternating
    is_noise = np.repeat(np.tile([False, True], num_spans), lengths)
    return is_noise[:length]


def random_spans_noise_mask(length, rng, noise_density=0.15, mean_noise_span_length=3.0):
    """T5's noise mask (bool, (length,)): round(length·noise_density) noise
    tokens (at least 1 and at most length − 1) in round(noise/mean_noise_span_length)
    spans (at least 1); spans alternate non-noise, noise, …, starting with
    non-noise (so the last token is always noise), and every mask with those
    counts is equally likely. `rng` a `np.random.Generator`. As T5, a sequence
    of 1 token is masked as one of 2 and cut (no noise)."""
    owner = "random_spans_noise_mask"
    length = _check_int(owner, "length", length, 1)
    noise_density = _check_fraction(owner, "noise_density", noise_density)
    mean_noise_span_length = _check_span_length(owner, mean_noise_span_length)
    return _noise_mask(length, rng, noise_density, mean_noise_span_length)


def random_spans_helper(inputs_length, noise_density=0.15, mean_noise_span_length=3.0):
    """T5's `random_spans_helper`: (tokens_length, targets_length), the raw
    chunk length whose corrupted inputs (non-noise tokens + one sentinel per
    span + end) fill at most `inputs_length`, the longest such, and the
    length of its targets (noise tokens + one sentinel per span + end).
    T5's case: 512 → (568, 114)."""
    owner = "random_spans_helper"
    inputs_length = _check_int(owner, "inputs_length", inputs_length, 2)
    noise_density = _check_fraction(owner, "noise_density", noise_density)
    mean_noise_span_length = _check_span_length(owner, mean_noise_span_length)

    def lengths(tokens_length):
        num_noise = int(round(tokens_length * noise_density))
        num_spans = int(round(num_noise / mean_noise_span_length))
        return tokens_length - num_noise + num_spans + 1, num_noise + num_spans + 1

    tokens_length = inputs_length - 1
    while lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    targets_length = lengths(tokens_length)[1]
    if noise_density == 0.5 and targets_length > inputs_length:  # T5: keep targets as long as inputs
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


def _corrupt(ids, mask, sentinels, end_id):
    starts = mask & ~np.concatenate([[False], mask[:-1]])
    span = np.cumsum(starts) - 1
    inputs = np.where(starts, sentinels[np.maximum(span, 0)], ids)[~mask | starts]
    targets = np.insert(ids[mask], np.flatnonzero(starts[mask]), sentinels[: int(starts.sum())])
    return (np.append(inputs, end_id).astype(np.int32), np.append(targets, end_id).astype(np.int32))


def _tokenizer(tokenizer, owner):
    if tokenizer is None:
        return ByteTokenizer()
    if not isinstance(tokenizer, ByteTokenizer):
        raise ValueError(f"{owner}: `tokenizer` must be a ByteTokenizer; got {tokenizer!r}.")
    return tokenizer


def _sentinels(tokenizer):
    return np.arange(tokenizer.num_sentinels, dtype=np.int64) + tokenizer.first_sentinel_id


def _check_raw_ids(ids, tokenizer, owner, name):
    ids = tokenizer.check_ids(ids, owner, name)
    reserved = (ids == tokenizer.pad_id) | (ids >= tokenizer.first_sentinel_id)
    if reserved.any():
        raise ValueError(f"{owner}: `{name}` must not hold pad ({tokenizer.pad_id}) or sentinel ids "
                         f"(≥ {tokenizer.first_sentinel_id}), which span corruption reserves; got "
                         f"{int(ids[reserved][0])} at position {int(np.flatnonzero(reserved)[0])}.")
    return ids


def span_corruption(ids, rng, noise_density=0.15, mean_noise_span_length=3.0, tokenizer=None):
    """T5's span corruption of one sequence (arXiv 1910.10683, §3.1.4): (inputs, targets), int32.

    With `random_spans_noise_mask`, inputs = the non-noise tokens with each
    noise span replaced by one sentinel (sentinel 0, 1, … in order) + end;
    targets = for each span its sentinel then its tokens, + end. E.g.
    "Thank you for inviting me" → inputs "Thank you <extra_id_0> me",
    targets "<extra_id_0> for inviting". `tokenizer` None: `ByteTokenizer()`.
    `ids` must not hold pad or sentinel ids. `span_uncorrupt` inverts it.
    """
    owner = "span_corruption"
    tokenizer = _tokenizer(tokenizer, owner)
    ids = _check_raw_ids(ids, tokenizer, owner, "ids")
    if ids.size == 0:
        raise ValueError(f"{owner}: `ids` is empty; give at least one token.")
    noise_density = _check_fraction(owner, "noise_density", noise_density)
    mean_noise_span_length = _check_span_length(owner, mean_noise_span_length)
    mask = _noise_mask(len(ids), rng, noise_density, mean_noise_span_length)
    num_spans = int((mask & ~np.concatenate([[False], mask[:-1]])).sum())
    if num_spans > tokenizer.num_sentinels:
        raise ValueError(f"{owner}: {len(ids)} tokens make {num_spans} noise spans but the tokenizer has "
                         f"`num_sentinels` {tokenizer.num_sentinels}; use a shorter sequence or more sentinels.")
    return _corrupt(ids, mask, _sentinels(tokenizer), tokenizer.end_id)


def _strip(ids, tokenizer):
    """Trailing padding, then one trailing end, dropped."""
    real = np.flatnonzero(ids != tokenizer.pad_id)
    ids = ids[: real[-1] + 1] if real.size else ids[:0]
    return ids[:-1] if ids.size and ids[-1] == tokenizer.end_id else ids


def span_uncorrupt(inputs, targets, tokenizer=None):
    """The original ids (int32) of `span_corruption`'s (inputs, targets);
    trailing padding and the end token may be present or not."""
    owner = "span_uncorrupt"
    tokenizer = _tokenizer(tokenizer, owner)
    inputs = _strip(tokenizer.check_ids(inputs, owner, "inputs"), tokenizer)
    targets = _strip(tokenizer.check_ids(targets, owner, "targets"), tokenizer)
    at_inputs = np.flatnonzero(inputs >= tokenizer.first_sentinel_id)
    at_targets = np.flatnonzero(targets >= tokenizer.first_sentinel_id)
    expected = np.arange(len(at_inputs)) + tokenizer.first_sentinel_id
    if not np.array_equal(inputs[at_inputs], expected) or not np.array_equal(targets[at_targets], expected):
        raise ValueError(f"{owner}: `inputs` and `targets` must hold the same sentinels 0, 1, … in order; got "
                         f"{(inputs[at_inputs] - tokenizer.first_sentinel_id).tolist()} and "
                         f"{(targets[at_targets] - tokenizer.first_sentinel_id).tolist()}.")
    if len(targets) and (not len(at_targets) or at_targets[0] != 0):
        raise ValueError(f"{owner}: `targets` must start with sentinel 0; got {int(targets[0])}.")
    kept = np.split(inputs, at_inputs)
    spans = np.split(targets, at_targets)[1:]
    pieces = [kept[0]]
    for span, rest in zip(spans, kept[1:]):
        pieces += [span[1:], rest[1:]]
    return np.concatenate(pieces).astype(np.int32)


# ------------------------------------------------------------------------------------------------ datasets


class _TextBatches(keras.utils.PyDataset):
    """Batches of crops of one token stream; batch i is a pure function of
    (seed, epoch, i) (shuffle) or (seed, i) (not shuffle). `epoch` is an
    attribute: `on_epoch_end` adds one, a caller or callback may set it."""

    _owner = "_TextBatches"

    def __init__(self, text_or_ids, tokenizer, batch_size, seed, steps, shuffle, chunk_length, **kwargs):
        super().__init__(**kwargs)
        owner = self._owner
        if not isinstance(tokenizer, ByteTokenizer):
            raise ValueError(f"{owner}: `tokenizer` must be a ByteTokenizer; got {tokenizer!r}.")
        self.tokenizer = tokenizer
        self.batch_size = _check_int(owner, "batch_size", batch_size, 1)
        self.seed = _check_int(owner, "seed", seed, 0)
        if steps is not None:
            steps = _check_int(owner, "steps", steps, 1)
        if not isinstance(shuffle, bool):
            raise ValueError(f"{owner}: `shuffle` must be True or False; got {shuffle!r}.")
        self.steps, self.shuffle = steps, shuffle
        if isinstance(text_or_ids, str):
            if not text_or_ids:
                raise ValueError(f"{owner}: `text_or_ids` is empty text; give some text or token ids.")
            stream = tokenizer.encode(text_or_ids)
        else:
            stream = _check_raw_ids(text_or_ids, tokenizer, owner, "text_or_ids")
            if stream.size == 0:
                raise ValueError(f"{owner}: `text_or_ids` is empty; give some text or token ids.")
        if len(stream) < chunk_length:
            raise ValueError(f"{owner}: `text_or_ids` has {len(stream)} tokens; a sequence needs "
                             f"{chunk_length}: give more text or shorter sequences.")
        self.stream = stream.astype(np.int32)
        self.chunk_length = chunk_length
        self.num_chunks = len(stream) // chunk_length
        self.epoch = 0

    def __len__(self):
        return self.steps if self.steps is not None else max(1, self.num_chunks // self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1

    def _rng_and_offsets(self, index):
        if not _is_int(index) or not 0 <= index < len(self):
            raise IndexError(f"{self._owner}: batch index {index!r} out of range [0, {len(self)}).")
        index = int(index)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            offsets = rng.integers(0, len(self.stream) - self.chunk_length + 1, size=self.batch_size)
        else:
            rng = np.random.default_rng([self.seed, index])
            rows = index * self.batch_size + np.arange(self.batch_size)
            offsets = (rows % self.num_chunks) * self.chunk_length
        return rng, offsets


class SpanCorruptionDataset(_TextBatches):
    """T5 span-corruption batches (arXiv 1910.10683) of a text or token ids, for `model.fit`.

    Each row is a crop of `random_spans_helper(input_length, …)[0]` raw
    tokens, the most whose corrupted inputs fit `input_length` (T5's 512 →
    568), corrupted by `span_corruption`. `target_length` None: T5's (512 →
    114); a longer one pads. Batch i: `(x, y, sample_weight)` with
    x = {"encoder_token_ids" int32 (B, input_length), "encoder_padding_mask"
    bool, "decoder_token_ids" int32 (B, target_length) = targets shifted right
    with pad 0 as start, "decoder_padding_mask" bool, True where the target
    at that position is real}, y = targets int32
    (B, target_length), 0 past the end, sample_weight float32 = 1 on the
    real target tokens (end included).

    shuffle=True: crops at random offsets and fresh noise, both from
    (seed, epoch, i). shuffle=False (evaluation): row r of batch i is the
    (i·B + r)-th consecutive chunk (cycling) with noise from (seed, i): the
    same batches every epoch. `steps` None: ⌊chunks / batch_size⌋ batches
    (at least 1), one pass over the text. Other keyword arguments go to
    `keras.utils.PyDataset` (workers, …).
    """

    _owner = "SpanCorruptionDataset"

    def __init__(self, text_or_ids, tokenizer, batch_size, input_length=128, target_length=None,
                 noise_density=0.15, mean_noise_span_length=3.0, seed=0, steps=None, shuffle=True, **kwargs):
        owner = self._owner
        input_length = _check_int(owner, "input_length", input_length, 2)
        self.noise_density = _check_fraction(owner, "noise_density", noise_density)
        self.mean_noise_span_length = _check_span_length(owner, mean_noise_span_length)
        raw_length, needed = random_spans_helper(input_length, self.noise_density, self.mean_noise_span_length)
        num_noise, num_spans = _counts(max(raw_length, 2), self.noise_density, self.mean_noise_span_length)
        needed = max(needed, num_noise + num_spans + 1)
        if target_length is None:
            target_length = needed
        elif not _is_int(target_length) or target_length < needed:
            raise ValueError(f"{owner}: `target_length` must be an integer ≥ {needed} (the targets of "
                             f"input_length {input_length}) or None; got {target_length!r}.")
        if isinstance(tokenizer, ByteTokenizer) and num_spans > tokenizer.num_sentinels:
            raise ValueError(f"{owner}: input_length {input_length} makes {num_spans} noise spans but the "
                             f"tokenizer has `num_sentinels` {tokenizer.num_sentinels}.")
        self.input_length, self.target_length, self.raw_length = input_length, int(target_length), raw_length
        super().__init__(text_or_ids, tokenizer, batch_size, seed, steps, shuffle, raw_length, **kwargs)
        self._sentinel_ids = _sentinels(self.tokenizer)

    def __getitem__(self, index):
        rng, offsets = self._rng_and_offsets(index)
        b, end = self.batch_size, self.tokenizer.end_id
        encoder = np.zeros((b, self.input_length), np.int32)
        targets = np.zeros((b, self.target_length), np.int32)
        for row, offset in enumerate(offsets):
            ids = self.stream[offset: offset + self.raw_length]
            mask = _noise_mask(len(ids), rng, self.noise_density, self.mean_noise_span_length)
            inputs, target = _corrupt(ids, mask, self._sentinel_ids, end)
            encoder[row, : len(inputs)] = inputs
            targets[row, : len(target)] = target
        real = targets != self.tokenizer.pad_id
        decoder = np.concatenate([np.zeros((b, 1), np.int32), targets[:, :-1]], axis=1)
        # decoder position j reads the start or target j − 1 and predicts target j: real where target j is
        x = {"encoder_token_ids": encoder, "encoder_padding_mask": encoder != self.tokenizer.pad_id,
             "decoder_token_ids": decoder, "decoder_padding_mask": real}
        return x, targets, real.astype(np.float32)


class MaskedLMDataset(_TextBatches):
    """BERT masked-language-model batches (arXiv 1810.04805, §3.1) of a text or token ids.

    Each row is a crop of ℓ − 1 tokens + end, ℓ uniform in
    [min_length, sequence_length] (min_length None: max(2, L // 4)), padded
    with 0 to L = sequence_length: the lengths vary so that the padding is
    realistic (for unpadding). round(mask_rate · (ℓ − 1)) positions (at least
    1; never the end or padding) are selected uniformly without replacement;
    each selected token becomes mask_id with probability 0.8, a random byte
    token (ids 4 … 259, as BERT any token, maybe itself) with 0.1, and stays
    with 0.1. Batch i: `(x, y, sample_weight)`, x = {"token_ids" int32
    (B, L), "padding_mask" bool (B, L)}, y = the original ids int32 (B, L),
    sample_weight float32 = 1 at the selected positions, else 0.

    shuffle=True: crops, lengths and masks from (seed, epoch, i); False
    (evaluation): row r of batch i starts the (i·B + r)-th consecutive chunk
    of L − 1 tokens (cycling), lengths and masks from (seed, i). `steps`
    None: ⌊chunks / batch_size⌋ batches (at least 1).
    """

    _owner = "MaskedLMDataset"

    def __init__(self, text_or_ids, tokenizer, batch_size, sequence_length=128, mask_rate=0.30, seed=0,
                 steps=None, min_length=None, shuffle=True, **kwargs):
        owner = self._owner
        self.sequence_length = _check_int(owner, "sequence_length", sequence_length, 2)
        self.mask_rate = _check_fraction(owner, "mask_rate", mask_rate)
        if min_length is None:
            min_length = max(2, self.sequence_length // 4)
        elif not _is_int(min_length) or not 2 <= min_length <= self.sequence_length:
            raise ValueError(f"{owner}: `min_length` must be an integer in [2, sequence_length = "
                             f"{self.sequence_length}] or None; got {min_length!r}.")
        self.min_length = int(min_length)
        super().__init__(text_or_ids, tokenizer, batch_size, seed, steps, shuffle, self.sequence_length - 1,
                         **kwargs)

    def __getitem__(self, index):
        rng, offsets = self._rng_and_offsets(index)
        b, length = self.batch_size, self.sequence_length
        tok = self.tokenizer
        lengths = rng.integers(self.min_length, length + 1, size=b)
        original = np.zeros((b, length), np.int32)
        selected = np.zeros((b, length), bool)
        for row, (offset, n) in enumerate(zip(offsets, lengths)):
            original[row, : n - 1] = self.stream[offset: offset + n - 1]
            original[row, n - 1] = tok.end_id
            count = max(1, int(round(self.mask_rate * (n - 1))))
            selected[row, rng.choice(n - 1, count, replace=False)] = True
        draw = rng.random((b, length))
        random_bytes = rng.integers(_BYTE_OFFSET, _BYTE_OFFSET + _NUM_BYTES, size=(b, length), dtype=np.int32)
        token_ids = np.where(selected & (draw < 0.8), np.int32(tok.mask_id), original)
        token_ids = np.where(selected & (draw >= 0.9), random_bytes, token_ids)
        x = {"token_ids": token_ids.astype(np.int32), "padding_mask": np.arange(length) < lengths[:, None]}
        return x, original, selected.astype(np.float32)


def _materialize(dataset, rows=None):
    """The batches of a text PyDataset as one (x, y) of arrays; a label 0 is
    ignored by the loss (padding, or an MLM position not selected)."""
    xs, ys = [], []
    for i in range(len(dataset)):
        x, y, weight = dataset[i]
        xs.append(x)
        ys.append(np.where(weight > 0, y, 0).astype(np.int32))
    x = {key: np.concatenate([batch[key] for batch in xs])[:rows] for key in xs[0]}
    return x, np.concatenate(ys)[:rows]


def load_span_corruption(source="pydoc", input_length=128, target_length=None, train_size=16384,
                         noise_density=0.15, mean_noise_span_length=3.0, seed=0):
    """T5 span corruption of a bundled corpus as fixed arrays, for recipes.

    Training: `train_size` random crops of the training text with their own
    noise (`SpanCorruptionDataset`, seeded by `seed`); validation and test:
    every consecutive chunk of their split's text once, with noise from a
    seed of their own, so they do not depend on `train_size` or `seed`.
    x = {encoder_token_ids, encoder_padding_mask, decoder_token_ids,
    decoder_padding_mask}, y = the targets with 0 on padding (ignored by
    the loss). Returns a `glu_zoo.data.Splits` (num_classes: the vocabulary).
    """
    from glu_zoo.data.digits import Splits

    owner = "load_span_corruption"
    tokenizer = ByteTokenizer()
    train_size = _check_int(owner, "train_size", train_size, 1)
    options = dict(input_length=input_length, target_length=target_length, noise_density=noise_density,
                   mean_noise_span_length=mean_noise_span_length)
    train = SpanCorruptionDataset(load_text(source, "train"), tokenizer, 256, seed=seed,
                                  steps=math.ceil(train_size / 256), shuffle=True, **options)
    splits = {"train": _materialize(train, train_size)}
    for offset, split in ((1, "validation"), (2, "test")):
        data = SpanCorruptionDataset(load_text(source, split), tokenizer, 1, seed=10_000 + offset,
                                     target_length=train.target_length, shuffle=False,
                                     **{k: v for k, v in options.items() if k != "target_length"})
        splits[split] = _materialize(data)
    return Splits(train=splits["train"], validation=splits["validation"], test=splits["test"],
                  num_classes=tokenizer.vocabulary_size,
                  description=f"{source} span corruption (T5: noise {noise_density}, mean span "
                              f"{mean_noise_span_length}), inputs {input_length} / targets {train.target_length} "
                              f"bytes; {len(splits['train'][1])} training crops; validation and test: every chunk "
                              f"of their split once ({len(splits['validation'][1])}, {len(splits['test'][1])})")


def load_masked_lm(source="pydoc", sequence_length=128, train_size=16384, mask_rate=0.30, eval_mask_rate=0.15,
                   seed=0):
    """BERT masked-LM batches of a bundled corpus as fixed arrays, for recipes.

    As `load_span_corruption`: `train_size` random crops of the training text
    masked at `mask_rate` (MosaicBERT trains at 30%), validation and test
    every chunk once, masked at `eval_mask_rate` (15%, as MosaicBERT
    evaluates). x = {token_ids, padding_mask} (variable lengths, so real
    padding), y = the original ids at the selected positions and 0 elsewhere
    (ignored by the loss)."""
    from glu_zoo.data.digits import Splits

    owner = "load_masked_lm"
    tokenizer = ByteTokenizer()
    train_size = _check_int(owner, "train_size", train_size, 1)
    train = MaskedLMDataset(load_text(source, "train"), tokenizer, 256, sequence_length=sequence_length,
                            mask_rate=mask_rate, seed=seed, steps=math.ceil(train_size / 256), shuffle=True)
    splits = {"train": _materialize(train, train_size)}
    for offset, split in ((1, "validation"), (2, "test")):
        data = MaskedLMDataset(load_text(source, split), tokenizer, 1, sequence_length=sequence_length,
                               mask_rate=eval_mask_rate, seed=10_000 + offset, shuffle=False)
        splits[split] = _materialize(data)
    return Splits(train=splits["train"], validation=splits["validation"], test=splits["test"],
                  num_classes=tokenizer.vocabulary_size,
                  description=f"{source} masked LM (BERT 80/10/10), {sequence_length} bytes; {train_size} training "
                              f"crops masked at {mask_rate}; validation and test: every chunk of their split once, "
                              f"masked at {eval_mask_rate}")
