"""Tools that read GLU weights directly.

- `glu_zoo.interpret.bilinear`: interaction matrices of bilinear layers, their
  eigen-decomposition and truncation (Pearce et al. 2024, arXiv 2410.08417).
- `glu_zoo.interpret.logit_lens`: GLU value vectors read through the
  unembedding, neuron search, ablation and head ranking (arXiv 2504.14379).
"""

__all__ = ["interpret_preset"]


def interpret_preset(name_or_path, out=None, k=None, verbose=True):
    """What `glu-zoo interpret` runs: load a preset, pick the analysis that
    fits its model (a bilinear model: `bilinear.report` on its recipe's test
    split; a GLU Transformer: `logit_lens.report`), and return the JSON-able
    result with `preset`, `analysis` and `backend`. `k`: eigen-components per
    output (default 3) or top tokens per neuron (default 10). A preset with
    neither is a ValueError naming it."""
    import keras

    import glu_zoo.models  # noqa: F401  (registers the zoo's classes)
    from glu_zoo import data as data_lib
    from glu_zoo import presets, recipes
    from glu_zoo.interpret import bilinear, logit_lens

    folder, _ = presets.resolve(name_or_path)
    metadata = presets.get_metadata(folder)
    model = presets.load(folder)
    try:
        logit_lens.glu_layers(model)  # a GLUTransformer or MosaicBERT with a GatedFFN (bilinear ones too)
        analysis = "logit_lens"
    except ValueError:
        if not bilinear.bilinear_layers(model):
            raise ValueError(
                f"interpret: preset {name_or_path!r} holds a {metadata['class_name']} with no GLU feed-forward "
                f"layer to read: the bilinear decomposition needs a bilinear GatedFFN, the logit lens a "
                f"GLUTransformer or MosaicBERT with a GatedFFN."
            ) from None
        analysis = "bilinear"
    try:
        recipe = recipes.Recipe(**metadata["recipe"])
        x, y = data_lib.load(recipe.data, **recipe.data_options).test
    except (KeyError, TypeError, ValueError):
        x = y = None  # a preset saved without its recipe: the weights alone
    if analysis == "bilinear":
        result = bilinear.report(model, x, y, out=out, k=k or 3, verbose=verbose)
    else:
        result = {"analysis": "logit_lens", **logit_lens.report(model, out=out, data=None if x is None else (x, y),
                                                                 k=k or 10, verbose=int(verbose))}
    return {"preset": str(folder), "backend": keras.backend.backend(), **result}
