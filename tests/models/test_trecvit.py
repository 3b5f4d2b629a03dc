"""TRecViT (arXiv 2412.14294): the official model on a tiny checkpoint written in the official
names and shapes, against a NumPy forward (tests/reference.py); the checkpoint's errors;
causality; streaming; save/load; bad inputs; the official sizes' parameter counts."""

import math

import keras
import numpy as np
import pytest

import glu_zoo.models
from glu_zoo.layers import FFN, RecurrentBlock, TransformerEncoderBlock
from glu_zoo.models import TRecViT
from glu_zoo.models.trecvit import ARCHITECTURES
from glu_zoo.presets.io import unallocated
from tests import reference as ref
from tests.conftest import to_numpy
from tests.models import (check_config_round_trip, check_dtype_policy_round_trip, check_fit_step, check_keras_round_trip,
                          randomise)

# A rectangular image (2×3 patches) and two channels, so that a swapped axis shows.
IMAGE = (8, 12, 2)
TINY = dict(image_size=(8, 12), num_channels=2, patch_size=4, num_classes=5, hidden_dim=16, num_layers=2,
            num_heads=2, mlp_dim=24, lru_width=None, conv_width=4, representation_dim=20)
FRAMES = 6
CUTS = (0, 2, 5)  # frames after which the clip is cut, to compare with streaming


@pytest.fixture
def rng():
    return np.random.default_rng(21)


@pytest.fixture(scope="module")
def official():
    """A tiny checkpoint in the official layout, the model loaded from it, a clip
    (2, 6, 8, 12, 2), and the logits of that clip cut after frames 0, 2 and 5 (through
    `predict`). Shared, and few input shapes: on JAX each new shape compiles every op again."""
    rng = np.random.default_rng(34)
    params = official_checkpoint(rng)
    model = load_tiny(params)
    x = clip(rng)
    truncated = {s: model.predict(x[:, :s + 1], verbose=0) for s in CUTS}
    return params, model, x, truncated


def clip(rng, batch=2, frames=FRAMES):
    return rng.uniform(0.0, 1.0, size=(batch, frames, *IMAGE)).astype("float32")


def official_checkpoint(rng, d=16, depth=2, heads=2, mlp=24, patch=4, channels=2, patches=6, rep=20, classes=5,
                        conv=4, dtype="float32"):
    """Random weights under the official Flax names and shapes (google-deepmind/trecvit,
    '/'-joined as in trecvit_B_k400.npz): RG-LRU width 2d in `heads` blocks."""
    width, block, key = 2 * d, 2 * d // heads, d // heads

    def normal(*shape, std=None):
        std = 1.0 / math.sqrt(shape[0] if len(shape) > 1 else 1) if std is None else std
        return (rng.normal(size=shape) * std).astype(dtype)

    p = {
        "tokenizer/embedding/kernel": normal(1, patch, patch, channels, d, std=1.0 / (patch * math.sqrt(channels))),
        "tokenizer/embedding/bias": normal(d, std=0.1),
        "tokenizer/pos_embedding": normal(1, patches, d, std=0.5),
        "tokenizer/cls": normal(1, 1, d, std=0.5),
    }
    for i in range(depth):
        r = f"encoder/residualblock_{i:02d}/"
        q = r + "recurrent_block/"
        p[r + "temporal_pre_norm/scale"] = normal(d, std=0.2)
        for name, shape in (("linear_y", (d, width)), ("linear_x", (d, width)), ("linear_out", (width, d))):
            p[q + name + "/kernel"] = normal(*shape)
            p[q + name + "/bias"] = normal(shape[1], std=0.1)
        p[q + "conv_1d/w"] = normal(conv, width, std=0.4)
        p[q + "conv_1d/b"] = normal(width, std=0.1)
        p[q + "rg_lru/a_param"] = normal(width, std=1.0)
        for gate in ("input_gate", "a_gate"):
            p[q + f"rg_lru/{gate}/w"] = normal(heads, block, block, std=1.0 / math.sqrt(block))
            p[q + f"rg_lru/{gate}/b"] = normal(heads, block, std=0.2)
        e = f"encoder/encoderblock_{i}/"
        for norm in ("LayerNorm_0", "LayerNorm_1"):
            p[e + norm + "/scale"] = (1.0 + normal(d, std=0.1)).astype(dtype)
            p[e + norm + "/bias"] = normal(d, std=0.1)
        a = e + "MultiHeadDotProductAttention_0/"
        for name in ("query", "key", "value"):
            p[a + name + "/kernel"] = normal(d, heads, key)
            p[a + name + "/bias"] = normal(heads, key, std=0.1)
        p[a + "out/kernel"] = normal(heads, key, d, std=1.0 / math.sqrt(d))
        p[a + "out/bias"] = normal(d, std=0.1)
        p[e + "MlpBlock_0/Dense_0/kernel"] = normal(d, mlp)
        p[e + "MlpBlock_0/Dense_0/bias"] = normal(mlp, std=0.1)
        p[e + "MlpBlock_0/Dense_1/kernel"] = normal(mlp, d)
        p[e + "MlpBlock_0/Dense_1/bias"] = normal(d, std=0.1)
    p["encoder/encoder_norm/scale"] = (1.0 + normal(d, std=0.1)).astype(dtype)
    p["encoder/encoder_norm/bias"] = normal(d, std=0.1)
    p["decoder/pre_logits/kernel"] = normal(d, rep, std=1.0)
    p["decoder/pre_logits/bias"] = normal(rep, std=0.1)
    p["decoder/cls_head/kernel"] = normal(rep, classes, std=1.0)
    p["decoder/cls_head/bias"] = normal(classes, std=0.1)
    return p


