import pytest

import glu_zoo.data
import glu_zoo.models
from glu_zoo import recipes


def test_list_and_get():
    names = recipes.list_recipes()
    assert {"vit_digits", "activator_vit_digits", "activator_vit_reduced_digits"} <= set(names)
    for name in names:
        r = recipes.get(name)
        assert r.name == name
        assert r.architecture in glu_zoo.models.list_architectures()
        assert r.data in glu_zoo.data.list_datasets() + glu_zoo.data.tabular.list_tables()
        assert r.epochs > 0 and r.batch_size > 0 and r.metric_mode in ("max", "min")
        # an accuracy in (0, 1]; a loss (language models: log-perplexity, lower is better) positive
        assert 0 < r.target <= 1 if r.metric_mode == "max" else r.target > 0
        assert all(isinstance(limit, float) for limit in r.limits.values())


def test_official_activator_setup():
    r = recipes.get("activator_vit_digits")
    assert (r.optimizer, r.learning_rate, r.batch_size, r.epochs, r.schedule) == ("adam", 1e-3, 64, 60, "constant")
    assert r.target == 0.975 and recipes.get("activator_vit_reduced_digits").target == 0.965
    assert r.augment == {} and recipes.get("activator_vit_reduced_digits").augment == {}  # no augmentation
    vit = recipes.get("vit_digits")
    assert (vit.target, vit.epochs, vit.augment) == (0.97, 120, {"shift": 1})


def test_unknown_recipe_lists_known():
    with pytest.raises(ValueError, match=r"unknown recipe 'vit'; known: activator_vit_digits, "):
        recipes.get("vit")


def test_the_ffn_study_recipes_differ_only_in_the_ffn():
    """Shazeer's comparison: the same data, steps, optimiser and parameter count for every FFN."""
    names = [n for n in recipes.list_recipes() if n.startswith("glu_transformer_") and n.endswith("_pydoc")]
    assert len(names) == 10
    study = [recipes.get(n) for n in names]
    common = {k: v for k, v in study[0].to_dict().items() if k not in ("name", "description", "model_overrides")}
    counts = set()
    for r in study:
        assert {k: v for k, v in r.to_dict().items() if k not in ("name", "description", "model_overrides")} == common
        assert r.metric == "loss" and r.metric_mode == "min"
        model = glu_zoo.models.build(r.architecture, **r.model_overrides)
        assert model.ffn == r.name[len("glu_transformer_"):-len("_pydoc")]
        # 2·64·384 = 3·64·256 weights per FFN; xSwiGLU adds its scalar alpha per FFN
        counts.add(sum(int(w.numpy().size) for w in model.weights if not w.path.endswith("alpha")))
    assert len(counts) == 1


def test_bad_recipe_fields():
    with pytest.raises(ValueError, match=r"`metric_mode` must be 'max' or 'min'; got 'lowest'"):
        recipes.Recipe(name="x", description="", architecture="vit_digits", data="digits", metric="loss",
                       target=0.5, epochs=1, batch_size=8, metric_mode="lowest")
    with pytest.raises(ValueError, match=r"`optimizer` must be 'adam' or 'adamw'; got 'sgd'"):
        recipes.Recipe(name="x", description="", architecture="vit_digits", data="digits", metric="accuracy",
                       target=0.5, epochs=1, batch_size=8, optimizer="sgd")
