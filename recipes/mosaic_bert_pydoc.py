"""MosaicBERT (tiny) pre-trained by masked language modelling on Python's documentation (arXiv 2312.17482).

The English text of Python's documentation topics as bytes (glu_zoo.data
ByteTokenizer, 384 ids), rows of 128 bytes cropped to random lengths (so a
batch holds real padding), 30% of the tokens masked for training (BERT's
80/10/10) and 15% for validation and test, as MosaicBERT. AdamW with the
paper's weight decay 1e-5 (Keras's default betas, not its (0.9, 0.98)) at
1e-3, cosine schedule after one warm-up epoch. Metric: the test split's loss, the mean cross-entropy over the
masked tokens (nats); lower is better. Trains on padded batches; the packed
(unpadded) path gives the same logits (tests) and is timed in
tools/bench_attention.py. Trained on JAX: test loss 1.866 (validation 2.130 at
the last of 3 epochs; 51 examples/s on the shared 2-core CPU).
"""

from glu_zoo.recipes import Recipe

RECIPE = Recipe(
    name="mosaic_bert_pydoc",
    description=__doc__.strip().splitlines()[0],
    architecture="mosaic_bert_tiny",
    data="masked_lm",
    data_options={"source": "pydoc", "sequence_length": 128, "train_size": 16384},
    optimizer="adamw",
    learning_rate=1e-3,
    weight_decay=1e-5,
    schedule="cosine",
    warmup_epochs=1,
    batch_size=32,
    epochs=3,
    metric="loss",
    metric_mode="min",
    target=2.2,
)
