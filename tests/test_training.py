import contextlib
import csv
import dataclasses
import fcntl
import json
import math
import os
import pathlib
import re
import shutil
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
    return _h5_arrays(preset / "model.weights.h5")


def _h5_arrays(path):
    """(name, array) of every dataset in an HDF5 file: each one read whole."""
    import h5py

    values = []
    with h5py.File(path, "r") as f:
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


def test_epoch_shuffled_passes_and_unlabelled_batches():
    """`passes` makes an epoch that many orders of the data, each a permutation drawn from
    (seed, epoch, pass); without labels a batch is x alone."""
    x = np.arange(10, dtype="float32")[:, None]
    data = training.EpochShuffled(x, None, batch_size=4, seed=3, passes=3)
    assert len(data) == 8  # 30 rows in batches of 4
    rows = np.concatenate([data[i][:, 0] for i in range(len(data))])
    assert rows.shape == (30,)
    for p in range(3):
        assert sorted(rows[10 * p:10 * p + 10]) == list(range(10))  # each pass: every row once
    assert not np.array_equal(rows[:10], rows[10:20])
    again = training.EpochShuffled(x, None, batch_size=4, seed=3, passes=3)
    np.testing.assert_array_equal(np.concatenate([again[i][:, 0] for i in range(8)]), rows)
    data.epoch = 1
    assert not np.array_equal(np.concatenate([data[i][:, 0] for i in range(8)]), rows)


@pytest.mark.parametrize("metrics, reached", [
    ({"mle_synthetic": 0.96, "c2st_auc": 0.55, "copied_share": 0.0}, True),
    ({"mle_synthetic": 0.94, "c2st_auc": 0.55, "copied_share": 0.0}, False),  # below the target
    ({"mle_synthetic": 0.96, "c2st_auc": 0.61, "copied_share": 0.0}, False),  # above a limit
    ({"mle_synthetic": 0.96, "c2st_auc": 0.55, "copied_share": 0.01}, False),
    ({"mle_synthetic": 0.96, "c2st_auc": None, "copied_share": 0.0}, False),  # a limit not measured
    ({"mle_synthetic": float("nan"), "c2st_auc": 0.5, "copied_share": 0.0}, False),
])
def test_a_recipe_is_reached_at_its_target_and_within_its_limits(metrics, reached):
    recipe = recipes.get("rectable_wine")
    assert recipe.target == 0.95 and recipe.limits == {"c2st_auc": 0.60, "copied_share": 0.0}
    assert training._reached(recipe, metrics) is reached


