"""Layers of glu_zoo, one file per family."""

from glu_zoo.layers.activator import ActivatorGatingUnit, torch_linear_init
from glu_zoo.layers.attention import (
    MultiHeadAttention,
    Packing,
    RelativePositionBias,
    alibi_bias,
    alibi_slopes,
    dot_product_attention,
    naive_attention,
    pack,
    pack_sequences,
    relative_position_bucket,
    segment_mask,
    unpack,
)
from glu_zoo.layers.embedding import ClassToken, PatchEmbedding, PositionEmbedding
from glu_zoo.layers.ffn import FFN, FFN_ACTIVATIONS, GATED_VARIANTS, GatedFFN
from glu_zoo.layers.gates import XATLU, XGELU, GoLU, XSiLU
from glu_zoo.layers.pooling import MaskedMeanPooling
from glu_zoo.layers.transformer import TransformerEncoderBlock
from glu_zoo.layers.lru import LRU, LRUBlock
from glu_zoo.layers.rglru import RGLRU, RecurrentBlock
from glu_zoo.layers.svm import L2SVM, SquaredHinge, squared_hinge
from glu_zoo.layers.deer import ParallelGRU
from glu_zoo.ops.scan import SCAN_MODES

__all__ = [
    "FFN",
    "GatedFFN",
    "FFN_ACTIVATIONS",
    "GATED_VARIANTS",
    "GoLU",
    "XATLU",
    "XGELU",
    "XSiLU",
    "PatchEmbedding",
    "ClassToken",
    "PositionEmbedding",
    "TransformerEncoderBlock",
    "MaskedMeanPooling",
    "ActivatorGatingUnit",
    "torch_linear_init",
    "LRU",
    "LRUBlock",
    "RGLRU",
    "RecurrentBlock",
    "L2SVM",
    "SquaredHinge",
    "squared_hinge",
    "ParallelGRU",
    "SCAN_MODES",
    "MultiHeadAttention",
    "RelativePositionBias",
    "Packing",
    "alibi_bias",
    "alibi_slopes",
    "dot_product_attention",
    "naive_attention",
    "pack",
    "pack_sequences",
    "relative_position_bucket",
    "segment_mask",
    "unpack",
]
