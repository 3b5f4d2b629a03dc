"""GLUTransformer with the goglu FFN on span corruption of Python's documentation (Shazeer 2020, Table 1, at CPU size).

The study's shared set-up is in recipes/_ffn_study.py; `python tools/ffn_study.py`
trains every FFN over three seeds and writes the table.
"""

from glu_zoo.recipes._ffn_study import study_recipe

RECIPE = study_recipe("goglu", target=2.2)
