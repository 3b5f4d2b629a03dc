import csv
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from glu_zoo import data as data_lib
from glu_zoo import presets, recipes, training
from tests.conftest import BACKEND

TINY = {"num_layers": 1, "hidden_dim": 16, "ffn_dim": 16, "dropout": 0.5}
WITH_VALIDATION = {"normalize": "unit", "validation_size": 0.1}


def tiny_recipe(epochs=3, **changes):
    changes = {"data_options": WITH_VALIDATION, **changes}
    return dataclasses.replace(recipes.get("activator_vit_digits"), epochs=epochs, model_overrides=TINY, **changes)


def resume_recipe():
    """The run that the resume tests kill: 4 epochs of 3 steps, dropout on;
    one batch size everywhere (1,293 training, 144 validation and 360 test
    images), so that each function compiles once."""
    return tiny_recipe(epochs=4, batch_size=431)


def _weights(preset):
    import h5py

    values = []
    with h5py.File(preset / "model.weights.h5") as f:
        f.visititems(lambda name, obj: values.append((name, obj[()])) if isinstance(obj, h5py.Dataset) else None)
    return values


def _assert_same_weights(a, b):
    wa, wb = _weights(a / "preset"), _weights(b / "preset")
    assert [n for n, _ in wa] == [n for n, _ in wb] and len(wa) > 5
    for (_, x), (_, y) in zip(wa, wb):
        np.testing.assert_array_equal(x, y)


def _log_epochs(out):
    with open(out / "log.csv") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


class Steps(keras.callbacks.Callback):
    """The optimizer's step count at each epoch's end, and the batch indices reported."""

    def __init__(self):
        super().__init__()
        self.iterations, self.batches = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)

    def on_epoch_end(self, epoch, logs=None):
        self.iterations.append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))


def test_epoch_shuffled_shifts_each_batch_by_seed_epoch_and_index_alone():
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=(100, 8, 8, 1)).astype("float32")
    y = np.arange(100, dtype="int32")
    plain = training.EpochShuffled(x, y, batch_size=32, seed=7)
    shifted = training.EpochShuffled(x, y, batch_size=32, seed=7, shift=1)
    again = training.EpochShuffled(x, y, batch_size=32, seed=7, shift=1)
    assert len(shifted) == 4
    (xp, yp), (xs, ys), (xa, ya) = plain[1], shifted[1], again[1]
    np.testing.assert_array_equal(yp, ys)  # the same order, labels untouched
    np.testing.assert_array_equal(xs, xa)  # the same draws in a fresh dataset (a resumed run)
    moved = [not np.array_equal(a, b) for a, b in zip(xp, xs)]
    assert 0 < sum(moved) < len(moved)  # offset (0, 0) has chance 1/9
    shifted.epoch = again.epoch = 1
    assert not np.array_equal(shifted[1][0], xs)
    np.testing.assert_array_equal(shifted[1][0], again[1][0])


def test_a_recipe_refuses_an_unknown_augmentation():
    with pytest.raises(ValueError, match=r"vit_digits: unknown `augment` \['flip'\]; allowed: shift"):
        dataclasses.replace(recipes.get("vit_digits"), augment={"flip": True, "shift": 1})