def test_a_table_recipe_trains_a_generator_into_a_preset_that_evaluate_scores(tmp_path):
    """A table generator's recipe: the encoder fitted on the training split goes into the model's
    config, the model learns with fit (no labels, `passes_per_epoch` passes an epoch, warm-up, clipping,
    EMA), and the preset loads and is scored on a sampled table by `evaluate`."""
    recipe = dataclasses.replace(
        recipes.get("rectable_wine"), name="rectable_tiny_iris", architecture="rectable_tiny", model_overrides={},
        data="iris", epochs=2, passes_per_epoch=3, warmup_epochs=1, target=0.0, limits={"copied_share": 0.0},
        sample_options={"method": "euler", "steps": 4})
    result = training.train(recipe, out=tmp_path / "run", verbose=0)
    metrics = result["metrics"]
    assert set(metrics) >= {"loss", "shapes", "trends", "c2st_auc", "mle_synthetic", "copied_share"}
    assert result["reached"] == (metrics["copied_share"] == 0.0)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    model = presets.load(result["preset"])
    assert model.encoder.spec.target == "target" and model.encoder.classes is not None
    optimizer = training._optimizer(recipe, steps_per_epoch=3, epochs=2)
    assert optimizer.use_ema and optimizer.global_clipnorm == 1.0
    scored = training.evaluate(result["preset"])
    assert scored["metrics"].keys() == {k: v for k, v in metrics.items() if k != "loss"}.keys()
    assert scored["metrics"]["shapes"] == pytest.approx(metrics["shapes"], abs=1e-6)  # the same sample
    assert scored["examples"] == len(data_lib.tabular.load_table("iris").test)


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

    def no_constant(name):
        raise AssertionError(f"{name} is not JSON")

    run = {"n": 1, "target": float("inf")}  # no NaN or Infinity is written into JSON
    for interval, expected in ((50.0, [None, 2, 2, 4, 4, 6, 7]), (0.0, [1, 2, 3, 4, 5, 6, 7])):
        folder = tmp_path / f"every-{interval}"
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        backed = Backed(folder)
        model.fit(x, y, epochs=7, batch_size=8, verbose=0,
                  callbacks=[Tick(), training.Backup(folder, interval=interval, run=run), backed])
        assert backed.epochs == expected
        assert sorted(p.name for p in folder.iterdir()) == ["epoch-00007.weights.h5", "training_metadata.json"]
        expected_metadata = {"epoch": 7, "batch": 0, "weights": "epoch-00007.weights.h5",
                             "run": {"n": 1, "target": "Infinity"}}
        assert json.loads((folder / "training_metadata.json").read_text(), parse_constant=no_constant) \
            == expected_metadata
        assert training.Backup.read(folder) == expected_metadata
        training.delete_backup(folder)
        assert not folder.exists()


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """On JAX, a compilation cache for this module's runs: the resume tests
    build the same model many times, and each build compiled its train step
    anew (about 5 of the 7 s of a tiny run on 2 CPU cores; 1.4 s with the
    cache). A cached executable is the compiled one, so results are
    unchanged (the resumed runs are compared bit for bit with runs compiled
    afresh in subprocesses)."""
    if BACKEND != "jax":
        yield
        return
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    options = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
               "jax_persistent_cache_min_entry_size_bytes")
    saved = {name: getattr(jax.config, name) for name in options}
    for name, value in zip(options, (str(tmp_path_factory.mktemp("jax_cache")), 0.0, 0)):
        jax.config.update(name, value)
    compilation_cache.reset_cache()
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def _instrumented(tmp_path_factory, compile_cache):
    out = tmp_path_factory.mktemp("uninterrupted")
    snaps = Snapshots(out, tmp_path_factory.mktemp("write_points"))
    with snaps.hooked() as callback:
        result = training.train(resume_recipe(), out=out, verbose=0, backup_interval=0, callbacks=[callback])
    assert sorted(snaps.taken) == sorted(WRITE_POINTS)
    return out, result, snaps.taken


@pytest.fixture(scope="module")
def uninterrupted(_instrumented):
    """The run that the resume tests kill, run whole (its folder copied at
    each write point on the way: `write_points`; the copies only read it,
    and the SIGKILL tests, which run in subprocesses, compare with it)."""
    out, result, _ = _instrumented
    return out, result


@pytest.fixture(scope="module")
def write_points(_instrumented):
    """{write point: a copy of the run folder as a kill there leaves it}."""
    return _instrumented[2]


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
    strays = [tmp_path / "best.partial.weights.h5", tmp_path / "log.csv.partial", tmp_path / "result.json.partial",
              tmp_path / "backup" / "training_metadata.json.partial"]  # writes that did not finish
    for stray in strays:
        stray.write_bytes(b"\x89HDF\r\n")
    counter = Steps()
    resumed = training.train(resume_recipe(), out=tmp_path, verbose=0, callbacks=[counter])
    assert not any(stray.exists() for stray in strays)
    assert counter.iterations == [] and resumed["examples_per_second"] is None
    assert resumed["metrics"] == whole_result["metrics"]
    _assert_same_weights(tmp_path, whole)


