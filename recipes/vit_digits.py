"""A ViT baseline (attention, class token, GELU MLP) on digits, patch 2.

Width 64, 4 blocks, 4 heads, MLP 128: the Activator recipe's size with
attention for token mixing. AdamW with a cosine schedule and warm-up.
"""

from glu_zoo.recipes import Recipe

RECIPE = Recipe(
    name="vit_digits",
    description=__doc__.strip().splitlines()[0],
    architecture="vit_digits",
    data="digits",
    # The official protocol: all 1,437 training images, the last epoch's weights.
    data_options={"normalize": "unit", "validation_size": 0.0},
    model_overrides={"dropout": 0.1},
    optimizer="adamw",
    learning_rate=2e-3,
    weight_decay=0.05,
    schedule="cosine",
    warmup_epochs=5,
    batch_size=64,
    epochs=60,
    metric="accuracy",
    target=0.97,
)
