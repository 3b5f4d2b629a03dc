"""Ours, not the paper's: Activator with token mixing, patch 2, on digits.

The paper's model mixes tokens only in the final mean, so with patch 2 (16
tokens) it sees an unordered set of 2×2 patches (0.74–0.78 with the official
code). Here the v branch of each gating unit is gated by a learned mixing
across tokens (gMLP's spatial gating; identity at initialisation).
"""

from glu_zoo.recipes import Recipe

RECIPE = Recipe(
    name="activator_vit_mixing_digits",
    description=__doc__.strip().splitlines()[0],
    architecture="activator_vit_mixing_digits",
    data="digits",
    data_options={"normalize": "unit", "validation_size": 0.0},
    model_overrides={"dropout": 0.5},
    optimizer="adam",
    learning_rate=1e-3,
    batch_size=64,
    epochs=60,
    metric="accuracy",
    target=0.95,
)
