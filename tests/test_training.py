import csv
import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from glu_zoo import presets, recipes, training
from tests.conftest import BACKEND

TINY = {"num_layers": 1, "hidden_dim": 16, "ffn_dim": 16, "dropout": 0.5}
WITH_VALIDATION = {"normalize": "unit", "validation_size": 0.1}


def tiny_recipe(epochs=3, **changes):
    changes = {"data_options": WITH_VALIDATION, **changes}
    return dataclasses.replace(recipes.get("activator_vit_digits"), epochs=epochs, model_overrides=TINY, **changes)


def _weights(preset):
    import h5py

    values = []
    with h5py.File(preset / "model.weights.h5") as f:
        f.visititems(lambda name, obj: values.append((name, obj[()])) if isinstance(obj, h5py.Dataset) else None)
    return values


def test_train_writes_log_plot_checkpoint_and_a_loadable_preset(tmp_path):
    result = training.train(tiny_recipe(), out=tmp_path, verbose=0)
    assert set(result["metrics"]) == {"accuracy", "loss"}
    assert 0.3 < result["metrics"]["accuracy"] <= 1.0  # 10 classes: chance is 0.1
    for name in ("log.csv", "curves.png", "best.weights.h5", "result.json", "preset/metadata.json"):
        assert (tmp_path / name).is_file(), name
    with open(tmp_path / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]
    assert not (tmp_path / "backup").exists()  # BackupAndRestore removes it after a finished run
    m = presets.get_metadata(tmp_path / "preset")
    assert m["test_metrics"] == result["metrics"] and m["backend"] == BACKEND
    assert m["recipe"]["name"] == "activator_vit_digits" and result["examples_per_second"] > 0
    model = presets.load(tmp_path / "preset")
    assert presets.expected_output_error(model, m) < 1e-5
    assert json.loads((tmp_path / "result.json").read_text())["preset"] == str(tmp_path / "preset")
    assert presets.get_metadata(tmp_path) == m  # a run folder stands for its preset


KILL_SCRIPT = textwrap.dedent("""
    import dataclasses, os, signal, sys
    import keras
    from glu_zoo import recipes, training
    recipe = dataclasses.replace(recipes.get("activator_vit_digits"), epochs=4, model_overrides={tiny},
                                 data_options={"normalize": "unit", "validation_size": 0.1})

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # after the backup of epoch 2
                os.kill(os.getpid(), signal.SIGKILL)

    training.train(recipe, out=sys.argv[1], verbose=0, callbacks=[Kill()])
""")


