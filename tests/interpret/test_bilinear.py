import json

import keras
import numpy as np
import pytest

from glu_zoo.interpret import bilinear
from glu_zoo.layers import FFN, GatedFFN
from glu_zoo.models import BilinearMLP, ViT
from tests.conftest import to_numpy
from tests.models import randomise

IMAGE = (4, 4, 1)


def bilinear_layer(rng, d=6, hidden=5, out=4, **kwargs):
    layer = GatedFFN(hidden, variant="bilinear", output_dim=out, **kwargs)
    layer.build((None, d))
    for w in layer.weights:
        w.assign(rng.normal(size=w.shape).astype("float32"))
    return layer


def model(rng, **kwargs):
    m = BilinearMLP(image_shape=IMAGE, num_classes=3, embed_dim=6, hidden_dim=5, **kwargs)
    randomise(m, rng)
    return m


def squares(eig, x):
    """Σ_i λ_i (v_i·x)², for every direction: (batch, directions)."""
    return np.einsum("ck,bck->bc", np.atleast_2d(eig.values) if eig.values.ndim == 1 else eig.values,
                     np.einsum("bd,ckd->bck", x, eig.vectors.reshape(-1, *eig.vectors.shape[-2:])) ** 2)


def test_a_layer_is_the_sum_of_its_squared_eigen_projections():
    rng = np.random.default_rng(0)
    layer = bilinear_layer(rng)
    x = rng.normal(size=(7, 6)).astype("float32")
    u = rng.normal(size=(4,))
    expected = to_numpy(layer(x)).astype("float64") @ u  # u·out(x), the layer's own forward pass
    q = bilinear.interaction_matrix(layer, u)
    assert q.shape == (6, 6)
    np.testing.assert_allclose(np.einsum("bi,ij,bj->b", x, q, x), expected, rtol=1e-4, atol=1e-4)
    eig = bilinear.eigendecomposition(q)
    got = (eig.values * (x.astype("float64") @ eig.vectors.T) ** 2).sum(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # A batch of directions gives each one's matrix.
    batch = rng.normal(size=(3, 4))
    np.testing.assert_allclose(bilinear.interaction_matrix(layer, batch)[1],
                               bilinear.interaction_matrix(layer, batch[1]), atol=1e-12)


def test_a_model_is_one_quadratic_form_of_its_pixels_per_class():
    rng = np.random.default_rng(1)
    m = model(rng, input_noise=0.3)
    x = rng.normal(size=(5, *IMAGE)).astype("float32")
    logits = to_numpy(m.predict_on_batch(x)).astype("float64")
    eig = bilinear.decompose(m)
    assert eig.values.shape == (3, 16) and eig.vectors.shape == (3, 16, 16)
    np.testing.assert_allclose(squares(eig, x.reshape(5, -1).astype("float64")), logits, rtol=1e-4, atol=1e-4)
    assert eig.features(2, IMAGE).shape == (3, 2, *IMAGE)
    # The embedding folds in: a 6-wide embedding leaves at most 6 nonzero eigenvalues of 16.
    assert np.all(np.abs(eig.values[:, 6:]) < 1e-6 * np.abs(eig.values[:, :1]))


def test_a_stack_of_linear_layers_around_one_bilinear_layer():
    rng = np.random.default_rng(2)
    stack = keras.Sequential([keras.Input((3, 4)), keras.layers.Flatten(), keras.layers.Dense(5, use_bias=False),
                              keras.layers.Dropout(0.5), GatedFFN(4, variant="bilinear"),
                              keras.layers.Dense(2, use_bias=False)])
    randomise(stack, rng)
    x = rng.normal(size=(6, 3, 4)).astype("float32")
    out = to_numpy(stack(x)).astype("float64")
    u = np.array([0.3, -1.2])
    q = bilinear.interaction_matrix(stack, u)
    np.testing.assert_allclose(np.einsum("bi,ij,bj->b", x.reshape(6, -1), q, x.reshape(6, -1)), out @ u,
                               rtol=1e-4, atol=1e-4)


def test_components_are_ordered_orthonormal_and_their_share_is_the_rank_k_error():
    rng = np.random.default_rng(3)
    q = bilinear.interaction_matrix(bilinear_layer(rng, d=8), rng.normal(size=(4,)))
    eig = bilinear.eigendecomposition(q)
    assert np.all(np.diff(np.abs(eig.values)) <= 1e-12)
    np.testing.assert_allclose(eig.vectors @ eig.vectors.T, np.eye(8), atol=1e-10)
    np.testing.assert_allclose(eig.matrix(), q, atol=1e-10)
    for k in (1, 3, 8):
        error = np.linalg.norm(q - eig.matrix(k)) ** 2 / np.linalg.norm(q) ** 2
        np.testing.assert_allclose(eig.share(k), 1.0 - error, atol=1e-10)
        # Eckart–Young: no other k eigen-components come closer.
        other = bilinear.Eigen(eig.values[::-1], eig.vectors[::-1])
        assert np.linalg.norm(q - other.matrix(k)) >= np.linalg.norm(q - eig.matrix(k)) - 1e-10


def test_truncation_at_full_rank_reproduces_the_model_and_below_it_keeps_the_top_components(tmp_path):
    rng = np.random.default_rng(4)
    m = model(rng)
    x = rng.normal(size=(9, *IMAGE)).astype("float32")
    y = np.arange(9) % 3
    logits = to_numpy(m.predict_on_batch(x))
    full = bilinear.truncate(m, 16)
    np.testing.assert_allclose(to_numpy(full.predict_on_batch(x)), logits, rtol=1e-4, atol=1e-4)
    eig = bilinear.decompose(m)
    two = bilinear.truncate(m, 2)
    np.testing.assert_allclose(to_numpy(two.predict_on_batch(x)),
                               squares(eig.top(2), x.reshape(9, -1).astype("float64")), rtol=1e-4, atol=1e-4)
    accuracies = bilinear.accuracy_against_k(m, x, y, ks=[2, 16])
    assert accuracies[16] == np.mean(logits.argmax(-1) == y)
    assert accuracies[2] == np.mean(to_numpy(two.predict_on_batch(x)).argmax(-1) == y)
    path = tmp_path / "top2.keras"
    two.save(path)
    np.testing.assert_allclose(to_numpy(keras.saving.load_model(path).predict_on_batch(x)),
                               to_numpy(two.predict_on_batch(x)), atol=1e-6)


def test_report_is_json_and_writes_the_plots(tmp_path):
    rng = np.random.default_rng(5)
    m = model(rng)
    x = rng.normal(size=(6, *IMAGE)).astype("float32")
    result = bilinear.report(m, x, np.arange(6) % 3, out=tmp_path, k=2, verbose=False)
    assert json.loads(json.dumps(result))["components"] == 16
    assert len(result["outputs"]) == 3 and len(result["outputs"][0]["top_eigenvalues"]) == 2
    assert result["accuracy_against_k"]["16"] == result["full_accuracy"]
    for name in ("eigenspectrum.png", "eigenvectors.png", "accuracy_against_k.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_bad_inputs_are_refused_with_what_is_allowed():
    rng = np.random.default_rng(6)
    layer = bilinear_layer(rng)
    swiglu = GatedFFN(5, variant="swiglu")
    swiglu.build((None, 6))
    ffn = FFN(5)
    ffn.build((None, 6))
    with pytest.raises(ValueError, match="variant 'swiglu'; only variant 'bilinear'"):
        bilinear.interaction_matrix(swiglu, np.ones(6))
    with pytest.raises(ValueError, match="must be a GatedFFN with variant 'bilinear'.*FFN"):
        bilinear.interaction_matrix(ffn, np.ones(6))
    with pytest.raises(ValueError, match="use_bias=True"):
        bilinear.interaction_matrix(bilinear_layer(rng, use_bias=True), np.ones(4))
    with pytest.raises(ValueError, match=r"`u` must be one direction of size 4 .*got shape \(5,\)"):
        bilinear.interaction_matrix(layer, np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        bilinear.interaction_matrix(layer, np.array([1.0, np.nan, 0.0, 0.0]))
    m = model(rng)
    for k in (0, -1, 17, 2.0, True):
        with pytest.raises(ValueError, match=r"`k` must be an integer in \[1, 16\]"):
            bilinear.truncate(m, k)
    with pytest.raises(ValueError, match="has no bilinear GatedFFN"):
        bilinear.decompose(ViT(image_shape=IMAGE, patch_size=2, num_classes=3, hidden_dim=8, num_layers=1,
                               num_heads=2, mlp_dim=8, mlp="swiglu"))
    with pytest.raises(ValueError, match="has 2 bilinear layers"):
        bilinear.decompose(model(rng, num_layers=2))
    relu_stack = keras.Sequential([keras.Input((6,)), keras.layers.Dense(6, activation="relu", use_bias=False),
                                   GatedFFN(4, variant="bilinear")])
    with pytest.raises(ValueError, match="has a bias or an activation"):
        bilinear.decompose(relu_stack)
    with pytest.raises(ValueError, match="must be symmetric"):
        bilinear.eigendecomposition(np.array([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"`x` must be floating inputs of shape \(batch, 4, 4, 1\)"):
        bilinear.accuracy_against_k(m, np.zeros((2, 16), "float32"), np.zeros(2, int))
