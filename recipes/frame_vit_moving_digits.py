"""A per-frame ViT on moving digits (logits averaged over frames): the chance baseline.

The trecvit_moving_digits recipe with the model swapped for frame_vit_tiny
(ViViT with attention within each frame only): it sees no order of frames,
so it must stay at chance (0.25) on the direction of motion: "reached" means
a test accuracy in [0.20, 0.30] (1,000 test clips: ±3.5 standard errors).
JAX, 8 epochs: 0.232.
"""

import dataclasses

from glu_zoo.recipes.trecvit_moving_digits import RECIPE as TRECVIT

RECIPE = dataclasses.replace(TRECVIT, name="frame_vit_moving_digits", description=__doc__.strip().splitlines()[0],
                             architecture="frame_vit_tiny", target=0.20, limits={"accuracy": 0.30})
