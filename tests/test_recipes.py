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
        assert 0 < r.target <= 1 and r.epochs > 0 and r.batch_size > 0
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


def test_bad_recipe_fields():
    with pytest.raises(ValueError, match=r"`optimizer` must be 'adam' or 'adamw'; got 'sgd'"):
        recipes.Recipe(name="x", description="", architecture="vit_digits", data="digits", metric="accuracy",
                       target=0.5, epochs=1, batch_size=8, optimizer="sgd")