def relative_error(got, expected):
    return np.abs(to_numpy(got) - expected).max() / np.abs(expected).max()


def load_tiny(checkpoint, **overrides):
    return TRecViT.from_official(checkpoint, "trecvit_b", **{**TINY, **overrides})


def encoded(model, x):
    """The final LayerNorm's output (B, T, 1 + N, d): every token of every frame."""
    return to_numpy(keras.Model(model.input, model.get_layer("final_norm").output)(x))


# --- the official model ---------------------------------------------------------------------

def test_official_checkpoint_matches_the_numpy_reference(official, tmp_path):
    """From a dict (float64 arrays, cast to float32) and from an .npz; one clip,
    and the official split into max(6 // 3, 1) = 2 clips of 3 frames (and into
    max(6 // 4, 1) = 1 clip). Within 1e-5 relative, ten times tighter than the
    1e-4 asked for: float32 gives ~2e-7, while the exact GELU in place of the
    tanh one gives ~5e-5 in two layers, which 1e-4 would let through."""
    params, _, x, _ = official
    model = load_tiny({k: v.astype(np.float64) for k, v in params.items()})
    expected = ref.trecvit(x, params)
    assert relative_error(model(x), expected) < 1e-5
    assert np.abs(expected).max() > 1.0  # the outputs are not small

    path = tmp_path / "tiny.npz"
    np.savez(path, **params)
    split = load_tiny(str(path), frames_per_clip=3)
    expected_split = ref.trecvit(x, params, frames_per_clip=3)
    assert relative_error(split(x), expected_split) < 1e-5
    assert np.abs(expected_split - expected).max() > 1e-2  # the split resets the recurrences
    assert relative_error(load_tiny(path, frames_per_clip=4)(x), expected) < 1e-5  # a pathlib.Path; one clip


def test_every_weight_has_one_official_name():
    model = TRecViT(**TINY)
    names = model.official_weights()
    assert len(names) == 4 + 2 * (14 + 16) + 2 + 4
    assert sorted(id(v) for v, _ in names.values()) == sorted(id(v) for v in model.weights)
    assert sorted(names) == sorted(official_checkpoint(np.random.default_rng(0)))


