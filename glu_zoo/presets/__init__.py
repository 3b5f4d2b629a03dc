"""Presets: trained weights in KerasHub-style folders, loadable on any backend.

    model = glu_zoo.models.ActivatorViT.from_preset("activator_vit_digits")
    glu_zoo.presets.list_presets()

Saving and loading live in `glu_zoo.presets.io`, which imports no model:
`load(name)` without a class builds the registered glu_zoo model that the
preset names (importing `glu_zoo.models` registers them).
"""

from glu_zoo.presets.io import (
    FIXED_INPUT_LENGTH,
    OUTPUT_TOLERANCE,
    SHIPPED,
    dump_json,
    PresetError,
    expected_output_error,
    fixed_input,
    get_metadata,
    list_presets,
    load,
    resolve,
    save,
)

__all__ = ["FIXED_INPUT_LENGTH", "OUTPUT_TOLERANCE", "SHIPPED", "PresetError", "dump_json", "expected_output_error",
           "fixed_input", "get_metadata", "list_presets", "load", "resolve", "save"]
