"""ViViT (tiny, joint space-time attention) on moving digits: TRecViT's attention baseline.

The trecvit_moving_digits recipe with the model swapped for vivit_tiny (the
same width, depth, heads, MLP and patches; every token of the clip attends
to every other).
"""

import dataclasses

from glu_zoo.recipes.trecvit_moving_digits import RECIPE as TRECVIT

RECIPE = dataclasses.replace(TRECVIT, name="vivit_moving_digits", description=__doc__.strip().splitlines()[0],
                             architecture="vivit_tiny")