def test_checkpoint_errors_name_the_weight(rng, tmp_path):
    params = official_checkpoint(rng)
    name = "encoder/residualblock_01/recurrent_block/rg_lru/a_gate/w"
    missing = {k: v for k, v in params.items() if k != name}
    with pytest.raises(ValueError, match=rf"missing 1 weight\(s\): {name} \(2, 16, 16\)"):
        load_tiny(missing)
    extra = dict(params, **{"encoder/residualblock_02/temporal_pre_norm/scale": np.zeros(16)})
    with pytest.raises(ValueError, match=r"1 unexpected name\(s\): encoder/residualblock_02/temporal_pre_norm/"
                                         r"scale \(16,\)"):
        load_tiny(extra)
    wrong = dict(params, **{"tokenizer/pos_embedding": np.zeros((1, 7, 16), "float32")})
    with pytest.raises(ValueError, match=r"tokenizer/pos_embedding must have shape \(1, 6, 16\); got shape "
                                         r"\(1, 7, 16\)"):
        load_tiny(wrong)
    squeezed = dict(params, **{"tokenizer/cls": params["tokenizer/cls"][0, 0]})
    with pytest.raises(ValueError, match=r"tokenizer/cls must have shape \(1, 1, 16\); got shape \(16,\)"):
        load_tiny(squeezed)
    # The 400-class head does not fit a 5-class model: the error says which head it expected.
    with pytest.raises(ValueError, match=r"decoder/cls_head/kernel must have shape \(20, 7\); got shape \(20, 5\)"):
        load_tiny(params, num_classes=7)
    text = dict(params, **{"decoder/cls_head/bias": np.array(["a"] * 5)})
    with pytest.raises(ValueError, match=r"decoder/cls_head/bias must hold numbers; got dtype <U1"):
        load_tiny(text)
    path = tmp_path / "pickled.npz"
    np.savez(path, **dict(params, **{"decoder/cls_head/bias": np.array([object()] * 5)}))
    with pytest.raises(ValueError, match="allow_pickle=False"):  # a checkpoint is data, never code
        load_tiny(path)
    with pytest.raises(ValueError, match=r"unknown architecture 'trecvit_h'; known: trecvit_b, trecvit_l"):
        TRecViT.from_official(params, "trecvit_h")


# --- causality and streaming ------------------------------------------------------------------

def test_causal_in_time(official, rng):
    """Changing frames 3.. leaves every token of frames 0..2 unchanged, and changes frame 3's."""
    _, model, x, _ = official
    changed = x.copy()
    changed[:, 3:] = rng.uniform(size=changed[:, 3:].shape)
    before, after = encoded(model, x), encoded(model, changed)
    np.testing.assert_allclose(after[:, :3], before[:, :3], rtol=1e-5, atol=1e-5)
    assert np.abs(after[:, 3:] - before[:, 3:]).max(axis=(0, 2, 3)).min() > 1e-2  # every later frame moves


def running_logits(model, x):
    """The logits of the clip cut after each frame, from one run on the whole clip: the
    head of the running mean of its tanh pre-logits (frame s's depend on frames ≤ s only)."""
    z = to_numpy(keras.Model(model.input, model.get_layer("pre_logits").output)(x)).astype(np.float64)
    head = model.get_layer("head")
    running = np.cumsum(z, axis=1) / np.arange(1, z.shape[1] + 1)[:, None]
    return running @ to_numpy(head.kernel) + to_numpy(head.bias)


def test_truncated_clips_are_the_whole_clip_up_to_there(official):
    _, model, x, truncated = official
    running = running_logits(model, x)
    for s in CUTS:
        np.testing.assert_allclose(truncated[s], running[:, s], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(model(x)), running[:, -1], rtol=1e-5, atol=1e-5)
    assert np.abs(running[:, 0] - running[:, -1]).max() > 1e-2


