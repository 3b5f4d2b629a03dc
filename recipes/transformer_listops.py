"""Transformer encoder on the lru_listops data, at LRUClassifier's parameter count.

The Long Range Arena's attention baseline: learned positions, four pre-norm
blocks (d 64, 4 heads, GELU MLP 112), masked mean pooling; 135,626
parameters against the LRU model's 135,178. The data, optimiser, schedule,
epochs and seed of lru_listops. The target is LRA's Transformer figure (36.4%).
"""

import dataclasses

from glu_zoo.recipes.lru_listops import RECIPE as LRU_RECIPE

RECIPE = dataclasses.replace(
    LRU_RECIPE,
    name="transformer_listops",
    description=__doc__.strip().splitlines()[0],
    architecture="transformer_listops",
    no_weight_decay=(),
    target=0.364,
)
