import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from glu_zoo.layers import FFN, FFN_ACTIVATIONS, GATED_VARIANTS, GatedFFN
from tests import reference as ref
from tests.conftest import BACKEND, central_difference, to_numpy, weight_grads

D, HIDDEN = 6, 5
X = np.random.default_rng(2).normal(size=(2, 3, D)).astype("float32")
EXPANDED = {"xatlu", "xgelu", "xsilu", "xatglu", "xgeglu", "xswiglu"}


def _randomise(layer, alpha=0.3, seed=0):
    """Give every weight a random value (biases and alpha included) and return them."""
    rng = np.random.default_rng(seed)
    values = {}
    for w in layer.weights:
        v = np.asarray(alpha, "float32") if w.name == "alpha" else rng.normal(size=w.shape).astype("float32") * 0.7
        w.assign(v)
        values[w.name] = v.astype(np.float64)
    return values


def _reference(layer, x, w):
    args = (x.astype(np.float64), w["kernel_in"], w["kernel_out"])
    kwargs = dict(alpha=w.get("alpha", 0.0), bias_in=w.get("bias_in"), bias_out=w.get("bias_out"))
    if isinstance(layer, GatedFFN):
        return ref.gated_ffn(*args, layer.variant, **kwargs)
    return ref.ffn(*args, layer.activation, **kwargs)


ALL = [(FFN, a) for a in FFN_ACTIVATIONS] + [(GatedFFN, v) for v in GATED_VARIANTS]
IDS = [f"{cls.__name__}-{kind}" for cls, kind in ALL]


def _make(cls, kind, **kwargs):
    return cls(HIDDEN, kind, **kwargs)


