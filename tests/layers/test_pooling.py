import keras
import numpy as np

from glu_zoo.layers import MaskedMeanPooling
from tests import reference as ref
from tests.conftest import to_numpy


def test_masked_mean_matches_reference_and_an_empty_sequence_pools_to_zeros():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 7, 3)).astype("float32")
    mask = np.array([[1] * 7, [1, 1, 0, 0, 0, 0, 0], [0] * 7, [0, 1, 0, 1, 0, 1, 0]], dtype=bool)
    pooled = to_numpy(MaskedMeanPooling()(x, mask=keras.ops.convert_to_tensor(mask)))
    np.testing.assert_allclose(pooled, ref.masked_mean(x, mask.astype("float32")), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(pooled[2], np.zeros(3, "float32"))  # all masked: zeros, not NaN
    np.testing.assert_allclose(to_numpy(MaskedMeanPooling()(x)), x.mean(axis=1), rtol=1e-6, atol=1e-6)


def test_masked_mean_in_a_model_takes_the_mask_of_a_masking_layer_and_round_trips(tmp_path):
    x = np.random.default_rng(1).normal(size=(3, 5, 2)).astype("float32")
    x[1, 2:] = 0.0
    x[2] = 0.0
    inputs = keras.Input((5, 2))
    model = keras.Model(inputs, MaskedMeanPooling()(keras.layers.Masking(0.0)(inputs)))
    expected = ref.masked_mean(x, (x != 0).any(-1).astype("float32"))
    np.testing.assert_allclose(to_numpy(model(x)), expected, rtol=1e-6, atol=1e-6)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(to_numpy(keras.saving.load_model(tmp_path / "m.keras")(x)), expected, rtol=1e-6)
