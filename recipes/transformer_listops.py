"""Transformer encoder on the lru_listops data, at LRUClassifier's parameter count.

The Long Range Arena's attention baseline: learned positions, four pre-norm
blocks (d 64, 4 heads, GELU MLP 112), masked mean pooling; 135,626
parameters against the LRU model's 135,178. Same data, optimiser, schedule
and epochs as lru_listops. The target is LRA's Transformer figure (36.4%).
"""

from glu_zoo.recipes import Recipe
from glu_zoo.recipes.lru_listops import LISTOPS

RECIPE = Recipe(
    name="transformer_listops",
    description=__doc__.strip().splitlines()[0],
    architecture="transformer_listops",
    data="listops",
    data_options=LISTOPS,
    model_overrides={"dropout": 0.1},
    optimizer="adamw",
    learning_rate=2e-3,
    weight_decay=0.05,
    schedule="cosine",
    warmup_epochs=1,
    batch_size=32,
    epochs=12,
    metric="accuracy",
    target=0.364,
)
