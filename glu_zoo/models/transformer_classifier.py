"""The Transformer encoder classifier of the Long Range Arena baselines
(Tay et al. 2020, arXiv 2011.04006): learned positions, pre-norm blocks,
mean pooling. The attention baseline beside `LRUClassifier`."""

import keras
from keras import ops

from glu_zoo.layers.checks import check_dropout, check_positive_int
from glu_zoo.layers.embedding import PositionEmbedding
from glu_zoo.layers.pooling import MaskedMeanPooling
from glu_zoo.layers.transformer import TransformerEncoderBlock, check_heads, check_mlp
from glu_zoo.models.base import SequenceClassifier, check_sequence_length

__all__ = ["TransformerClassifier", "ARCHITECTURES"]


@keras.saving.register_keras_serializable(package="glu_zoo")
class TransformerClassifier(SequenceClassifier):
    """Token embedding + learned positions, `num_layers` pre-norm blocks
    x ← x + MHA(LN(x)), x ← x + MLP(LN(x)) (`TransformerEncoderBlock`, named
    block_{i}), a final LN, masked mean pooling and a Dense head. Token id 0 is padding: no query attends to it and the
    pooling leaves it out. The MLP is any FFN activation or GatedFFN variant.

    Args:
        vocabulary_size: number of token ids (0 = padding).
        sequence_length: T of the inputs (the learned positions need it).
        num_classes, hidden_dim, num_layers, num_heads, mlp_dim: as `ViT`.
        mlp: an FFN activation or a GatedFFN variant.
        dropout: rate in [0, 1) on the MLP's hidden units and the embedding.

        model = TransformerClassifier(vocabulary_size=16, sequence_length=100)
        logits = model(np.ones((2, 100), "int32"))
        logits.shape  # (2, 10)
    """

    def __init__(self, vocabulary_size=16, sequence_length=512, num_classes=10, hidden_dim=64,
                 num_layers=4, num_heads=4, mlp_dim=128, mlp="gelu", dropout=0.0, **kwargs):
        owner = "TransformerClassifier"
        for arg, value in [("vocabulary_size", vocabulary_size), ("num_classes", num_classes),
                           ("num_layers", num_layers), ("mlp_dim", mlp_dim)]:
            check_positive_int(arg, value, owner)
        check_sequence_length(sequence_length, owner, required=True)
        check_heads(hidden_dim, num_heads, owner)
        dropout = check_dropout(dropout, owner)
        check_mlp(mlp, owner)
        kwargs.setdefault("name", "transformer_classifier")

        # === Layers ===
        embedding = keras.layers.Embedding(vocabulary_size, hidden_dim, name="token_embedding")
        position_embedding = PositionEmbedding(name="position_embedding")
        embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        blocks = [TransformerEncoderBlock(hidden_dim, num_heads, mlp_dim, mlp=mlp, dropout=dropout,
                                          name=f"block_{i}") for i in range(num_layers)]
        final_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")
        pool = MaskedMeanPooling(name="mean_pool")  # an all-padding sequence pools to zeros
        head = keras.layers.Dense(num_classes, name="head")

        # === Functional Model ===
        tokens = keras.Input(shape=(sequence_length,), dtype="int32", name="tokens")
        mask = ops.not_equal(tokens, 0)
        x = embedding_dropout(position_embedding(embedding(tokens)))
        for block in blocks:
            x = block(x, attention_mask=mask)  # every query sees the non-padding keys
        logits = head(pool(final_norm(x), mask=mask))
        super().__init__(inputs=tokens, outputs=logits, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.mlp = mlp
        self.dropout = dropout

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "num_classes": self.num_classes,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "mlp": self.mlp,
            "dropout": self.dropout,
        }


ARCHITECTURES = {
    # The transformer_listops recipe's size: lru_listops's parameter count.
    "transformer_listops": (TransformerClassifier, dict(vocabulary_size=16, sequence_length=128,
                                                        num_classes=10, hidden_dim=64, num_layers=4,
                                                        num_heads=4, mlp_dim=112)),
}
