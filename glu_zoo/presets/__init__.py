"""Presets: trained weights in KerasHub-style folders, loadable on any backend.

    model = glu_zoo.models.ActivatorViT.from_preset("activator_vit_digits")
    glu_zoo.presets.list_presets()
"""

from glu_zoo.presets.registry import (
    PresetError,
    expected_output_error,
    fixed_input,
    get_metadata,
    list_presets,
    load,
    save,
)

__all__ = ["PresetError", "expected_output_error", "fixed_input", "get_metadata", "list_presets", "load", "save"]