@pytest.mark.parametrize("cls, kind", ALL, ids=IDS)
@pytest.mark.parametrize("use_bias", [False, True], ids=["nobias", "bias"])
def test_matches_numpy_reference(cls, kind, use_bias):
    layer = _make(cls, kind, use_bias=use_bias)
    layer.build(X.shape)
    w = _randomise(layer)
    np.testing.assert_allclose(to_numpy(layer(X)), _reference(layer, X, w), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("cls, kind", ALL, ids=IDS)
def test_weight_names_and_layout(cls, kind):
    layer = _make(cls, kind, output_dim=4)
    layer.build(X.shape)
    width = 2 * HIDDEN if cls is GatedFFN else HIDDEN
    shapes = {w.name: tuple(w.shape) for w in layer.weights}
    expected = {"kernel_in": (D, width), "kernel_out": (HIDDEN, 4)}
    if kind in EXPANDED:
        expected["alpha"] = ()
    assert shapes == expected
    assert tuple(layer(X).shape) == (2, 3, 4)


@pytest.mark.parametrize("cls", [FFN, GatedFFN])
def test_kernels_are_initialised_independently(cls):
    layer = cls(D)  # square kernels: the same seed would give the same matrix
    layer.build((2, D))
    k_in, k_out = to_numpy(layer.kernel_in)[:, :D], to_numpy(layer.kernel_out)
    assert abs(np.corrcoef(k_in.ravel(), k_out.ravel())[0, 1]) < 0.5


def test_gated_kernel_in_columns_are_activated_then_linear():
    """[:hidden] is W (activated), [hidden:] is V (linear): with W zeroed a GLU
    gives σ(0)·xV = xV/2."""
    layer = GatedFFN(HIDDEN, variant="glu")
    layer.build(X.shape)
    w = _randomise(layer)
    kernel = w["kernel_in"].copy()
    kernel[:, :HIDDEN] = 0.0
    layer.kernel_in.assign(kernel.astype("float32"))
    expected = 0.5 * (X.astype(np.float64) @ kernel[:, HIDDEN:]) @ w["kernel_out"]
    np.testing.assert_allclose(to_numpy(layer(X)), expected, rtol=1e-5, atol=1e-5)


def test_gelu_tanh_is_the_tanh_approximation_not_the_exact_gelu():
    """gelu_tanh follows ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (the MLP of big_vision's
    ViT and TRecViT), which differs from the exact x·Φ(x) by up to ~5e-4 per unit."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 3, D)).astype("float32") * 2.0
    layers = {a: FFN(HIDDEN, activation=a, use_bias=True) for a in ("gelu", "gelu_tanh")}
    for layer in layers.values():
        layer.build(x.shape)
    w = _randomise(layers["gelu"], seed=4)
    for v in layers["gelu_tanh"].weights:
        v.assign(w[v.name].astype("float32"))
    y_tanh, y_exact = to_numpy(layers["gelu_tanh"](x)), to_numpy(layers["gelu"](x))
    expected = ref.ffn(x.astype(np.float64), w["kernel_in"], w["kernel_out"], "gelu_tanh",
                       bias_in=w["bias_in"], bias_out=w["bias_out"])
    np.testing.assert_allclose(y_tanh, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(y_exact - expected).max() > 1e-4  # the exact GELU misses it


@pytest.mark.parametrize("shape", [(7, D), (2, 3, D), (2, 2, 3, D)], ids=["rank2", "rank3", "rank4"])
def test_any_rank_at_least_two(shape):
    x = np.random.default_rng(3).normal(size=shape).astype("float32")
    layer = GatedFFN(HIDDEN, variant="swiglu")
    layer.build(x.shape)
    w = _randomise(layer)
    y = layer(x)
    assert tuple(y.shape) == shape
    np.testing.assert_allclose(to_numpy(y), _reference(layer, x, w), rtol=2e-5, atol=2e-5)


def test_matched_hidden_dim():
    assert GatedFFN.matched_hidden_dim(3072) == 2048
    assert GatedFFN.matched_hidden_dim(2048) == 1365
    d = 768  # T5-base: 3·768·2048 = 2·768·3072 weights per FFN
    assert 3 * d * GatedFFN.matched_hidden_dim(3072) == 2 * d * 3072


@given(st.integers(1, 100_000))
def test_matched_hidden_dim_never_exceeds_the_two_matrix_count(d_ff):
    h = GatedFFN.matched_hidden_dim(d_ff)
    assert 3 * h <= 2 * d_ff < 3 * (h + 1)


@pytest.mark.parametrize("cls, kind", [(FFN, "xgelu"), (GatedFFN, "xswiglu"), (GatedFFN, "goglu")],
                         ids=["FFN-xgelu", "GatedFFN-xswiglu", "GatedFFN-goglu"])
def test_weight_gradients_match_finite_differences(cls, kind):
    layer = _make(cls, kind)
    layer.build(X.shape)
    w = _randomise(layer, alpha=0.2)
    grads = weight_grads(layer, X)
    for wname in ["alpha", "kernel_out"] if "alpha" in w else ["kernel_in"]:
        def loss(value, wname=wname):
            return _reference(layer, X, {**w, wname: value}).sum()
        # Perturb a few entries one at a time (float64 reference, central differences).
        flat = w[wname].reshape(-1)
        for i in range(min(flat.size, 4)):
            def f(v, i=i):
                p = flat.copy()
                p[i] = v
                return loss(p.reshape(w[wname].shape))
            fd = central_difference(f, flat[i])
            np.testing.assert_allclose(grads[wname].reshape(-1)[i], fd, rtol=2e-3, atol=1e-4)


def test_dropout_acts_in_training_only():
    layer = GatedFFN(HIDDEN, variant="swiglu", dropout=0.5)
    layer.build(X.shape)
    w = _randomise(layer)
    np.testing.assert_allclose(to_numpy(layer(X)), _reference(layer, X, w), rtol=2e-5, atol=2e-5)
    trained = to_numpy(layer(X, training=True))
    assert not np.allclose(trained, _reference(layer, X, w), atol=1e-3)


@pytest.mark.parametrize("cls, kind", ALL, ids=IDS)
def test_save_and_load_round_trip(cls, kind, tmp_path):
    inputs = keras.Input((3, D))
    layer = _make(cls, kind, use_bias=True, dropout=0.1, output_dim=4, name="ffn")
    model = keras.Model(inputs, layer(inputs))
    _randomise(layer)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path).get_layer("ffn")
    assert type(loaded) is cls and loaded.get_config() == layer.get_config()
    np.testing.assert_allclose(to_numpy(loaded(X)), to_numpy(layer(X)), rtol=1e-6)
    assert [w.name for w in loaded.weights] == [w.name for w in layer.weights]


@pytest.mark.parametrize("cls, kind", [(FFN, "golu"), (FFN, "xatlu"), (GatedFFN, "swiglu"),
                                       (GatedFFN, "xgeglu"), (GatedFFN, "goglu")])
def test_fit_step_compiles_under_xla(cls, kind):
    """XLA on JAX and TensorFlow; eager on torch (where jit_compile=True is torch.compile)."""
    inputs = keras.Input((3, D))
    model = keras.Model(inputs, _make(cls, kind)(inputs))  # no dropout: 5 hidden units make it dominate
    model.compile(optimizer=keras.optimizers.SGD(0.02), loss="mse", jit_compile=BACKEND != "torch")
    before = [to_numpy(w) for w in model.trainable_weights]
    history = model.fit(X, np.zeros_like(X), batch_size=2, epochs=5, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    after = [to_numpy(w) for w in model.trainable_weights]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("cls, kind", [(FFN, "gelu"), (FFN, "xsilu"), (GatedFFN, "geglu"),
                                       (GatedFFN, "goglu"), (GatedFFN, "xatglu")])
def test_mixed_bfloat16_policy(cls, kind):
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = _make(cls, kind)
    layer.build(X.shape)
    w = _randomise(layer, alpha=0.1)
    y = layer(X)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert {keras.backend.standardize_dtype(v.dtype) for v in layer.weights} == {"float32"}
    expected = _reference(layer, X, w)
    np.testing.assert_allclose(to_numpy(keras.ops.cast(y, "float32")), expected,
                               rtol=5e-2, atol=5e-2 * np.abs(expected).max())


# --- bad input -----------------------------------------------------------------

def test_unknown_activation_and_variant_list_the_allowed_names():
    with pytest.raises(ValueError, match=r"`activation` 'tanh'.*relu, gelu, gelu_tanh, swish, golu, atlu, xatlu, "
                                           r"xgelu, xsilu"):
        FFN(8, activation="tanh")
    with pytest.raises(ValueError, match=r"`variant` 'SwiGLU'.*glu, bilinear, reglu, geglu, geglu_tanh, swiglu, goglu, "
                                         r"xatglu, xgeglu, xswiglu"):
        GatedFFN(8, variant="SwiGLU")


@pytest.mark.parametrize("cls", [FFN, GatedFFN])
@pytest.mark.parametrize("hidden_dim", [0, -3, 2.5, True, "8"])
def test_bad_hidden_dim(cls, hidden_dim):
    with pytest.raises(ValueError, match=rf"`hidden_dim` must be a positive integer; got {hidden_dim!r}"):
        cls(hidden_dim)


@pytest.mark.parametrize("cls", [FFN, GatedFFN])
@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5, "0.1", None])
def test_bad_dropout(cls, dropout):
    with pytest.raises(ValueError, match=rf"`dropout` must be a number in \[0, 1\); got {dropout!r}"):
        cls(8, dropout=dropout)


def test_bad_output_dim_and_use_bias():
    with pytest.raises(ValueError, match=r"`output_dim` must be a positive integer; got 0"):
        GatedFFN(8, output_dim=0)
    with pytest.raises(ValueError, match=r"`use_bias` must be True or False; got 'yes'"):
        FFN(8, use_bias="yes")
    with pytest.raises(ValueError, match=r"`d_ff` must be a positive integer; got 0"):
        GatedFFN.matched_hidden_dim(0)


@pytest.mark.parametrize("cls", [FFN, GatedFFN])
def test_rank_one_input_is_rejected(cls):
    with pytest.raises(ValueError, match=r"`inputs` must have rank >= 2.*got shape \(6,\)"):
        cls(8)(np.ones((D,), "float32"))


@pytest.mark.parametrize("cls", [FFN, GatedFFN])
def test_last_dimension_must_match_the_built_one(cls):
    layer = cls(8)
    layer(X)
    with pytest.raises(ValueError, match=r"built for inputs with last dimension 6; got `inputs` of shape \(2, 3, 5\)"):
        layer(np.ones((2, 3, 5), "float32"))


def test_integer_input_is_rejected():
    with pytest.raises(ValueError, match=r"`inputs` must be floating point; got dtype int"):
        GatedFFN(8)(np.ones((2, D), "int32"))