@pytest.mark.parametrize("chunks", [[1] * FRAMES, [3, 3]], ids=["frames", "chunks"])
def test_streaming_equals_the_whole_clip(chunks, official):
    """step's logits at frame s equal the model's on the clip cut after s."""
    _, model, x, truncated = official
    state = model.init_state(2)
    outputs = []
    for size in chunks:
        start = int(to_numpy(state["frames_seen"])[0])
        logits, state = model.step(x[:, start:start + size], state)
        assert tuple(logits.shape) == (2, size, 5)
        outputs.append(to_numpy(logits))
    outputs = np.concatenate(outputs, axis=1)
    for s in CUTS:
        np.testing.assert_allclose(outputs[:, s], truncated[s], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs, running_logits(model, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(state["frames_seen"]), [FRAMES, FRAMES])


def test_streams_may_start_at_different_frames(official):
    """A batch whose first row starts a new stream (frames_seen 0, its state zeros)
    while the second carries on from frame 3: row 0 restarts as at the first frame."""
    _, model, x, truncated = official
    _, carried = model.step(x[:, :3], model.init_state(2))  # row 1 goes on; row 0 replays x[0]
    fresh = model.init_state(2)

    def rows(a, b):
        return keras.ops.concatenate([a[:1], b[1:]], axis=0)

    state = {"frames_seen": rows(fresh["frames_seen"], carried["frames_seen"]),
             "pre_logits_sum": rows(fresh["pre_logits_sum"], carried["pre_logits_sum"]),
             "layers": [(rows(f[0], c[0]), rows(f[1], c[1])) for f, c in zip(fresh["layers"], carried["layers"])]}
    logits, state = model.step(np.concatenate([x[:1, :3], x[1:, 3:]]), state)
    np.testing.assert_allclose(to_numpy(logits)[0, 2], truncated[2][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(logits)[1, 2], truncated[5][1], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(state["frames_seen"]), [3, 6])


# --- save, load, train ------------------------------------------------------------------------

def test_save_load_and_config(rng, tmp_path):
    model = TRecViT(**dict(TINY, frames_per_clip=3))
    randomise(model, rng, scale=0.3)
    x = clip(rng)
    check_keras_round_trip(model, x, tmp_path)
    check_config_round_trip(model, x)
    assert set(model.get_config()) >= {"image_size", "num_channels", "patch_size", "num_classes", "hidden_dim",
                                       "num_layers", "num_heads", "mlp_dim", "lru_width", "conv_width",
                                       "representation_dim", "mlp", "dropout", "min_rad", "frames_per_clip", "mode"}


def test_mixed_bfloat16(official, tmp_path):
    """Under mixed_bfloat16 every layer keeps the policy through its config and `.keras`, the
    weights stay float32, and the logits are the float32 model's to bfloat16 precision."""
    params, model, x, _ = official
    check_dtype_policy_round_trip(lambda **kw: TRecViT(**TINY, **kw), x, tmp_path)
    half = load_tiny(params, dtype="mixed_bfloat16")
    full, low = to_numpy(model(x)), to_numpy(half(x)).astype("float32")
    assert np.isfinite(low).all()
    np.testing.assert_allclose(low, full, atol=0.05 * np.abs(full).max())


@pytest.mark.slow
def test_fit_step(rng):
    model = TRecViT(**TINY)
    # Softmax ignores a bias added to every key: its gradient is zero.
    check_fit_step(model, clip(rng, batch=3, frames=3), np.array([0, 1, 4]), frozen=("key/bias",))


def test_layers_and_init_are_the_officials():
    model = TRecViT(**dict(TINY, num_layers=4))
    layer = model.get_layer("layer_0")
    block = layer.recurrent_block
    assert isinstance(block, RecurrentBlock) and isinstance(layer.encoder_block, TransformerEncoderBlock)
    assert (block.lru_width, block.num_heads, block.conv_width, block.min_rad) == (32, 2, 4, 0.5)
    assert block.gate_stddev == pytest.approx(math.sqrt(1 / 32)) and block.out_init_scale == 0.5
    mlp = layer.encoder_block.mlp_layer
    assert isinstance(mlp, FFN) and mlp.activation == "gelu_tanh" and mlp.use_bias
    assert np.all(to_numpy(model.get_layer("tokenizer").class_token.token) == 0)


# --- named sizes ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, count, arrays", [("trecvit_b", 136_778_128, 370), ("trecvit_l", 471_797_136, 730),
                                                 ("trecvit_s", 37_154_704, 370)])
def test_official_sizes_have_the_official_parameter_counts(name, count, arrays):
    """The official code's totals with a 400-class head (google-deepmind/trecvit's init)."""
    assert ARCHITECTURES[name][1]["num_classes"] == 400
    with unallocated(lambda: glu_zoo.models.build(name)) as model:
        assert sum(math.prod(w.shape) for w in model.weights) == count
        assert len(model.official_weights()) == len(model.weights) == arrays


def test_build_named_architectures():
    assert {"trecvit_tiny", "trecvit_s", "trecvit_b", "trecvit_l"} <= set(glu_zoo.models.list_architectures())
    with unallocated(lambda: glu_zoo.models.build("trecvit_tiny", num_classes=3, image_size=16, num_layers=1)) as model:
        assert isinstance(model, TRecViT) and model.image_shape == (16, 16, 1)
        assert tuple(model.input.shape) == (None, None, 16, 16, 1) and tuple(model.output.shape) == (None, 3)
        assert len([l for l in model.layers if l.name.startswith("layer_")]) == 1
    with unallocated(lambda: glu_zoo.models.build("trecvit_b", num_classes=174, image_size=(160, 192))) as b:
        assert tuple(b.get_layer("head").kernel.shape) == (3072, 174)
        assert tuple(b.get_layer("tokenizer").position_embedding.embeddings.shape) == (10 * 12, 768)


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 8, 8, 2), (2, 3, 8, 12, 3), (2, 8, 12, 2), (2, 3, 1, 8, 12, 2)],
                         ids=["size", "channels", "rank4", "rank6"])
