"""tools/model_stats.py: the counts from layer shapes against the built models and hand sums (no timing)."""

import importlib.util
import pathlib

import numpy as np
import pytest

from glu_zoo.models.trecvit import TRecViT
from glu_zoo.models.vivit import ViViT

_PATH = pathlib.Path(__file__).resolve().parents[1] / "tools" / "model_stats.py"
_SPEC = importlib.util.spec_from_file_location("model_stats", _PATH)
stats = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(stats)


@pytest.mark.parametrize("lru_width", [None, 48])
def test_trecvit_parameters_equal_the_built_model(lru_width):
    config = dict(image_size=(16, 24), num_channels=2, patch_size=8, num_classes=5, hidden_dim=32, num_layers=2,
                  num_heads=4, mlp_dim=40, lru_width=lru_width, conv_width=3, representation_dim=24)
    model = TRecViT(**config)
    rng = np.random.default_rng(0)
    model(rng.random((1, 3, 16, 24, 2), dtype=np.float32))
    shape = stats.TRecViTShape(**{**config, "image_size": (16, 24)})
    assert stats.trecvit_parameters(shape)["total"] == model.count_params()
    assert stats.built_parameters(TRecViT, config) == model.count_params()


def test_vivit_parameters_equal_the_built_model():
    config = dict(frames=3, image_size=16, num_channels=1, patch_size=8, num_classes=3, hidden_dim=32,
                  num_layers=2, num_heads=4, mlp_dim=48, attention="joint")
    model = ViViT(**config)
    shape = stats.ViViTShape(frames=3, image_size=(16, 16), num_channels=1, patch_size=8, tubelet=1,
                             hidden_dim=32, num_layers=2, num_heads=4, mlp_dim=48, num_classes=3)
    assert shape.tokens == 1 + 3 * 4
    assert stats.vivit_parameters(shape)["total"] == model.count_params()


@pytest.mark.parametrize("architecture, expected", [("trecvit_b", 136_778_128), ("trecvit_l", 471_797_136)])
def test_official_sizes_without_allocating(architecture, expected):
    # the official Flax model's `init` totals with a 400-class head
    from glu_zoo.models.trecvit import ARCHITECTURES

    assert stats.trecvit_parameters(stats.trecvit_shape(architecture))["total"] == expected
    assert stats.built_parameters(TRecViT, ARCHITECTURES[architecture][1]) == expected


def test_tubelets_shrink_the_tokens_and_the_position_table():
    one, two = stats.VIVIT_L_16X1, stats.VIVIT_L_16X2
    assert (one.tokens, two.tokens) == (1 + 32 * 196, 1 + 16 * 196)
    # the kernel doubles (2·16·16·3·1024 more), the position table loses 16·196 rows of 1024
    difference = stats.vivit_parameters(two)["total"] - stats.vivit_parameters(one)["total"]
    assert difference == 786_432 - 3_211_264


def test_macs_of_a_matmul_only_toy_block():
    # one sequence of 2 tokens, width 4, MLP 8: Q, K, V, O are 4 matmuls (2×4)@(4×4) = 32 MACs each;
    # QKᵀ and AV are (2×4)@(4×2) and (2×2)@(2×4) = 16 each; the MLP (2×4)@(4×8) + (2×8)@(8×4) = 64 + 64
    assert stats.matmul_macs(2, 4, 4) == 32
    macs = stats.vit_block_macs(sequences=1, tokens=2, d=4, m=8)
    assert macs == {"QKVO projections": 128, "attention QKᵀ, AV": 32, "MLP": 128}
    assert sum(macs.values()) == 288


def test_trecvit_macs_by_hand():
    # 1 layer, width 4, lru 8 in 2 gate blocks of 4, conv 2 taps, MLP 8, 2×2 image of 1 channel, patch 1
    # (4 patches + cls = 5 tokens), 3 frames, pre-logits 6, 2 classes
    shape = stats.TRecViTShape(image_size=(2, 2), num_channels=1, patch_size=1, hidden_dim=4, num_layers=1,
                               num_heads=2, mlp_dim=8, lru_width=8, conv_width=2, representation_dim=6,
                               num_classes=2)
    macs = stats.trecvit_macs(shape, frames=3)
    rows = 15  # 3 frames × 5 tokens
    assert macs["patch embedding"] == 12 * 1 * 4
    assert macs["linear x, y, out"] == rows * (4 * 8 + 4 * 8 + 8 * 4)
    assert macs["RG-LRU gates"] == rows * 2 * (2 * 4 * 4)
    assert macs["temporal conv"] == rows * 2 * 8
    assert macs["scan"] == rows * 8
    assert macs["attention QKᵀ, AV"] == 3 * 2 * 5 * 5 * 4
    assert macs["head"] == 3 * 4 * 6 + 6 * 2
    assert macs["total"] == 48 + 1440 + 960 + 240 + 120 + 960 + 600 + 960 + 84


def test_memory_liveness_and_saved_tensors_by_hand():
    ops = [("a", 10, ["x"], ["x"]), ("b", 5, ["a"], ["b"]), ("c", 3, ["x", "b"], ["x", "b"])]
    # op a: x, a = 14; op b: x, a, b = 19; op c: x, b, c = 12 (a is dead after b)
    assert stats.peak_elements(ops, input_size=4) == 19
    assert stats.saved_elements(ops, input_size=4) == 4 + 5
    # a ViT block on 3 tokens of width 4, MLP 8, 2 heads keeps x, ln1, q, k, v, att, x_att, ln2 (8·12),
    # the attention probabilities (2·3·3) and the MLP's two hidden tensors (2·24)
    assert stats.saved_elements(stats.vit_block_ops(1, 3, 4, 8, 2), 12) == 96 + 18 + 48


def test_joint_attention_memory_grows_with_the_square_of_the_clip():
    small = stats.ViViTShape(frames=8, image_size=(32, 32), num_channels=1, patch_size=8, hidden_dim=64,
                             num_layers=3, num_heads=4, mlp_dim=128, num_classes=4)
    trec = stats.TRecViTShape(image_size=(32, 32), num_channels=1, patch_size=8, hidden_dim=64, num_layers=3,
                              num_heads=4, mlp_dim=128, representation_dim=128, num_classes=4)
    ratios = []
    for frames in (8, 16, 32):
        vivit = stats.vivit_memory(stats.dataclasses.replace(small, frames=frames))
        ratios.append(vivit["train"] / stats.trecvit_memory(trec, frames)["train"])
    assert ratios[0] < ratios[1] < ratios[2]