# Every write of a run, and what a kill at that moment leaves on disk. The
# uninterrupted run's folder is copied at each of its write points (the last
# epoch's writes, the preset, result.json, the backup's deletion), and each
# copy is resumed: one run gives every point. A copy taken at the instant
# holds what SIGKILL leaves on disk (unlike a raised exception, nothing runs
# after it: no `finally`, no close that flushes a buffer); "during" cuts the
# file being written in half in the copy. The two SIGKILL tests above kill
# real processes. Each point maps to the epochs its backup holds after the
# kill (None: none), and whether result.json, the last file of a run, was
# written (the run is finished).
LAST = 3  # the in-fit points are in the last epoch (index 3): a resume replays one epoch
WRITE_POINTS = {
    "best.weights.h5 during": (LAST, False),  # the best epoch's weights, cut (the last epoch is the best one)
    "log.csv row cut": (LAST, False),  # best.weights.h5 is newer than the backup
    "backup weights during": (LAST, False),  # epoch-00004.weights.h5 cut, not committed
    "backup metadata during": (LAST, False),  # epoch-00004 whole, not committed; training_metadata.json.partial cut
    "backup metadata after": (LAST + 1, False),  # committed; the old epoch-00003.weights.h5 not yet removed
    # The preset is written in place, config.json, model.weights.h5, metadata.json in turn (until
    # result.json exists the run is not finished, and a resume writes the preset again, whole).
    "preset config.json during": (LAST + 1, False),
    "preset model.weights.h5 during": (LAST + 1, False),
    "preset metadata.json during": (LAST + 1, False),
    "result.json during": (LAST + 1, False),
    "result.json after": (LAST + 1, True),  # the backup not yet deleted
    "delete_backup during": (None, True),  # training_metadata.json removed, the rest not
}
# Left out, as the same state as a point above: "before" a file (the state "after" the write before it),
# and "after" the backup weights (whole, not committed: part of "backup metadata during").