def test_a_run_killed_with_sigkill_resumes_and_ends_as_an_uninterrupted_run(tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT.replace("{tiny}", repr(TINY)), str(tmp_path / "a")],
                            capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": BACKEND})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (tmp_path / "a" / "result.json").exists()
    assert json.loads((tmp_path / "a" / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    resumed = training.train(tiny_recipe(epochs=4), out=tmp_path / "a", verbose=0)
    whole = training.train(tiny_recipe(epochs=4), out=tmp_path / "b", verbose=0)
    with open(tmp_path / "a" / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2, 3]
    assert resumed["metrics"] == whole["metrics"]
    for (name_a, a), (name_b, b) in zip(_weights(tmp_path / "a" / "preset"), _weights(tmp_path / "b" / "preset")):
        assert name_a == name_b
        np.testing.assert_array_equal(a, b)


def test_without_validation_the_last_epoch_is_kept(tmp_path):
    result = training.train(tiny_recipe(epochs=2, data_options={"validation_size": 0.0}), out=tmp_path, verbose=0)
    assert not (tmp_path / "best.weights.h5").exists()
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and rows[0].get("val_accuracy", "NA") == "NA"
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert result["metrics"]["accuracy"] > 0.2


def test_mixed_bfloat16_training_ships_a_float32_preset(tmp_path):
    result = training.train(tiny_recipe(epochs=1), out=tmp_path, precision="mixed_bfloat16", verbose=0)
    assert np.isfinite(result["metrics"]["loss"])
    model = presets.load(tmp_path / "preset")
    assert {keras.backend.standardize_dtype(w.dtype) for w in model.weights} == {"float32"}
    assert model.dtype_policy.name == "float32"
    assert presets.get_metadata(tmp_path / "preset")["precision"] == "mixed_bfloat16"


DATA_PARALLEL_SCRIPT = textwrap.dedent("""
    import dataclasses, json, sys
    import jax, keras
    from glu_zoo import recipes, training
    recipe = dataclasses.replace(recipes.get("activator_vit_digits"), epochs=2, model_overrides={tiny})
    seen = []

    class Sharding(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(len(self.model.trainable_variables[0].value.sharding.device_set))

    result = training.train(recipe, out=sys.argv[1], distribute="data", verbose=0, callbacks=[Sharding()])
    print("RESULT", json.dumps({"devices": len(jax.devices()), "sharded_over": sorted(set(seen)),
                                 "accuracy": result["metrics"]["accuracy"]}))
""")


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution.DataParallel runs on JAX")
def test_data_parallel_over_two_cpu_devices(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    run = subprocess.run([sys.executable, "-c", DATA_PARALLEL_SCRIPT.replace("{tiny}", repr(TINY)), str(tmp_path)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert out["devices"] == 2 and out["sharded_over"] == [2]
    assert out["accuracy"] > 0.2
    assert presets.load(tmp_path / "preset") is not None


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"unknown `precision` 'float16'; allowed: float32, mixed_bfloat16"):
        training.train(tiny_recipe(), out=tmp_path, precision="float16")
    with pytest.raises(ValueError, match=r"unknown `distribute` 'model'"):
        training.train(tiny_recipe(), out=tmp_path, distribute="model")
    with pytest.raises(ValueError, match=r"`epochs` must be a positive integer; got 0"):
        training.train(tiny_recipe(), out=tmp_path, epochs=0)
    with pytest.raises(ValueError, match=r"unknown recipe 'nope'"):
        training.train("nope", out=tmp_path)
    if BACKEND != "jax":
        with pytest.raises(ValueError, match=r"distribute='data' needs the jax backend"):
            training.train(tiny_recipe(), out=tmp_path, distribute="data")


def test_images_of_the_wrong_size_are_refused(tmp_path):
    recipe = tiny_recipe(data_options={"upsample": 2, "validation_size": 0.1})
    with pytest.raises(ValueError, match=r"training inputs have shape \(16, 16, 1\) but the model expects \(8, 8, 1\)"):
        training.train(recipe, out=tmp_path, verbose=0)


LISTOPS_TINY = {"num_train": 64, "num_validation": 16, "num_test": 32, "max_depth": 4, "max_args": 4,
                "min_length": 5, "max_length": 40, "seed": 1}


@pytest.mark.parametrize("name, overrides", [
    ("lru_listops", {"num_layers": 1, "hidden_dim": 8, "state_dim": 8, "sequence_length": 40}),
    ("lru_listops", {"num_layers": 1, "hidden_dim": 8, "state_dim": 8, "sequence_length": None}),
    ("transformer_listops", {"num_layers": 1, "hidden_dim": 8, "num_heads": 2, "mlp_dim": 8,
                             "sequence_length": 40}),
])
def test_a_sequence_recipe_trains_into_a_token_preset(name, overrides, tmp_path):
    recipe = dataclasses.replace(recipes.get(name), epochs=2, batch_size=16, data_options=LISTOPS_TINY,
                                 model_overrides=overrides)
    result = training.train(recipe, out=tmp_path, verbose=0)
    assert 0.0 <= result["metrics"]["accuracy"] <= 1.0 and np.isfinite(result["metrics"]["loss"])
    m = presets.get_metadata(tmp_path / "preset")
    expected = m["expected_output"]
    length = overrides["sequence_length"] or presets.registry.FIXED_INPUT_LENGTH
    assert (expected["input_dtype"], expected["input_high"], expected["input_shape"]) == ("int32", 16, [length])
    assert "listops (LRA grammar, seed 1" in m["data_split"]
    evaluated = training.evaluate(tmp_path / "preset")
    assert evaluated["expected_output_error"] < 1e-5
    assert abs(evaluated["metrics"]["accuracy"] - result["metrics"]["accuracy"]) < 1e-6


def test_recurrence_parameters_are_not_weight_decayed():
    from glu_zoo.layers import LRUBlock

    recipe = recipes.get("lru_listops")
    optimizer = training._optimizer(recipe, steps_per_epoch=10, epochs=1)
    model = keras.Sequential([keras.Input((5, 4)), LRUBlock(3)])
    decayed = {v.name for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    assert decayed == {"B_re", "B_im", "C_re", "C_im", "D", "kernel", "bias", "gamma", "beta"}
