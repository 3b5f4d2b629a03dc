"""Activator (arXiv 2405.15953), full variant, on scikit-learn's digits.

The set-up of the official code's run on this split: d_model 64, d_ffn 128,
4 blocks, patch 4, Adam 1e-3, batch 64, 60 epochs (0.981 test accuracy).
"""

from glu_zoo.recipes import Recipe

RECIPE = Recipe(
    name="activator_vit_digits",
    description=__doc__.strip().splitlines()[0],
    architecture="activator_vit_digits",
    data="digits",
    # The official protocol: all 1,437 training images, the last epoch's weights.
    data_options={"normalize": "unit", "validation_size": 0.0},
    model_overrides={"dropout": 0.5},  # the official ACTIVATORImageClassification default
    optimizer="adam",
    learning_rate=1e-3,
    batch_size=64,
    epochs=60,
    metric="accuracy",
    target=0.975,
)