class Snapshots:
    """Copies of a live run folder, named by write point."""

    def __init__(self, live, folder):
        self.live, self.folder, self.epoch, self.taken = live, folder, None, {}

    def take(self, point, cut=None, cut_last_row=False, unwritten=()):
        if point in self.taken:
            return
        copy = self.folder / f"{len(self.taken):02d}"
        shutil.copytree(self.live, copy)
        if cut is not None:  # a write stopped half-way
            target = copy / pathlib.Path(cut).relative_to(self.live)
            os.truncate(target, target.stat().st_size // 2)
        for path in unwritten:  # files written after the cut one
            (copy / pathlib.Path(path).relative_to(self.live)).unlink()
        if cut_last_row:
            data = (copy / "log.csv").read_bytes()
            row = data.rstrip(b"\r\n").rsplit(b"\n", 1)[1]
            (copy / "log.csv").write_bytes(data[: data.rindex(row) + len(row) // 2])
        self.taken[point] = copy

    @contextlib.contextmanager
    def hooked(self):
        """Copy the folder at each write point of the run in the block, which
        must take the callback yielded."""
        snaps, live = self, self.live
        save_weights, replace, save_preset = keras.Model.save_weights, os.replace, presets.save
        log_row, rmtree = keras.callbacks.CSVLogger.on_epoch_end, shutil.rmtree

        class Epoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                snaps.epoch = epoch

        def saving(self, filepath, *args, **kwargs):
            save_weights(self, filepath, *args, **kwargs)
            name = pathlib.Path(filepath).name
            if name.startswith("best") and snaps.epoch == LAST:
                snaps.take("best.weights.h5 during", cut=filepath)
            if name == f"epoch-{LAST + 1:05d}.weights.h5":
                snaps.take("backup weights during", cut=filepath)

        def logging(self, epoch, logs=None):
            log_row(self, epoch, logs)
            if epoch == LAST:
                snaps.take("log.csv row cut", cut_last_row=True)

        def replacing(src, dst, *args, **kwargs):
            name = pathlib.Path(dst).name
            commit = name == "training_metadata.json" and f'"epoch": {LAST + 1},' in pathlib.Path(src).read_text()
            point = "backup metadata" if commit else name if name == "result.json" else None
            if point:
                snaps.take(f"{point} during", cut=src)
            replace(src, dst, *args, **kwargs)
            if point:
                snaps.take(f"{point} after")

        def saving_preset(model, path, *args, **kwargs):
            assert not pathlib.Path(path).exists()
            saved = save_preset(model, path, *args, **kwargs)
            files = [pathlib.Path(path) / name for name in ("config.json", "model.weights.h5", "metadata.json")]
            for i, file in enumerate(files):
                snaps.take(f"preset {file.name} during", cut=file, unwritten=files[i + 1:])
            return saved

        def removing(path, *args, **kwargs):
            if pathlib.Path(path) == live / "backup" and (live / "result.json").exists():
                snaps.take("delete_backup during")
            return rmtree(path, *args, **kwargs)

        with pytest.MonkeyPatch.context() as m:
            m.setattr(keras.Model, "save_weights", saving)
            m.setattr(keras.callbacks.CSVLogger, "on_epoch_end", logging)
            m.setattr(os, "replace", replacing)
            m.setattr(presets, "save", saving_preset)
            m.setattr(shutil, "rmtree", removing)
            yield Epoch()


def _assert_whole(out):
    """What a resume reads is whole, whatever the moment of the kill: the
    backup's metadata parses and names a weights file that reads,
    best.weights.h5 reads, result.json parses."""
    if (out / "backup" / "training_metadata.json").exists():
        backup = json.loads((out / "backup" / "training_metadata.json").read_text())
        assert len(_h5_arrays(out / "backup" / backup["weights"])) > 5
    if (out / "best.weights.h5").exists():
        assert len(_h5_arrays(out / "best.weights.h5")) > 5
    if (out / "result.json").exists():
        json.loads((out / "result.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("point", list(WRITE_POINTS))
def test_a_run_killed_at_any_write_point_resumes_and_ends_as_an_uninterrupted_run(
        point, write_points, uninterrupted, tmp_path):
    whole, whole_result = uninterrupted
    out = tmp_path / "run"
    shutil.copytree(write_points[point], out)
    _assert_whole(out)
    backed_up, finished = WRITE_POINTS[point]
    backup = training.Backup.read(out / "backup")
    assert (backup and backup["epoch"]) == backed_up and (out / "result.json").exists() == finished
    counter = Steps()
    if finished:  # the second train is refused, and removes what is left of the backup
        with pytest.raises(ValueError, match=r"holds a finished run"):
            training.train(resume_recipe(), out=out, verbose=0, backup_interval=0, callbacks=[counter])
        assert json.loads((out / "result.json").read_text())["metrics"] == whole_result["metrics"]
    else:
        resumed = training.train(resume_recipe(), out=out, verbose=0, backup_interval=0, callbacks=[counter])
        assert resumed["metrics"] == whole_result["metrics"]
        assert len(counter.iterations) == 4 - backed_up  # the epochs after the backup, no more
    _assert_same_weights(out, whole)
    assert _log_epochs(out) == [0, 1, 2, 3]
    assert sorted(p.name for p in out.iterdir()) == [".lock", "best.weights.h5", "curves.png", "log.csv", "preset",
                                                    "result.json"]
    assert sorted(p.name for p in (out / "preset").iterdir()) == ["config.json", "metadata.json", "model.weights.h5"]
    assert presets.get_metadata(out)["test_metrics"] == whole_result["metrics"]


@pytest.mark.slow
def test_a_backup_without_its_best_weights_trains_afresh(write_points, uninterrupted, tmp_path, capsys):
    """best.weights.h5 is written before the epoch's backup, so no kill
    leaves a backup without it; a folder that lost it cannot restore the best
    epoch's weights, so the run starts again (and ends the same)."""
    whole, whole_result = uninterrupted
    out = tmp_path / "run"
    shutil.copytree(write_points["log.csv row cut"], out)
    (out / "best.weights.h5").unlink()
    counter = Steps()
    resumed = training.train(resume_recipe(), out=out, verbose=0, backup_interval=0, callbacks=[counter])
    assert "holds a backup after epoch 3, but best.weights.h5 (the best epoch's weights) is missing or " \
           "unreadable; training afresh." in capsys.readouterr().err
    assert len(counter.iterations) == 4
    assert resumed["metrics"] == whole_result["metrics"]
    _assert_same_weights(out, whole)
    assert _log_epochs(out) == [0, 1, 2, 3]


@pytest.mark.slow
def test_nan_metrics_are_valid_json_and_a_second_training_into_the_folder_is_refused(tmp_path, monkeypatch,
                                                                                       compile_cache):
    evaluate = keras.Model.evaluate

    def diverged(self, *args, **kwargs):  # as if the loss had diverged
        return {**evaluate(self, *args, **kwargs), "loss": float("nan")}

    class SecondTraining(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            with pytest.raises(ValueError) as refused:
                training.train(resume_recipe(), out=tmp_path, verbose=0)
            refusals.append(str(refused.value))

    def no_constant(name):
        raise AssertionError(f"{name} is not JSON")

    refusals = []
    monkeypatch.setattr(keras.Model, "evaluate", diverged)
    result = training.train(resume_recipe(), out=tmp_path, verbose=0, callbacks=[SecondTraining()])
    assert refusals == [f"train: the run folder `out` {tmp_path} is in use by another training (process "
                        f"{os.getpid()}); wait for it to end or pass another `out`."]
    assert math.isnan(result["metrics"]["loss"]) and result["metrics"]["accuracy"] > 0
    written = json.loads((tmp_path / "result.json").read_text(), parse_constant=no_constant)
    assert written["metrics"] == {"accuracy": result["metrics"]["accuracy"], "loss": "NaN"}
    metadata = json.loads((tmp_path / "preset" / "metadata.json").read_text(), parse_constant=no_constant)
    assert metadata["test_metrics"]["loss"] == "NaN"
    assert _lock_is_free(tmp_path)  # released when train returns


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


MODEL_PARALLEL_SCRIPT = textwrap.dedent("""
    import dataclasses, json, sys
    import jax, keras, numpy as np
    from glu_zoo import recipes, training
    from glu_zoo.models import build, architecture_class

    rng = np.random.default_rng(0)
    mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"], keras.distribution.list_devices())
    report = {"devices": len(jax.devices())}
    for name, overrides, x in [
            ("glu_transformer_tiny", {"num_layers": 1, "hidden_dim": 32, "model_dim": 16, "num_heads": 2},
             {"encoder_token_ids": rng.integers(4, 384, (4, 12)).astype("int32"),
              "encoder_padding_mask": np.ones((4, 12), bool),
              "decoder_token_ids": rng.integers(4, 384, (4, 6)).astype("int32"),
              "decoder_padding_mask": np.ones((4, 6), bool)}),
            ("mosaic_bert_tiny", {"num_layers": 1, "dropout": 0.0},
             {"token_ids": rng.integers(4, 384, (4, 12)).astype("int32"), "padding_mask": np.ones((4, 12), bool)})]:
        y = rng.integers(1, 384, x[list(x)[-2]].shape).astype("int32")
        losses, logits = [], []
        for parallel in (False, True):
            keras.utils.set_random_seed(0)
            distribution = keras.distribution.ModelParallel(
                layout_map=architecture_class(name).get_layout_map(mesh), batch_dim_name="batch")
            with distribution.scope() if parallel else keras.distribution.DataParallel(
                    devices=keras.distribution.list_devices()[:1]).scope():
                model = build(name, **overrides)
                model.compile(optimizer=keras.optimizers.SGD(0.1), loss=model.classification_loss())
                logits.append(np.asarray(model.predict_on_batch(x)))
                losses.append([float(model.train_on_batch(x, y)) for _ in range(2)])
                kernel = [v for v in model.weights if v.path.endswith("kernel_in")][0]
                spec = tuple(kernel.value.sharding.spec) if parallel else None
        report[name] = {"logits": float(np.abs(logits[0] - logits[1]).max()), "losses": losses,
                        "spec": [str(a) for a in spec]}
    recipe = dataclasses.replace(
        recipes.get("glu_transformer_swiglu_pydoc"), epochs=1, batch_size=16,
        data_options={"source": "pydoc", "input_length": 32, "train_size": 32},
        model_overrides={"ffn": "swiglu", "hidden_dim": 32, "num_layers": 1, "model_dim": 16, "num_heads": 2})
    result = training.train(recipe, out=sys.argv[1], distribute="model", verbose=0)
    report["trained_loss"] = result["metrics"]["loss"]
    print("RESULT", json.dumps(report))
""")


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution.ModelParallel runs on JAX")
def test_model_parallel_over_two_cpu_devices_equals_one_device(tmp_path):
    """GLUTransformer and MosaicBERT sharded (FFN hidden axis, heads) over a (batch 1, model 2) mesh give the
    single device's logits and losses over two SGD steps; `train(distribute="model")` runs a recipe."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    run = subprocess.run([sys.executable, "-c", MODEL_PARALLEL_SCRIPT, str(tmp_path)], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert out["devices"] == 2
    for name in ("glu_transformer_tiny", "mosaic_bert_tiny"):
        assert out[name]["spec"] == ["None", "model"]  # kernel_in's hidden axis over the model axis
        assert out[name]["logits"] < 1e-5
        np.testing.assert_allclose(out[name]["losses"][1], out[name]["losses"][0], rtol=1e-5)
    assert np.isfinite(out["trained_loss"]) and presets.get_metadata(tmp_path / "preset")["distribute"] == "model"


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"unknown `precision` 'float16'; allowed: float32, mixed_bfloat16"):
        training.train(tiny_recipe(), out=tmp_path, precision="float16")
    with pytest.raises(ValueError, match=r"unknown `distribute` 'pipeline'; allowed: None, 'data', 'model'"):
        training.train(tiny_recipe(), out=tmp_path, distribute="pipeline")
    if BACKEND == "jax":  # a model without a layout map
        with pytest.raises(ValueError, match=r"distribute='model' needs a model with a layout map \(GLUTransformer, "
                                             r"MosaicBERT\); activator_vit_digits \(ActivatorViT\) has none"):
            training.train(tiny_recipe(), out=tmp_path / "model", distribute="model")
    else:
        with pytest.raises(ValueError, match=rf"distribute='model' needs the jax backend .*'{BACKEND}'"):
            training.train(tiny_recipe(), out=tmp_path / "model", distribute="model")
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


def _lock_is_free(out):
    with open(out / ".lock") as f:  # another open file description: flock conflicts even in this process
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
    return True


def test_a_folder_in_use_by_another_training_is_refused_and_the_lock_is_released_on_errors(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "w") as held:  # another training's lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        with pytest.raises(ValueError, match=re.escape(
                f"train: the run folder `out` {out} is in use by another training (process 4242); wait for it to "
                f"end or pass another `out`.")):
            training.train(tiny_recipe(), out=out, verbose=0)
        assert (out / ".lock").read_text() == "4242\n" and not (out / "backup").exists()  # nothing touched
    (out / "backup").mkdir()
    (out / "backup" / "training_metadata.json").write_text("")  # an error inside train, under the lock
    with pytest.raises(ValueError, match=r"training_metadata.json is not a backup"):
        training.train(tiny_recipe(), out=out, verbose=0)
    assert _lock_is_free(out) and (out / ".lock").read_text() == f"{os.getpid()}\n"  # it held it, and let go


@pytest.mark.parametrize("text, why", [
    ("", r"not readable JSON: Expecting value"),  # a kill while Keras's BackupAndRestore wrote it
    ('{"epoch": 2, "batch": 0}', r"'weights' must name an epoch-NNNNN.weights.h5 file; got None"),  # Keras's
    ("[]", r"expected a JSON object; got list"),
    ("\udcff", r"not readable JSON: 'utf-8' codec can't decode"),
    ('{"epoch": 2, "weights": "../../../model.weights.h5", "run": {}}', r"'weights' must name an epoch-NNNNN"),
    ('{"epoch": 0, "weights": "epoch-00000.weights.h5", "run": {}}', r"'epoch' must be a positive integer; got 0"),
    ('{"epoch": 2, "weights": "epoch-00002.weights.h5"}', r"it has no 'run'"),
])
def test_backup_metadata_that_cannot_be_resumed_is_a_named_error(tmp_path, text, why):
    path = tmp_path / "backup" / "training_metadata.json"
    path.parent.mkdir()
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ValueError, match=rf"^train: {re.escape(str(path))} is not a backup that this glu_zoo can "
                                         rf"resume \({why}.*\); pass overwrite=True \(glu-zoo train --overwrite\) to "
                                         rf"train afresh over it, or another `out`.$"):
        training.train(tiny_recipe(), out=tmp_path, verbose=0)
    assert path.read_bytes() == text.encode("utf-8", "surrogateescape")  # left for the user to decide


def test_backup_weights_that_are_missing_or_do_not_load_are_a_named_error(tmp_path):
    import h5py

    recipe = tiny_recipe(epochs=3)
    run = {"recipe": recipe.to_dict(), "epochs": 3, "precision": "float32", "distribute": None}
    (tmp_path / "backup").mkdir()
    metadata = tmp_path / "backup" / "training_metadata.json"
    metadata.write_text(json.dumps({"epoch": 2, "batch": 0, "weights": "epoch-00002.weights.h5", "run": run}))
    (tmp_path / "log.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.1,2.3,0.1,2.3\n"
                                      "1,0.1,2.3,0.1,2.3\n")
    with h5py.File(tmp_path / "best.weights.h5", "w") as f:  # whole (what it holds is not read before the end)
        f["w"] = np.zeros(3)
    with pytest.raises(ValueError, match=rf"{re.escape(str(metadata))} is not a backup .*\(the weights it names, "
                                         rf".*epoch-00002.weights.h5, are missing\); pass overwrite=True"):
        training.train(recipe, out=tmp_path, verbose=0)
    (tmp_path / "backup" / "epoch-00002.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match=rf"{re.escape(str(metadata))} is not a backup .*\(its weights "
                                         rf".*epoch-00002.weights.h5 do not load: .*\); pass overwrite=True"):
        training.train(recipe, out=tmp_path, verbose=0)


def test_a_resume_needs_the_log_of_the_backed_up_epochs_and_the_best_weights(tmp_path):
    import h5py

    header = "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
    rows = [f"{e},0.{e}5,2.{e},0.{e}4,2.{e}1\r\n" for e in range(5)]
    log, best = tmp_path / "log.csv", tmp_path / "best.weights.h5"
    with h5py.File(best, "w") as f:
        f["dense/kernel"] = np.ones((3, 2))
    log.write_text(header + "".join(rows[:4]) + rows[4][:7], newline="")  # epoch 4's row cut by a kill
    assert training._resumable(tmp_path, 3, validation=True) is None
    assert log.read_bytes().decode() == header + "".join(rows[:3])  # what the replayed epochs will log again
    assert training._best_so_far(log, "val_accuracy") == 0.24
    log.write_text(header + rows[0] + rows[2], newline="")
    assert training._resumable(tmp_path, 3, validation=False) == "log.csv holds the epochs [0, 2], not each of 0-2 once"
    log.write_text(header + rows[0] + rows[1] + rows[1] + rows[2], newline="")
    assert "not each of 0-2 once" in training._resumable(tmp_path, 3, validation=False)
    log.unlink()
    assert training._resumable(tmp_path, 3, validation=False) == "log.csv is missing or unreadable"
    log.write_text(header + "".join(rows[:3]), newline="")
    os.truncate(best, best.stat().st_size // 2)
    assert training._resumable(tmp_path, 3, validation=False) is None  # without validation, no best weights
    assert "best.weights.h5 (the best epoch's weights) is missing or unreadable" in training._resumable(
        tmp_path, 3, validation=True)


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


@pytest.mark.slow
def test_a_language_model_recipe_trains_on_named_inputs_into_a_preset(tmp_path):
    """A span-corruption recipe: dict inputs through EpochShuffled and fit, padding ignored by the loss,
    the best epoch chosen by the lowest validation loss (metric_mode "min"), and a preset of token ids."""
    recipe = dataclasses.replace(
        recipes.get("glu_transformer_swiglu_pydoc"), epochs=2, batch_size=16,
        data_options={"source": "pydoc", "input_length": 32, "train_size": 48},
        model_overrides={"ffn": "swiglu", "hidden_dim": 32, "num_layers": 1, "model_dim": 16, "num_heads": 2},
        target=100.0)
    result = training.train(recipe, out=tmp_path, verbose=0)
    assert result["reached"] and result["metric_mode"] == "min"
    assert set(result["metrics"]) == {"loss"} and 0 < result["metrics"]["loss"] < 10.0
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert training._best_so_far(tmp_path / "log.csv", "val_loss", "min") == min(float(r["val_loss"]) for r in rows)
    expected = presets.get_metadata(tmp_path / "preset")["expected_output"]
    assert (expected["input_dtype"], expected["input_high"], expected["input_shape"]) == ("int32", 384, [16])
    evaluated = training.evaluate(tmp_path / "preset")
    test_rows = len(data_lib.load(recipe.data, **recipe.data_options).test[1])
    assert evaluated["expected_output_error"] < 1e-5 and evaluated["examples"] == test_rows
    assert evaluated["metrics"]["loss"] == pytest.approx(result["metrics"]["loss"], rel=1e-5)
    for recipe_metrics, reached in (({"loss": 2.0}, True), ({"loss": 2.3}, False), ({"loss": float("nan")}, False)):
        assert training._reached(dataclasses.replace(recipe, target=2.2), recipe_metrics) is reached
