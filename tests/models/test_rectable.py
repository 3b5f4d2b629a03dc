"""RecTable: the velocity network against its NumPy reference, the training noise and
times, fit with the EMA optimizer, the samplers, saving, and bad inputs (tiny sizes)."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
from scipy import special

import glu_zoo.models
from glu_zoo.data.tabular import TableEncoder, TableSpec
from glu_zoo.models import RecTable
from glu_zoo.models.rectable import ARCHITECTURES, T_MIN, EMAWarmupAdam
from tests import reference as ref
from tests.conftest import BACKEND, to_numpy
from tests.models import randomise, weights_of

TINY = dict(hidden_dims=[16, 24], time_dim=8)
SPEC = TableSpec(numerical=["size", "count"], categorical=["colour"], target="label", task="classification")
JIT = {} if BACKEND == "torch" else {"jit_compile": True}


def small_table(rng, n=90):
    return pd.DataFrame({
        "size": rng.normal(5.0, 2.0, n),
        "count": rng.integers(0, 20, n).astype(np.int64),
        "colour": rng.choice(["red", "green", "blue"], n).astype(object),
        "label": rng.choice([0, 1, 2], n, p=[0.5, 0.3, 0.2]).astype(np.int64),
    })


@pytest.fixture
def table():
    df = small_table(np.random.default_rng(0))
    encoder = TableEncoder(SPEC).fit(df)
    return df, encoder, encoder.transform(df)


def _trained(encoder, x, epochs=3, **optimizer):
    model = RecTable(encoder, seed=3, **TINY)
    model.compile(optimizer=RecTable.default_optimizer(**{"warmup_steps": 2, **optimizer}), **JIT)
    model.fit(x, batch_size=30, epochs=epochs, verbose=0)
    return model


# --- the network --------------------------------------------------------------------------------------------------

def test_network_matches_numpy_reference(table):
    _, encoder, x = table
    model = RecTable(encoder, **TINY)
    randomise(model.network, np.random.default_rng(1))
    t = np.random.default_rng(2).uniform(T_MIN, 1.0, len(x)).astype("float32")
    expected = ref.rectable_net(x, t, weights_of(model.network), TINY["hidden_dims"], TINY["time_dim"])
    np.testing.assert_allclose(to_numpy(model.network(x, t)), expected, rtol=1e-4, atol=1e-4)


def test_named_architectures(table):
    _, encoder, x = table
    assert {"rectable", "rectable_tiny"} <= set(glu_zoo.models.list_architectures())
    assert ARCHITECTURES["rectable"][1]["hidden_dims"] == (1024, 2048, 1024, 1024)
    assert ARCHITECTURES["rectable"][1]["time_dim"] == 128
    tiny = glu_zoo.models.build("rectable_tiny", encoder=encoder)
    assert isinstance(tiny, RecTable) and tiny.network.hidden_dims == ARCHITECTURES["rectable_tiny"][1]["hidden_dims"]


def test_paper_network_parameter_count(table):
    _, encoder, _ = table
    d, e = encoder.width, 128
    dims = [1024, 2048, 1024, 1024]
    widths = [e] + dims
    expected = 2 * (e * e + e) + (d * e + e) + sum(2 * u * (w + 1) for w, u in zip(widths, dims)) + dims[-1] * d + d
    model = RecTable(encoder)
    assert model.count_params() == model.network.count_params()
    assert model.network.count_params() == expected


# --- the training noise and times ---------------------------------------------------------------------------------

def test_flow_pairs_draw_logit_normal_times_and_mixed_noise(table):
    _, encoder, x = table
    model = RecTable(encoder, seed=0, **TINY)
    rng = np.random.default_rng(4)
    n = 20_000
    x1 = rng.normal(size=(n, encoder.width)).astype("float32")
    x_t, t, target = (to_numpy(v) for v in model.flow(x1))
    z0 = x1 - target
    np.testing.assert_allclose(x_t, t[:, None] * x1 + (1 - t[:, None]) * z0, rtol=1e-5, atol=1e-5)
    assert t.min() >= T_MIN and t.max() <= 1.0
    u = special.logit((t.astype(np.float64) - T_MIN) / (1 - T_MIN))
    assert abs(u.mean()) < 0.03 and abs(u.std() - 1) < 0.03, (u.mean(), u.std())
    numerical, onehot = z0[:, :encoder.numerical_width], z0[:, encoder.numerical_width:]
    assert abs(numerical.mean()) < 0.03 and abs(numerical.std() - 1) < 0.03
    assert onehot.min() >= -1 and onehot.max() <= 1
    assert abs(onehot.mean()) < 0.02 and abs(onehot.var() - 1 / 3) < 0.02
    # The model's own drawing functions: the same laws, and a fresh draw each call.
    times = to_numpy(model.draw_time(n))
    u = special.logit((times.astype(np.float64) - T_MIN) / (1 - T_MIN))
    assert abs(u.mean()) < 0.03 and abs(u.std() - 1) < 0.03
    noise = to_numpy(model.draw_noise(n))
    assert noise.shape == (n, encoder.width)
    assert abs(noise[:, encoder.numerical_width:]).max() <= 1 and noise[:, :encoder.numerical_width].std() > 0.97
    assert not np.array_equal(to_numpy(model.draw_time(5)), to_numpy(model.draw_time(5)))


# --- training -----------------------------------------------------------------------------------------------------

def test_fit_step_moves_every_weight(table):
    _, encoder, x = table
    model = RecTable(encoder, seed=1, **TINY)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), **JIT)
    before = {w.path: to_numpy(w).copy() for w in model.weights}
    history = model.fit(x, batch_size=len(x), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and history.history["loss"][0] > 0
    unchanged = [w.path for w in model.weights if np.array_equal(before[w.path], to_numpy(w))]
    assert not unchanged, unchanged  # the seed generator's state moves too
    assert np.isfinite(model.evaluate(x, verbose=0))


def test_loss_is_the_velocity_mse(table):
    _, encoder, x = table
    model = RecTable(encoder, **TINY)
    rng = np.random.default_rng(5)
    y_pred = {"velocity": rng.normal(size=x.shape).astype("float32"), "target": rng.normal(size=x.shape)
              .astype("float32")}
    expected = np.mean((y_pred["velocity"].astype(np.float64) - y_pred["target"]) ** 2)
    assert float(to_numpy(model.compute_loss(x, None, y_pred))) == pytest.approx(expected, rel=1e-5)


def test_ema_warmup_momentum():
    # One weight, gradients g_i: Adam moves it, the average follows m_i = min(0.9999, (2 + i)/(11 + i)), m_0 = 0.
    variable = keras.Variable(np.array([1.0, -2.0], "float32"))
    optimizer = EMAWarmupAdam(learning_rate=0.1, use_ema=True, ema_momentum=0.9999)
    optimizer.build([variable])
    rng = np.random.default_rng(6)
    average = None
    for i in range(6):
        optimizer.apply([keras.ops.convert_to_tensor(rng.normal(size=2).astype("float32"))], [variable])
        value = to_numpy(variable).astype(np.float64)
        m = 0.0 if i == 0 else min(0.9999, (2 + i) / (11 + i))
        average = value if average is None else m * average + (1 - m) * value
        np.testing.assert_allclose(to_numpy(optimizer._model_variables_moving_average[0]), average, rtol=1e-5)


def test_fit_ends_with_the_ema_weights(table):
    """Two runs from the same weights and noise, with and without the EMA: the EMA run ends with the
    optimizer's averages in its weights, not with the raw weights the other run ends with."""
    _, encoder, x = table
    runs, initial = [], None
    for use_ema in (True, False):
        model = RecTable(encoder, seed=3, **TINY)
        if initial is None:
            initial = model.get_weights()
        model.set_weights(initial)
        optimizer = RecTable.default_optimizer(learning_rate=1e-2, warmup_steps=1)
        optimizer.use_ema = use_ema
        model.compile(optimizer=optimizer, **JIT)
        model.fit(x, batch_size=30, epochs=2, verbose=0)
        runs.append(model)
    ema, plain = runs
    averages = ema.optimizer._model_variables_moving_average
    for w, a in zip(ema.trainable_weights, averages):
        np.testing.assert_array_equal(to_numpy(w), to_numpy(a), err_msg=w.path)
    moved = [not np.allclose(to_numpy(a), to_numpy(b), atol=1e-6) for a, b in zip(ema.trainable_weights,
                                                                                  plain.trainable_weights)]
    assert all(moved), moved
    # Sampling reads the model's weights: the EMA ones.
    clone = RecTable(encoder, **TINY)
    clone.network.set_weights([to_numpy(a) for a in averages])
    z = ema.noise(7, seed=1)
    np.testing.assert_allclose(ema.generate(z, steps=5)[0], clone.generate(z, steps=5)[0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(ema.generate(z, steps=5)[0], plain.generate(z, steps=5)[0], atol=1e-4)


def test_fit_twice_with_the_ema(table):
    # Keras 3.15's own EMA makes a weight share its average's buffer at the end of fit: on JAX the next fit
    # then fails and leaves the model without weights.
    _, encoder, x = table
    model = _trained(encoder, x, epochs=1)
    model.fit(x, batch_size=30, epochs=1, verbose=0)
    for w, a in zip(model.trainable_weights, model.optimizer._model_variables_moving_average):
        np.testing.assert_array_equal(to_numpy(w), to_numpy(a), err_msg=w.path)
    assert np.isfinite(model.generate(model.noise(3), steps=2)[0]).all()


def test_default_optimizer_warms_up_and_clips():
    optimizer = RecTable.default_optimizer(learning_rate=2e-4, warmup_steps=100)
    schedule = optimizer._learning_rate
    assert float(to_numpy(schedule(0))) == 0.0
    assert float(to_numpy(schedule(50))) == pytest.approx(1e-4)
    assert float(to_numpy(schedule(100))) == pytest.approx(2e-4)
    assert float(to_numpy(schedule(10_000))) == pytest.approx(2e-4)
    assert optimizer.global_clipnorm == 1.0 and optimizer.use_ema and optimizer.ema_momentum == 0.9999


# --- sampling -----------------------------------------------------------------------------------------------------

def test_sample_has_the_training_columns_and_dtypes(table):
    df, encoder, x = table
    model = _trained(encoder, x)
    synthetic = model.sample(13, seed=0, steps=4)
    assert list(synthetic.columns) == list(df.columns)
    assert list(synthetic.dtypes) == list(df.dtypes)
    assert len(synthetic) == 13
    assert model.last_sample_nfe == 4
    assert set(synthetic["colour"]) <= {"red", "green", "blue"} and set(synthetic["label"]) <= {0, 1, 2}


def test_sample_is_seeded_and_batches_are_padded(table):
    _, encoder, x = table
    model = _trained(encoder, x, epochs=1)
    a = model.sample(9, seed=5, steps=3, batch_size=4)
    assert model.last_sample_nfe == 3 * 3
    pd.testing.assert_frame_equal(a, model.sample(9, seed=5, steps=3, batch_size=4))
    # Euler treats rows independently: the first batch does not depend on n.
    pd.testing.assert_frame_equal(a.iloc[:4], model.sample(4, seed=5, steps=3, batch_size=4))
    assert not a.equals(model.sample(9, seed=6, steps=3, batch_size=4))


def test_euler_and_rk45_agree(table):
    """On a briefly trained model made smooth in t (the two fastest time frequencies, 999 and 99.9 rad per
    unit of t, cut from the embedding: a step longer than their period aliases them, whatever the solver),
    RK45 at 1e-5 matches a tight RK45 and Euler converges to it at first order."""
    _, encoder, x = table
    model = _trained(encoder, x, epochs=5, learning_rate=1e-2)
    kernel = to_numpy(model.network.time_dense_in.kernel).copy()
    half = TINY["time_dim"] // 2
    kernel[[0, 1, half, half + 1]] = 0.0
    model.network.time_dense_in.kernel.assign(kernel)
    z = model.noise(8, seed=2)
    tight, _ = model.generate(z, method="rk45", rtol=1e-7, atol=1e-7)
    rk45, nfe = model.generate(z, method="rk45", rtol=1e-5, atol=1e-5)
    assert nfe > 8 and (nfe - 2) % 6 == 0
    assert np.abs(rk45 - tight).max() < 1e-3
    coarse = np.abs(model.generate(z, method="euler", steps=25)[0] - tight).max()
    fine = np.abs(model.generate(z, method="euler", steps=100)[0] - tight).max()
    assert fine < 4e-2 and 2.5 < coarse / fine < 6, (coarse, fine)
    model.sample(5, seed=0, method="rk45")
    assert model.last_sample_nfe > 8


def test_conditional_sampling_keeps_one_class(table):
    _, encoder, x = table
    model = _trained(encoder, x, epochs=1)
    rows = model.sample(12, seed=0, steps=3, label=2)
    assert len(rows) == 12 and set(rows["label"]) == {2}
    assert set(model.sample(5, seed=0, steps=3, label=np.int64(0))["label"]) == {0}


def test_conditional_sampling_of_a_class_the_model_never_makes(table):
    _, encoder, x = table
    model = RecTable(encoder, **TINY)
    start, stop = encoder.target_slice
    head = model.network.head
    kernel, bias = (to_numpy(v) for v in head.weights)
    kernel[:, start:stop] = 0.0
    bias[start:stop] = [5.0, -5.0, -5.0]  # every row decodes to class 0 (velocity pushes it there)
    head.set_weights([kernel, bias])
    with pytest.raises(ValueError, match=r"class 1 appeared in 0 of 8 generated rows"):
        model.sample(4, seed=0, steps=2, label=1, max_rounds=2)


def test_keras_round_trip_gives_the_same_samples(table, tmp_path):
    _, encoder, x = table
    model = _trained(encoder, x, epochs=1)
    path = tmp_path / "rectable.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is RecTable
    assert loaded.get_config() == model.get_config()
    pd.testing.assert_frame_equal(loaded.sample(6, seed=1, steps=3), model.sample(6, seed=1, steps=3))
    config = json.loads(json.dumps(model.get_config()))  # plain JSON, as a preset stores it
    clone = RecTable.from_config(config)
    clone.set_weights(model.get_weights())
    pd.testing.assert_frame_equal(clone.sample(6, seed=1, steps=3), model.sample(6, seed=1, steps=3))


def test_preset_outputs_are_the_velocity_at_fixed_times(table):
    _, encoder, x = table
    model = RecTable(encoder, **TINY)
    randomise(model.network, np.random.default_rng(8))
    probe = to_numpy(model.preset_outputs(x[:5]))
    t = np.linspace(T_MIN, 1.0, 5).astype("float32")
    expected = ref.rectable_net(x[:5], t, weights_of(model.network), TINY["hidden_dims"], TINY["time_dim"])
    np.testing.assert_allclose(probe, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(to_numpy(model.preset_outputs(x[:5])), probe)


def test_mixed_precision(table):
    """Under mixed_bfloat16 the network computes in bfloat16; the noise, times, loss and the ODE state stay
    float32; the config and a rebuilt model keep the policy."""
    df, encoder, x = table
    model = RecTable(encoder, dtype="mixed_bfloat16", **TINY)
    assert model.network.compute_dtype == "bfloat16" and model.flow.compute_dtype == "float32"
    assert {keras.backend.standardize_dtype(w.dtype) for w in model.weights} >= {"float32"}
    clone = RecTable.from_config(json.loads(json.dumps(model.get_config())))
    assert clone.network.head.compute_dtype == "bfloat16"
    model.compile(optimizer=RecTable.default_optimizer(warmup_steps=1), **JIT)
    assert np.isfinite(model.fit(x, batch_size=30, epochs=1, verbose=0).history["loss"][0])
    assert list(model.sample(4, steps=2).dtypes) == list(df.dtypes)


# --- bad inputs ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "`n` must be a positive integer; got 0"),
    (dict(n=-3), "`n`"),
    (dict(label=7), r"`label` 7 is not a class seen in training; known classes: 0, 1, 2"),
    (dict(label="1"), r"`label` '1' is not a class"),
    (dict(method="heun"), "unknown `method` 'heun'; allowed: euler, rk45"),
    (dict(steps=0), "`steps`"),
    (dict(seed=-1), "`seed`"),
    (dict(batch_size=0), "`batch_size`"),
    (dict(method="rk45", rtol=0.0), "`rtol`"),
])
def test_sample_bad_arguments(table, kwargs, match):
    _, encoder, _ = table
    model = RecTable(encoder, **TINY)
    with pytest.raises(ValueError, match=match):
        model.sample(**{"n": 3, **kwargs})


def test_label_needs_a_classification_target():
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"a": rng.normal(size=40), "y": rng.normal(size=40)})
    encoder = TableEncoder(TableSpec(numerical=["a"], target="y", task="regression")).fit(df)
    with pytest.raises(ValueError, match="regression target"):
        RecTable(encoder, **TINY).sample(3, label=1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden_dims=[16, 0]), "hidden_dims"),
    (dict(hidden_dims=16), "hidden_dims"),
    (dict(time_dim=7), "`time_dim` must be an even"),
    (dict(dropout=1.0), "dropout"),
    (dict(seed=-1), "`seed`"),
])
def test_bad_config(table, kwargs, match):
    _, encoder, _ = table
    with pytest.raises(ValueError, match=match):
        RecTable(encoder, **{**TINY, **kwargs})


def test_bad_encoder(table):
    df, _, _ = table
    with pytest.raises(ValueError, match="must be fitted"):
        RecTable(TableEncoder(SPEC), **TINY)
    with pytest.raises(ValueError, match="TableEncoder or its config; got list"):
        RecTable([1, 2], **TINY)


def test_bad_training_data(table):
    _, encoder, x = table
    model = RecTable(encoder, **TINY)
    model.compile(optimizer="adam", **JIT)
    with pytest.raises(ValueError, match=rf"expected inputs of shape \(None, {encoder.width}\)"):
        model.fit(x[:, :-1], epochs=1, verbose=0)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="row 3 is not"):
        model.fit(bad, epochs=1, verbose=0)
