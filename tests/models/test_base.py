"""ZooModel: the config every model shares, the dtype policy, the one input check."""

import keras
import numpy as np
import pytest

from glu_zoo.models import ZooModel
from tests.conftest import to_numpy


@keras.saving.register_keras_serializable(package="glu_zoo_tests")
class TinyModel(ZooModel):
    """Dense(units) on (batch, 4) inputs: the smallest ZooModel."""

    def __init__(self, units=3, **kwargs):
        dense = keras.layers.Dense(units, name="dense")
        inputs = keras.Input((4,), name="x")
        super().__init__(inputs=inputs, outputs=dense(inputs), **kwargs)
        self.units = units

    def get_config(self):
        return {**super().get_config(), "units": self.units}


X = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")


def test_config_holds_name_trainable_dtype_and_the_subclass_arguments():
    model = TinyModel(units=2, name="tiny", trainable=False)
    config = model.get_config()
    assert config == {"name": "tiny", "trainable": False, "units": 2,
                      "dtype": keras.dtype_policies.serialize(keras.dtype_policies.get("float32"))}
    clone = TinyModel.from_config(config)
    assert (clone.name, clone.trainable, clone.units, clone.dtype_policy.name) == ("tiny", False, 2, "float32")


def test_dtype_argument_builds_every_layer_under_that_policy():
    model = TinyModel(units=2, dtype="mixed_bfloat16")
    assert model.dtype_policy.name == model.get_layer("dense").dtype_policy.name == "mixed_bfloat16"
    assert keras.backend.standardize_dtype(model(X).dtype) == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    assert TinyModel(2).get_layer("dense").dtype_policy.name == "float32"


def test_the_policy_is_restored_when_construction_fails():
    with pytest.raises(ValueError):
        TinyModel(units=0, dtype="mixed_bfloat16")  # Dense refuses 0 units
    assert keras.config.dtype_policy().name == "float32"


def test_check_inputs_names_the_model_and_both_shapes():
    model = TinyModel(name="tiny")
    model.check_inputs(X)  # fits
    model.check_inputs(iter([]))  # not an array: left to the traced check
    for bad in (np.zeros((5, 3), "float32"), np.zeros((5, 4, 1), "float32")):
        with pytest.raises(ValueError, match=rf"TinyModel 'tiny', test inputs: expected inputs of shape "
                                             rf"\(None, 4\); got shape \({5}, {bad.shape[1]}"):
            model.check_inputs(bad, "test inputs")
    with pytest.raises(ValueError, match=r"TinyModel 'tiny': the inputs hold no example \(shape \(0, 4\)\)"):
        model.predict(X[:0], verbose=0)


def test_fit_evaluate_and_predict_check_before_they_start():
    model = TinyModel()
    model.compile(loss="mse")
    before = to_numpy(model(X))
    bad, y = np.zeros((5, 3), "float32"), np.zeros((5, 3), "float32")
    for run in (lambda: model.fit(bad, y, verbose=0), lambda: model.evaluate(bad, y, verbose=0),
                lambda: model.predict(bad, verbose=0)):
        with pytest.raises(ValueError, match=r"expected inputs of shape \(None, 4\); got shape \(5, 3\)"):
            run()
    np.testing.assert_array_equal(to_numpy(model(X)), before)


def test_model_call_checks_concrete_inputs_not_symbolic_ones():
    model = TinyModel(name="tiny")
    bad = np.zeros((5, 3), "float32")
    for inputs in (bad, keras.ops.convert_to_tensor(bad), [bad], {"x": bad}, bad.tolist()):
        with pytest.raises(ValueError, match=r"TinyModel 'tiny': expected inputs of shape \(None, 4\); "
                                             r"got shape \(5, 3\)"):
            model(inputs)
    assert tuple(model(keras.Input((4,))).shape) == (None, 3)
    np.testing.assert_allclose(to_numpy(model(keras.ops.convert_to_tensor(X))), to_numpy(model(X)), rtol=1e-6)


def test_model_call_is_checked_again_after_a_fit_that_failed():
    """fit marks its own calls as checked, and unmarks them however it ends."""
    model = TinyModel(name="tiny")
    model.compile(loss="mse")
    with pytest.raises(ValueError):
        model.fit(X, np.zeros((4, 3), "float32"), verbose=0)  # 5 inputs, 4 targets: Keras refuses
    assert not model._inside_own_loop
    with pytest.raises(ValueError, match=r"TinyModel 'tiny': expected inputs of shape \(None, 4\)"):
        model(np.zeros((5, 3), "float32"))
