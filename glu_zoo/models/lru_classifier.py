"""Sequence classification with stacked LRU blocks (Orvieto et al. 2023,
arXiv 2303.06349), as in its Long Range Arena experiments."""

import math

import keras
from keras import ops

from glu_zoo.layers import SCAN_MODES, LRUBlock, MaskedMeanPooling
from glu_zoo.layers.checks import check_choice, check_dropout, check_positive_int
from glu_zoo.models.base import SequenceClassifier, check_sequence_length

__all__ = ["LRUClassifier", "ARCHITECTURES"]


@keras.saving.register_keras_serializable(package="glu_zoo")
class LRUClassifier(SequenceClassifier):
    """Token embedding, `num_layers` LRU blocks, masked mean pooling, a Dense head.

    x₀ = Embedding(tokens); x_{l+1} = LRUBlock(x_l) = LN(x_l + GLU(GELU(LRU(x_l))));
    logits = Dense(mean over the non-padding steps of x_L). Token id 0 is
    padding: masked in the LRUs (the state is carried over it) and in the pooling.

    Args:
        vocabulary_size: number of token ids (0 = padding).
        sequence_length: T of the inputs, or None for any T.
        num_classes: width of the logits.
        hidden_dim: model width d; state_dim: the LRUs' complex state size N.
        num_layers: LRU blocks.
        r_min, r_max, max_phase: the LRUs' ring initialisation.
        dropout: rate in [0, 1) inside the blocks.
        norm_first: pre-norm blocks (default: the paper's post-norm).
        mode: scan mode of the LRUs, "auto", "parallel" or "sequential".

        model = LRUClassifier(vocabulary_size=16, num_layers=2)
        logits = model(np.ones((2, 100), "int32"))
        logits.shape  # (2, 10)
    """

    def __init__(self, vocabulary_size=16, sequence_length=None, num_classes=10, hidden_dim=64,
                 state_dim=128, num_layers=4, r_min=0.0, r_max=0.99, max_phase=2 * math.pi,
                 dropout=0.0, norm_first=False, mode="auto", **kwargs):
        owner = "LRUClassifier"
        for arg, value in [("vocabulary_size", vocabulary_size), ("num_classes", num_classes),
                           ("hidden_dim", hidden_dim), ("state_dim", state_dim), ("num_layers", num_layers)]:
            check_positive_int(arg, value, owner)
        check_sequence_length(sequence_length, owner)
        dropout = check_dropout(dropout, owner)
        check_choice("mode", mode, SCAN_MODES, owner)
        kwargs.setdefault("name", "lru_classifier")

        # === Layers ===
        embedding = keras.layers.Embedding(vocabulary_size, hidden_dim, name="token_embedding")
        blocks = [LRUBlock(state_dim, r_min=r_min, r_max=r_max, max_phase=max_phase, dropout=dropout,
                           norm_first=norm_first, mode=mode, name=f"block_{i}") for i in range(num_layers)]
        final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm") if norm_first else None
        pool = MaskedMeanPooling(name="mean_pool")  # an all-padding sequence pools to zeros
        head = keras.layers.Dense(num_classes, name="head")

        # === Functional Model ===
        tokens = keras.Input(shape=(sequence_length,), dtype="int32", name="tokens")
        mask = ops.not_equal(tokens, 0)
        x = embedding(tokens)
        for block in blocks:
            x = block(x, mask=mask)
        if final_norm is not None:
            x = final_norm(x)
        logits = head(pool(x, mask=mask))
        super().__init__(inputs=tokens, outputs=logits, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.state_dim = state_dim
        self.num_layers = num_layers
        self.r_min = float(r_min)
        self.r_max = float(r_max)
        self.max_phase = float(max_phase)
        self.dropout = dropout
        self.norm_first = norm_first
        self.mode = mode

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "num_classes": self.num_classes,
            "hidden_dim": self.hidden_dim,
            "state_dim": self.state_dim,
            "num_layers": self.num_layers,
            "r_min": self.r_min,
            "r_max": self.r_max,
            "max_phase": self.max_phase,
            "dropout": self.dropout,
            "norm_first": self.norm_first,
            "mode": self.mode,
        }


ARCHITECTURES = {
    # The lru_listops recipe's size: ListOps ids (16), padded to 128 tokens.
    "lru_listops": (LRUClassifier, dict(vocabulary_size=16, sequence_length=128, num_classes=10,
                                        hidden_dim=64, state_dim=96, num_layers=4)),
}