def test_bad_frames_name_the_shapes(shape):
    model = TRecViT(**TINY)
    bad = np.zeros(shape, "float32")
    for run in (model, model.predict, lambda x: model.step(x, model.init_state(2))):
        with pytest.raises(ValueError, match=rf"expected frames of shape \(batch, frames, height, width, channels\)"
                                             rf" = \(None, None, 8, 12, 2\); got shape {re_shape(shape)}"):
            run(bad)


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_bad_state_names_the_shapes():
    model = TRecViT(**TINY)
    x = np.zeros((2, 1, *IMAGE), "float32")
    state = model.init_state(2)
    bad = dict(state, layers=[state["layers"][0], (state["layers"][1][0], np.zeros((2, 6, 32), "float32"))])
    with pytest.raises(ValueError, match=r"state\['layers'\]\[1\]\[1\] \(lru_state\) must have shape \(2, 7, 32\) "
                                         r"for frames of batch size 2; got shape \(2, 6, 32\)"):
        model.step(x, bad)
    with pytest.raises(ValueError, match=r"state\['frames_seen'\] must have shape \(1,\) for frames of batch size 1; "
                                         r"got shape \(2,\)"):
        model.step(x[:1], state)  # the state of two streams, the frames of one
    conv = np.zeros((2, 7, 2, 32), "float32")
    with pytest.raises(ValueError, match=r"state\['layers'\]\[0\]\[0\] \(conv_state\) must have shape "
                                         r"\(2, 7, 3, 32\) for frames of batch size 2; got shape \(2, 7, 2, 32\)"):
        model.step(x, dict(state, layers=[(conv, state["layers"][0][1]), state["layers"][1]]))
    with pytest.raises(ValueError, match=r"state\['pre_logits_sum'\] must have shape \(2, 20\)"):
        model.step(x, dict(state, pre_logits_sum=np.zeros((2, 21), "float32")))
    with pytest.raises(ValueError, match=r"`state` must be the dict of init_state \(frames_seen, layers, "
                                         r"pre_logits_sum\); got \['frames_seen', 'layers'\]"):
        model.step(x, {k: v for k, v in state.items() if k != "pre_logits_sum"})
    with pytest.raises(ValueError, match=r"state\['layers'\] must hold 2 \(conv_state, lru_state\) pairs; got list "
                                         r"of length 1"):
        model.step(x, dict(state, layers=state["layers"][:1]))
    with pytest.raises(ValueError, match=r"`batch_size` must be a positive integer; got 0"):
        model.init_state(0)


def test_clips_that_do_not_split_evenly_are_refused():
    model = TRecViT(**dict(TINY, frames_per_clip=2))
    with pytest.raises(ValueError, match=r"5 frames do not split into 2 equal clips.*frames_per_clip=2\); "
                                         r"got frames of shape \(1, 5, 8, 12, 2\)"):
        model(np.zeros((1, 5, *IMAGE), "float32"))
    model.check_inputs(np.zeros((1, 3, *IMAGE), "float32"))  # 3 // 2 = 1 clip of 3
    model.check_inputs(np.zeros((1, 6, *IMAGE), "float32"))  # 3 clips of 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_size=(8,)), "`image_size` must be a positive integer or a pair"),
    (dict(patch_size=5), r"`patch_size`.*\(8, 12, 2\)"),
    (dict(lru_width=33), r"`lru_width` \(default 2·hidden_dim\) must be divisible by `num_heads`; got lru_width=33"),
    (dict(hidden_dim=15), r"`hidden_dim` must be divisible by `num_heads`"),
    (dict(frames_per_clip=0), "`frames_per_clip` must be a positive integer"),
    (dict(min_rad=1.0), r"`min_rad` must be a number in \(0.0, 1.0\)"),
    (dict(mlp="tanh"), "unknown `mlp` 'tanh'"),
    (dict(mode="fast"), "unknown `mode` 'fast'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRecViT(**{**TINY, **kwargs})
