"""A one-layer bilinear MLP (arXiv 2410.08417) on scikit-learn's digits, for its eigenvectors.

The paper's MNIST set-up scaled to 8×8 digits: pixels → embedding 64 → 64
bilinear units read out to the 10 classes, no biases; AdamW at 1e-3 with the
paper's weight decay 0.5, cosine schedule, Gaussian input noise of std 0.4
(the paper's regulariser for readable eigenvectors). All 1,437 training
images, the last epoch's weights.
"""

from glu_zoo.recipes import Recipe

RECIPE = Recipe(
    name="bilinear_digits",
    description=__doc__.strip().splitlines()[0],
    architecture="bilinear_mlp_digits",
    data="digits",
    data_options={"normalize": "unit", "validation_size": 0.0},
    model_overrides={"input_noise": 0.2},
    optimizer="adamw",
    learning_rate=1e-3,
    weight_decay=0.5,
    schedule="cosine",
    batch_size=64,
    epochs=100,
    metric="accuracy",
    target=0.96,
)