@pytest.mark.slow
def test_train_writes_log_plot_checkpoint_and_a_loadable_preset(tmp_path, capsys):
    recipe = tiny_recipe()
    steps = math.ceil(len(data_lib.load(recipe.data, **recipe.data_options).train[0]) / recipe.batch_size)
    counter = Steps()
    result = training.train(recipe, out=tmp_path, verbose=1, callbacks=[counter])
    # An epoch is ceil(N / batch) optimizer steps, and the progress bar says so.
    assert steps == 21 and counter.iterations == [steps, 2 * steps, 3 * steps]
    assert max(counter.batches) == steps - 1
    bar = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    shown = {(int(a), int(b)) for a, b in re.findall(r"(?<!Epoch )\b(\d+)/(\d+)\b", bar)}
    assert (steps, steps) in shown and all(a <= b == steps for a, b in shown), shown

    assert set(result["metrics"]) == {"accuracy", "loss"}
    assert result["metrics"]["accuracy"] > 0.3  # 10 classes: chance is 0.1
    for name in ("log.csv", "curves.png", "best.weights.h5", "result.json", "preset/metadata.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert _log_epochs(tmp_path) == [0, 1, 2]
    assert not (tmp_path / "backup").exists()  # deleted once the run's results are written
    m = presets.get_metadata(tmp_path / "preset")
    assert m["test_metrics"] == result["metrics"] and m["backend"] == BACKEND
    assert m["recipe"]["name"] == "activator_vit_digits" and result["examples_per_second"] > 0
    model = presets.load(tmp_path / "preset")
    assert presets.expected_output_error(model, m) < 1e-5
    assert json.loads((tmp_path / "result.json").read_text())["preset"] == str(tmp_path / "preset")
    assert presets.get_metadata(tmp_path) == m  # a run folder stands for its preset
    # A finished run is not trained over, unless asked.
    with pytest.raises(ValueError, match=r"holds a finished run .*overwrite=True \(glu-zoo train --overwrite\)"):
        training.train(recipe, out=tmp_path, verbose=0)


def test_backup_saves_when_its_interval_has_passed_and_after_the_last_epoch(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    now = [0.0]
    monkeypatch.setattr(training.Backup, "clock", staticmethod(lambda: now[0]))

    class Tick(keras.callbacks.Callback):  # each epoch "takes" 30 s
        def on_epoch_end(self, epoch, logs=None):
            now[0] += 30.0

    class Backed(keras.callbacks.Callback):  # the epochs that the backup holds, after each epoch
        def __init__(self, folder):
            super().__init__()
            self.folder, self.epochs = folder, []

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append((training.Backup.read(self.folder) or {}).get("epoch"))

    for interval, expected in ((50.0, [None, 2, 2, 4, 4, 6, 7]), (0.0, [1, 2, 3, 4, 5, 6, 7])):
        folder = tmp_path / f"every-{interval}"
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        backed = Backed(folder)
        model.fit(x, y, epochs=7, batch_size=8, verbose=0,
                  callbacks=[Tick(), training.Backup(folder, interval=interval, run={"n": 1}), backed])
        assert backed.epochs == expected
        assert sorted(p.name for p in folder.iterdir()) == ["epoch-00007.weights.h5", "training_metadata.json"]
        assert training.Backup.read(folder) == {"epoch": 7, "batch": 0, "weights": "epoch-00007.weights.h5",
                                                "run": {"n": 1}}
        training.delete_backup(folder)
        assert not folder.exists()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    result = training.train(resume_recipe(), out=out, verbose=0)
    return out, result


def _killed(script, out, **env):
    run = subprocess.run([sys.executable, "-c", script.replace("{tiny}", repr(TINY)), str(out)],
                         capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": BACKEND, **env})
    assert run.returncode == -9, run.stderr[-3000:]
    assert not (out / "result.json").exists()
    return training.Backup.read(out / "backup")


SCRIPT_HEAD = """
    import dataclasses, os, signal, sys
    import keras
    from glu_zoo import recipes, training
    recipe = dataclasses.replace(recipes.get("activator_vit_digits"), epochs=4, batch_size=431,
                                 model_overrides={tiny}, data_options={"normalize": "unit", "validation_size": 0.1})
"""

KILLED_AFTER_A_BACKUP = textwrap.dedent(SCRIPT_HEAD + """
    commit = training._write_atomically

    def commit_and_die(path, text):
        commit(path, text)
        if str(path).endswith("training_metadata.json") and '"epoch": 2,' in text:
            os.kill(os.getpid(), signal.SIGKILL)  # right after the backup of epoch 2, the last thing epoch 2 does

    training._write_atomically = commit_and_die
    training.train(recipe, out=sys.argv[1], verbose=0, backup_interval=0)
""")


@pytest.mark.slow
def test_a_run_killed_with_sigkill_after_a_backup_resumes_and_ends_as_an_uninterrupted_run(tmp_path, uninterrupted):
    whole, whole_result = uninterrupted
    backup = _killed(KILLED_AFTER_A_BACKUP, tmp_path)
    assert backup["epoch"] == 2
    assert _log_epochs(tmp_path) == [0, 1]  # the backup comes last: what its epochs wrote is all there
    resumed = training.train(resume_recipe(), out=tmp_path, verbose=0, backup_interval=0)
    assert _log_epochs(tmp_path) == [0, 1, 2, 3]
    assert resumed["metrics"] == whole_result["metrics"]
    _assert_same_weights(tmp_path, whole)
    assert not (tmp_path / "backup").exists()


KILLED_WHILE_SAVING = textwrap.dedent(SCRIPT_HEAD + """
    now = [0.0]
    training.Backup.clock = staticmethod(lambda: now[0])

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:  # epoch 0 "takes" 100 s: it is backed up; epochs 1 and 2 take no time: they are not
                now[0] += 100.0

    save_weights = keras.Model.save_weights

    def save_and_die(self, path, *args, **kwargs):
        save_weights(self, path, *args, **kwargs)
        if os.path.basename(str(path)) == "epoch-00004.weights.h5":  # the backup after the last epoch
            os.truncate(path, os.path.getsize(path) // 2)  # cut short, and never committed
            os.kill(os.getpid(), signal.SIGKILL)

    keras.Model.save_weights = save_and_die
    training.train(recipe, out=sys.argv[1], verbose=0, backup_interval=50, callbacks=[Clock()])
""")


@pytest.mark.slow
def test_a_run_killed_while_saving_replays_the_epochs_after_an_older_backup_and_ends_the_same(
        tmp_path, uninterrupted):
    whole, whole_result = uninterrupted
    backup = _killed(KILLED_WHILE_SAVING, tmp_path)
    assert backup["epoch"] == 1  # epochs 1-3 are replayed
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == [
        "epoch-00001.weights.h5", "epoch-00004.weights.h5", "training_metadata.json"]
    assert _log_epochs(tmp_path) == [0, 1, 2, 3]
    resumed = training.train(resume_recipe(), out=tmp_path, verbose=0, backup_interval=50)
    assert _log_epochs(tmp_path) == [0, 1, 2, 3]  # the replayed epochs are logged once
    assert resumed["metrics"] == whole_result["metrics"]
    _assert_same_weights(tmp_path, whole)


@pytest.mark.slow
def test_a_run_that_dies_after_its_last_epoch_resumes_without_training_again(tmp_path, monkeypatch, uninterrupted):
    whole, whole_result = uninterrupted

    class Died(Exception):
        pass

    def die(*args, **kwargs):
        raise Died

    with monkeypatch.context() as m:
        m.setattr(training.presets, "save", die)
        with pytest.raises(Died):
            training.train(resume_recipe(), out=tmp_path, verbose=0)
    assert training.Backup.read(tmp_path / "backup")["epoch"] == 4 and not (tmp_path / "result.json").exists()
    counter = Steps()
    resumed = training.train(resume_recipe(), out=tmp_path, verbose=0, callbacks=[counter])
    assert counter.iterations == [] and resumed["examples_per_second"] is None
    assert resumed["metrics"] == whole_result["metrics"]
    _assert_same_weights(tmp_path, whole)


@pytest.mark.slow
def test_without_validation_the_last_epoch_is_kept_and_without_matplotlib_no_plot(tmp_path, monkeypatch, capsys):
    (tmp_path / "result.json").write_text("{}")  # a finished run, trained over on request
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    result = training.train(tiny_recipe(epochs=2, data_options={"validation_size": 0.0}), out=tmp_path, verbose=0,
                            overwrite=True)
    assert not (tmp_path / "best.weights.h5").exists()
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and rows[0].get("val_accuracy", "NA") == "NA"
    assert result["metrics"]["accuracy"] > 0.2
    assert not (tmp_path / "curves.png").exists() and (tmp_path / "preset" / "metadata.json").is_file()
    err = capsys.readouterr().err
    assert "curves.png skipped: plotting needs matplotlib (pip install 'glu-zoo[plot]')" in err


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution.DataParallel runs on JAX")
def test_data_parallel_over_two_cpu_devices(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    run = subprocess.run([sys.executable, "-c", DATA_PARALLEL_SCRIPT.replace("{tiny}", repr(TINY)), str(tmp_path)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert out["devices"] == 2 and out["sharded_over"] == [2]
    assert out["accuracy"] > 0.2
    assert presets.get_metadata(tmp_path)["distribute"] == "data"


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"unknown `precision` 'float16'; allowed: float32, mixed_bfloat16"):
        training.train(tiny_recipe(), out=tmp_path, precision="float16")
    with pytest.raises(ValueError, match=r"unknown `distribute` 'model'"):
        training.train(tiny_recipe(), out=tmp_path, distribute="model")
    with pytest.raises(ValueError, match=r"`epochs` must be a positive integer; got 0"):
        training.train(tiny_recipe(), out=tmp_path, epochs=0)
    with pytest.raises(ValueError, match=r"`backup_interval` must be a number in \[0.0, inf\); got -1"):
        training.train(tiny_recipe(), out=tmp_path, backup_interval=-1)
    with pytest.raises(ValueError, match=r"`overwrite` must be True or False; got 'yes'"):
        training.train(tiny_recipe(), out=tmp_path, overwrite="yes")
    with pytest.raises(ValueError, match=r"unknown recipe 'nope'"):
        training.train("nope", out=tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"`out` .*file is a file; pass a folder"):
        training.train(tiny_recipe(), out=tmp_path / "file")
    with pytest.raises(ValueError, match=r"cannot make the run folder `out` .*file/run: "):
        training.train(tiny_recipe(), out=tmp_path / "file" / "run")
    if BACKEND != "jax":
        with pytest.raises(ValueError, match=r"distribute='data' needs the jax backend"):
            training.train(tiny_recipe(), out=tmp_path, distribute="data")


def test_an_interrupted_run_of_other_settings_is_not_resumed(tmp_path):
    (tmp_path / "backup").mkdir()
    other = {"recipe": tiny_recipe().to_dict(), "epochs": 5, "precision": "float32", "distribute": None}
    metadata = {"epoch": 2, "batch": 0, "weights": "epoch-00002.weights.h5", "run": other}
    (tmp_path / "backup" / "training_metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"holds an interrupted run of other settings .*'epochs': 5"):
        training.train(tiny_recipe(epochs=3), out=tmp_path, verbose=0)
    assert training.Backup.read(tmp_path / "backup") == metadata  # left as it was


def test_images_of_the_wrong_size_are_refused(tmp_path):
    recipe = tiny_recipe(data_options={"upsample": 2, "validation_size": 0.1})
    with pytest.raises(ValueError, match=r"training inputs: expected images of shape \(None, 8, 8, 1\); "
                                         r"got shape \(\d+, 16, 16, 1\)"):
        training.train(recipe, out=tmp_path, verbose=0)


LISTOPS_TINY = {"num_train": 64, "num_validation": 16, "num_test": 32, "max_depth": 4, "max_args": 4,
                "min_length": 5, "max_length": 40, "seed": 1}


@pytest.mark.slow
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
    assert np.isfinite(result["metrics"]["loss"])
    m = presets.get_metadata(tmp_path / "preset")
    expected = m["expected_output"]
    length = overrides["sequence_length"] or presets.FIXED_INPUT_LENGTH
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
