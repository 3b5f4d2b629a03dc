"""The recipe of Shazeer's GLU-variant study (arXiv 2002.05202, Table 1) at CPU size, one per FFN.

Shazeer trains T5-base (d 768, 12 + 12 blocks) on C4 span corruption for
65,536 steps and compares held-out log-perplexity. Here: the same T5-style
GLUTransformer at d 64, 2 + 2 blocks, 4 heads, on span corruption (T5: 15%
noise, mean span 3) of the English text of Python's documentation topics,
inputs 64 bytes; every FFN holds the same weights, 2·64·384 = 3·64·256
(two-matrix FFNs d_ff 384, GLU FFNs 256, the paper's 3072/2048 ratio), no
dropout, the same data, steps and optimiser for all. Metric: the test
split's loss, the mean cross-entropy over the real target tokens (nats),
i.e. the log-perplexity; lower is better.
"""

from glu_zoo.layers import FFN_ACTIVATIONS
from glu_zoo.recipes import Recipe

# Shazeer's eight, then ours: GoLU-gated and the first-order expanded SwiGLU.
FFNS = ("relu", "gelu", "swish", "glu", "bilinear", "reglu", "geglu", "swiglu", "goglu", "xswiglu")
MODEL_DIM, TWO_MATRIX_WIDTH, GLU_WIDTH = 64, 384, 256


def study_recipe(ffn, target):
    """The study's recipe for one FFN; `target`: the test log-perplexity it must reach (at most)."""
    hidden = TWO_MATRIX_WIDTH if ffn in FFN_ACTIVATIONS else GLU_WIDTH
    return Recipe(
        name=f"glu_transformer_{ffn}_pydoc",
        description=f"GLUTransformer ({ffn} FFN, d_ff {hidden}) on span corruption of Python's documentation "
                    f"(Shazeer 2020's Table 1 at CPU size)",
        architecture="glu_transformer_tiny",
        model_overrides={"ffn": ffn, "hidden_dim": hidden},
        data="span_corruption",
        data_options={"source": "pydoc", "input_length": 64, "train_size": 16384},
        optimizer="adam",
        learning_rate=2e-3,
        schedule="cosine",
        warmup_epochs=1,
        batch_size=32,
        epochs=3,
        metric="loss",
        metric_mode="min",
        target=target,
    )
