"""Activator, reduced variant (the gating unit only, no FFN), on digits.

As `activator_vit_digits`; the official code reaches 0.972 on this split.
"""

from glu_zoo.recipes import Recipe

RECIPE = Recipe(
    name="activator_vit_reduced_digits",
    description=__doc__.strip().splitlines()[0],
    architecture="activator_vit_reduced_digits",
    data="digits",
    # The official protocol: all 1,437 training images, the last epoch's weights.
    data_options={"normalize": "unit", "validation_size": 0.0},
    optimizer="adam",
    learning_rate=1e-3,
    batch_size=64,
    epochs=60,
    metric="accuracy",
    target=0.965,
)
