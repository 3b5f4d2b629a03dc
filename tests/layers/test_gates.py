import keras
import numpy as np
import pytest

from glu_zoo import layers
from tests import reference as ref
from tests.conftest import BACKEND, central_difference, to_numpy, weight_grads

X = np.random.default_rng(1).normal(size=(3, 5, 7)).astype("float32") * 3
EXPANDED = {layers.XATLU: "arctan", layers.XGELU: "gaussian", layers.XSiLU: "sigmoid"}


def test_golu_layer_matches_reference_and_has_no_weights():
    layer = layers.GoLU()
    np.testing.assert_allclose(to_numpy(layer(X)), ref.golu(X.astype(np.float64)), rtol=1e-5, atol=1e-6)
    assert layer.weights == []


@pytest.mark.parametrize("cls", list(EXPANDED), ids=lambda c: c.__name__)
def test_expanded_layer_alpha_is_a_trainable_scalar_initialised_to_zero(cls):
    layer = cls()
    layer.build(X.shape)
    assert [w.name for w in layer.trainable_weights] == ["alpha"]
    assert tuple(layer.alpha.shape) == ()
    assert float(to_numpy(layer.alpha)) == 0.0


@pytest.mark.parametrize("cls", list(EXPANDED), ids=lambda c: c.__name__)
@pytest.mark.parametrize("alpha", [0.0, 0.35])
def test_expanded_layer_matches_reference(cls, alpha):
    layer = cls()
    layer.build(X.shape)
    layer.alpha.assign(alpha)
    expected = X * ref.expanded_gate(X.astype(np.float64), alpha, EXPANDED[cls])
    np.testing.assert_allclose(to_numpy(layer(X)), expected, rtol=1e-5, atol=1e-5)


def test_xgelu_and_xsilu_at_zero_alpha_are_gelu_and_silu():
    x64 = X.astype(np.float64)
    np.testing.assert_allclose(to_numpy(layers.XGELU()(X)), ref.gelu(x64), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(layers.XSiLU()(X)), x64 * ref.sigmoid(x64), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", list(EXPANDED), ids=lambda c: c.__name__)
def test_alpha_gradient_matches_finite_differences(cls):
    layer = cls()
    layer.build(X.shape)
    layer.alpha.assign(0.1)
    g = weight_grads(layer, X)["alpha"]
    x64 = X.astype(np.float64)
    fd = central_difference(lambda a: (x64 * ref.expanded_gate(x64, a, EXPANDED[cls])).sum(), 0.1)
    np.testing.assert_allclose(g, fd, rtol=1e-4)


@pytest.mark.parametrize("cls", [layers.GoLU, *EXPANDED], ids=lambda c: c.__name__)
def test_save_and_load_round_trip(cls, tmp_path):
    inputs = keras.Input((5, 7))
    model = keras.Model(inputs, cls(name="act")(inputs))
    if cls is not layers.GoLU:
        model.get_layer("act").alpha.assign(-0.15)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.get_layer("act")) is cls
    np.testing.assert_allclose(to_numpy(loaded(X)), to_numpy(model(X)), rtol=1e-6)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


@pytest.mark.parametrize("cls", [layers.GoLU, *EXPANDED], ids=lambda c: c.__name__)
def test_mixed_bfloat16_policy(cls):
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = cls()
    y = layer(X)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    keras.config.set_dtype_policy("float32")
    reference_layer = cls()
    np.testing.assert_allclose(to_numpy(keras.ops.cast(y, "float32")), to_numpy(reference_layer(X)),
                               rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("cls", [layers.GoLU, *EXPANDED], ids=lambda c: c.__name__)
def test_fit_step_compiles_under_xla(cls):
    """XLA on JAX and TensorFlow; eager on torch (where jit_compile=True is torch.compile)."""
    inputs = keras.Input((7,))
    model = keras.Model(inputs, keras.layers.Dense(3)(cls()(keras.layers.Dense(7)(inputs))))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=BACKEND != "torch")
    x, y = X.reshape(-1, 7), np.ones((15, 3), "float32")
    before = [to_numpy(w) for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=15, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = [to_numpy(w) for w in model.trainable_weights]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))  # alpha too
