"""The one place that turns a recipe into `model.fit`, and a trained model into a preset.

    result = glu_zoo.training.train("activator_vit_digits", out="runs/act")
    result["metrics"]["accuracy"], result["preset"]

A run writes into `out`: `backup/` (the training state, saved at an epoch's
end at most every `backup_interval` seconds and after the last epoch),
`best.weights.h5` (best validation accuracy), `log.csv`, `curves.png` (with
matplotlib, the `plot` extra), `preset/` and, last, `result.json`, which
marks the run finished: a folder that holds one is not trained over unless
`overwrite=True`.

A run killed at any point, even by SIGKILL in the middle of a file, resumes
from its last backup and ends with the weights and metrics of an
uninterrupted run: every file that a resume reads is replaced atomically
(written beside as `*.partial`, flushed to disk, renamed over), the backup is
committed by its metadata file alone, and whatever a kill left half-done
(a `*.partial` file, an uncommitted backup, a cut last row of the log, a
half-written preset) is removed or rewritten. Only one training at a time
uses a folder: `train` holds an exclusive lock on `out/.lock` (released by
the kernel when the process ends, however it ends). All JSON is written with
`presets.dump_json` (a NaN metric is the string "NaN", never a bare NaN).
"""

import contextlib
import csv
import glob
import io
import json
import math
import os
import pathlib
import re
import shutil
import sys
import time

try:
    import fcntl
except ImportError:  # not POSIX (Windows): runs are not locked
    fcntl = None

import keras
import numpy as np

from glu_zoo import data as data_lib
from glu_zoo import models, presets
from glu_zoo import recipes as recipes_lib
from glu_zoo.layers.checks import check_bool, check_number
from glu_zoo.plotting import pyplot

PRECISIONS = ("float32", "mixed_bfloat16")
STEPS_PER_EXECUTION = 16
DISTRIBUTIONS = (None, "data", "model")
BACKUP_INTERVAL = 60.0  # seconds
LOCK = ".lock"
PARTIAL = ".partial"  # the suffix of a file being written (".partial.weights.h5" for weights)


def _rows(x):
    """The number of examples of an array, or of a dict of arrays (a model with named inputs)."""
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def _take(x, rows):
    return {key: value[rows] for key, value in x.items()} if isinstance(x, dict) else x[rows]


class EpochShuffled(keras.utils.PyDataset):
    """Batches of (x, y) in an order fixed by (seed, epoch) alone, so that a
    resumed run sees the same batches as an uninterrupted one.
    `drop_remainder` drops the last, smaller batch (data parallel training
    needs batches that split evenly over the devices). `shift` > 0 moves each
    image by a random whole-pixel offset in [-shift, shift] per axis, drawn
    from (seed, epoch, batch) alone (`data.random_shift`). `passes` > 1
    makes an epoch that many passes over the data, each in its own order
    (the batches run on across passes). `y` None: batches of x alone (a
    generator's training data). `x` may be a dict of arrays (named inputs)."""

    def __init__(self, x, y, batch_size, seed, drop_remainder=False, shift=0, passes=1):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.drop_remainder, self.shift, self.passes = drop_remainder, shift, passes
        self.epoch = 0

    def __len__(self):
        rows = _rows(self.x) * self.passes
        if self.drop_remainder:
            return rows // self.batch_size
        return math.ceil(rows / self.batch_size)

    def _order(self):
        seeds = [[self.seed, self.epoch]] if self.passes == 1 else [[self.seed, self.epoch, p]
                                                                    for p in range(self.passes)]
        return np.concatenate([np.random.default_rng(s).permutation(_rows(self.x)) for s in seeds])

    def __getitem__(self, index):
        take = self._order()[index * self.batch_size : (index + 1) * self.batch_size]
        x = _take(self.x, take)
        if self.shift:
            x = data_lib.random_shift(x, self.shift, np.random.default_rng([self.seed, self.epoch, index]))
        return x if self.y is None else (x, _take(self.y, take))


class _SetEpoch(keras.callbacks.Callback):
    """Makes an epoch a function of (seed, epoch) alone: the data order and the
    random streams of dropout. BackupAndRestore saves weights and optimizer,
    not the seed generators' states nor torch's global generator (which
    Keras's unseeded dropout uses on torch), so both restart at each epoch
    from values fixed by the epoch."""

    def __init__(self, dataset, seed):
        super().__init__()
        self.dataset, self.seed = dataset, seed

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.epoch = epoch
        if keras.backend.backend() == "torch":
            # Not keras.utils.set_random_seed: on TensorFlow a new global seed
            # makes the compiled train function retrace at every epoch.
            import torch

            torch.manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        for state in self.model.non_trainable_variables:
            if state.name == "seed_generator_state":
                seed = keras.ops.convert_to_numpy(state.value)[0]
                state.assign(np.array([seed, epoch << 20], dtype=keras.backend.standardize_dtype(state.dtype)))


class Throughput(keras.callbacks.Callback):
    """Training examples per second of each epoch (training batches only).

    Async-safe: Keras then calls `on_train_batch_end` off the training loop,
    once the batch's logs are computed, so the loop is not made to wait."""

    async_safe = True

    def __init__(self, num_examples):
        super().__init__()
        self.num_examples = num_examples
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.per_epoch.append(self.num_examples / (self._last - self._start))

    def examples_per_second(self):
        """Median over epochs, leaving out the first (compilation) when there
        are others; None if no epoch ran (a run resumed after its last epoch)."""
        rates = self.per_epoch[1:] or self.per_epoch
        return float(np.median(rates)) if rates else None


def _write_atomically(path, text):
    """`path` holds the old text or the new one, whenever the process dies."""
    partial = f"{path}{PARTIAL}"
    with open(partial, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def _fsync(path):
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _save_weights_atomically(model, path):
    """`model.save_weights(path)`, but `path` holds the old weights or the
    new ones whenever the process dies: written beside (Keras wants the name
    to end in .weights.h5: `best.partial.weights.h5`), then renamed over."""
    path = str(path)
    partial = path[: -len(".weights.h5")] + PARTIAL + ".weights.h5"
    model.save_weights(partial, overwrite=True)
    _fsync(partial)
    os.replace(partial, path)


def _remove_partials(folder):
    """Remove what writes that did not finish left in `folder` (`*.partial`, `*.partial.weights.h5`)."""
    for pattern in (f"*{PARTIAL}", f"*{PARTIAL}.weights.h5"):
        for path in glob.glob(os.path.join(glob.escape(str(folder)), pattern)):
            os.remove(path)


def _readable_weights(path):
    """Whether `path` is a whole weights file: HDF5 whose every array reads."""
    import h5py

    def read(name, obj):
        if isinstance(obj, h5py.Dataset):
            obj[()]

    try:
        with h5py.File(path, "r") as f:
            f.visititems(read)
        return True
    except (OSError, ValueError, KeyError, RuntimeError):
        return False


class Backup(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore`, saving less often and atomically.

    It saves at an epoch's end only when `interval` seconds have passed since
    the last save or the start (0: every epoch), and always after the last
    epoch. A killed run loses at most `interval` seconds of work: on resume it
    replays the epochs after its last backup, which ends bit-identical to an
    uninterrupted run when an epoch is a function of (weights, optimizer
    state, epoch) alone (`EpochShuffled`, `_SetEpoch`).

    Each save writes a new weights file, then replaces
    `training_metadata.json`, which names it (with the epoch and `run`, a
    description of the run that `train` compares before resuming); the old
    file is removed only then. Whenever the process dies, the metadata names
    a complete file, and a weights file it does not name is an unfinished
    save (removed at the next start). The backup outlives `fit` (`delete_checkpoint=False`):
    `train` deletes it with `delete_backup` once the run's results are
    written, so that a run killed after its last epoch resumes without
    training again.

    Example: `model.fit(..., callbacks=[Backup("run/backup", interval=60)])`.
    """

    async_safe = True  # its batch hook saves nothing with save_freq="epoch"
    clock = staticmethod(time.monotonic)
    METADATA = "training_metadata.json"

    def __init__(self, backup_dir, interval=BACKUP_INTERVAL, run=None):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.interval = check_number("interval", interval, "Backup", low=0.0, low_open=False)
        self.run = run
        self._saved_at = None

    @classmethod
    def read(cls, backup_dir):
        """The metadata of the backup in `backup_dir`: a dict with `epoch`
        (the epochs it holds), `weights` (its file) and `run`; None if there
        is no backup. Metadata that is not such a dict (unreadable, cut, of
        another format) is a ValueError naming the file."""
        path = os.path.join(backup_dir, cls.METADATA)
        if not os.path.lexists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                metadata = json.load(f)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise _not_a_backup(path, f"not readable JSON: {error}") from None
        if not isinstance(metadata, dict):
            raise _not_a_backup(path, f"expected a JSON object; got {type(metadata).__name__}")
        epoch, weights = metadata.get("epoch"), metadata.get("weights")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise _not_a_backup(path, f"'epoch' must be a positive integer; got {epoch!r}")
        if not (isinstance(weights, str) and re.fullmatch(r"epoch-\d{5,}\.weights\.h5", weights)):
            raise _not_a_backup(path, f"'weights' must name an epoch-NNNNN.weights.h5 file; got {weights!r}")
        if "run" not in metadata:
            raise _not_a_backup(path, "it has no 'run' (the settings of the run it belongs to)")
        return metadata

    def on_train_begin(self, logs=None):
        metadata = self.read(self.backup_dir)
        if os.path.isdir(self.backup_dir):
            _remove_partials(self.backup_dir)  # a metadata write that did not finish
        if metadata is not None:
            self._weights_path = os.path.join(self.backup_dir, metadata["weights"])
            if not os.path.isfile(self._weights_path):
                raise _not_a_backup(self._training_metadata_path, f"the weights it names, {self._weights_path}, "
                                    f"are missing")
            self._remove_other_weights(keep=metadata["weights"])  # a save that did not finish
        try:
            super().on_train_begin(logs)  # loads the weights and optimizer state, then the epoch
        except (OSError, ValueError) as error:
            raise _not_a_backup(self._training_metadata_path,
                                f"its weights {self._weights_path} do not load: {error}") from None
        self._saved_at = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        last = self._current_epoch >= self.params["epochs"]
        if last or self.clock() - self._saved_at >= self.interval:
            self._save_model()
            self._saved_at = self.clock()

    def _save_model(self):
        name = f"epoch-{self._current_epoch:05d}.weights.h5"
        path = os.path.join(self.backup_dir, name)
        os.makedirs(self.backup_dir, exist_ok=True)
        self.model.save_weights(path, overwrite=True)
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
        metadata = {"epoch": self._current_epoch, "batch": 0, "weights": name, "run": self.run}
        _write_atomically(self._training_metadata_path, presets.dump_json(metadata))  # the commit
        self._weights_path = path
        self._remove_other_weights(keep=name)

    def _remove_other_weights(self, keep):
        for path in glob.glob(os.path.join(glob.escape(self.backup_dir), "*.weights.h5")):
            if os.path.basename(path) != keep:
                os.remove(path)


def _not_a_backup(path, why):
    return ValueError(
        f"train: {path} is not a backup that this glu_zoo can resume ({why}); pass overwrite=True "
        f"(glu-zoo train --overwrite) to train afresh over it, or another `out`."
    )


def delete_backup(backup_dir):
    """Delete a `Backup` folder: its metadata first (from then on there is no
    backup to resume, whenever the process dies), then the rest."""
    backup_dir = pathlib.Path(backup_dir)
    (backup_dir / Backup.METADATA).unlink(missing_ok=True)
    shutil.rmtree(backup_dir, ignore_errors=True)


class _BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint of the best epoch's weights (save_best_only,
    save_weights_only, save_freq="epoch", a path without placeholders),
    written atomically: whenever the process dies, the file holds the old
    best weights or the new ones, never a part.

    Async-safe: its batch hook saves nothing with save_freq="epoch", so it
    need not stop Keras's asynchronous dispatch of batch callbacks."""

    async_safe = True

    def _save_model(self, epoch, batch, logs):
        if self._should_save_model(epoch, batch, logs, self.filepath):
            _save_weights_atomically(self.model, self.filepath)


class _Callbacks(keras.callbacks.CallbackList):
    """Keras's CallbackList, with the index of a training batch's end clamped
    to the epoch's last step. With `steps_per_execution` k, Keras's
    EpochIterator reports the end of each execution as its first step + k - 1,
    also for an epoch's last execution, which runs fewer steps: on a 23-step
    epoch with k = 16, the progress bar (which shows index + 1) said 32/23."""

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(min(batch, self.params["steps"] - 1), logs)


def _optimizer(recipe, steps_per_epoch, epochs):
    lr = recipe.learning_rate
    warmup = recipe.warmup_epochs * steps_per_epoch
    if recipe.schedule == "cosine" or warmup:
        # Linear warm-up to lr over `warmup` steps, then cosine decay to 0
        # ("cosine") or lr kept ("constant": alpha 1 makes the decay a no-op).
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else lr,
            decay_steps=max(1, epochs * steps_per_epoch - warmup),
            alpha=0.0 if recipe.schedule == "cosine" else 1.0,
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    options = {}
    if recipe.clipnorm:
        options["global_clipnorm"] = recipe.clipnorm
    if recipe.ema_momentum:
        options.update(use_ema=True, ema_momentum=recipe.ema_momentum)
    if recipe.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(lr, weight_decay=recipe.weight_decay, **options)
        if recipe.no_weight_decay:
            optimizer.exclude_from_weight_decay(var_names=list(recipe.no_weight_decay))
        return optimizer
    if recipe.ema_momentum:
        from glu_zoo.models.rectable import EMAWarmupAdam  # the EMA with torch_ema's warm-up

        return EMAWarmupAdam(lr, **options)
    return keras.optimizers.Adam(lr, **options)


def _compile(model, optimizer=None, classify=True):
    # XLA on JAX and TensorFlow. On torch, jit_compile=True means torch.compile
    # of Keras's train step, measured on the digits recipes (2-core CPU): the
    # first epoch takes 115-210 s (inductor; 139 s with the aot_eager
    # backend: dynamo tracing Keras's layer machinery is the cost) against
    # 0.6-0.8 s eager, and later epochs are only 15-25% faster (results as
    # eager's), so a 60-epoch recipe would break even after ~1,000 epochs.
    xla = keras.backend.backend() != "torch"
    # A classifier may bring its own loss (GRUSVM's L2-SVM: `classification_loss()`) and
    # metrics (`training_metrics()`: a language model's token loss ignores padding); a
    # generator (RecTable) brings its own through compute_loss.
    own_loss = getattr(model, "classification_loss", None)
    model.compile(
        optimizer=optimizer or "adam",
        loss=(own_loss() if own_loss else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        if classify else None,
        metrics=(getattr(model, "training_metrics", lambda: ["accuracy"])()) if classify else None,
        jit_compile=xla,
        # Several steps per call: one sync of the logs and one round of batch
        # callbacks per 16 steps. Keras on torch allows 1 only.
        steps_per_execution=STEPS_PER_EXECUTION if xla else 1,
    )


def _keep_log_rows(log_path, epochs):
    """Keep the whole rows of the first `epochs` epochs in a CSV log (a
    resumed run replays the epochs after its backup, and logs them again;
    a kill may have cut the last row). Returns the epochs of the rows kept,
    or None if there is no readable log."""
    try:
        with open(log_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames
            rows = [r for r in reader if None not in r and None not in r.values() and r["epoch"].isdigit()
                    and int(r["epoch"]) < epochs]
    except (OSError, UnicodeDecodeError, csv.Error, KeyError):
        return None
    if not fields:
        return None
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    _write_atomically(log_path, text.getvalue())
    return [int(r["epoch"]) for r in rows]


def _best_so_far(log_path, monitor, mode="max"):
    """The best value of `monitor` that ModelCheckpoint (mode "max" or
    "min") held after the logged epochs: the first, then each one greater
    (smaller) than the best (so a NaN first value stays the best, as in Keras)."""
    with open(log_path, newline="") as f:
        values = [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor)]
    best = None
    for value in values:
        if best is None or (value > best if mode == "max" else value < best):
            best = value
    return best


def plot_curves(log_path, png_path, metric="accuracy"):
    """Loss and metric against epoch, training and validation, from a CSV log.

    Returns `png_path`, or None without matplotlib (the `plot` extra), after
    one line on stderr that says so."""
    try:
        plt = pyplot("plot_curves")
    except ImportError:
        print(f"glu_zoo: {pathlib.Path(png_path).name} skipped: plotting needs matplotlib "
              f"(pip install 'glu-zoo[plot]').", file=sys.stderr)
        return None

    with open(log_path) as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", metric)):
        for prefix, label in (("", "train"), ("val_", "validation")):
            if rows and rows[0].get(prefix + key, "NA") != "NA":
                ax.plot(epochs, [float(r[prefix + key]) for r in rows], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


@contextlib.contextmanager
def _precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"train: unknown `precision` {precision!r}; allowed: {', '.join(PRECISIONS)}.")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _distribution(distribute, architecture=None):
    """The `keras.distribution` scope of `distribute`: None; "data" (DataParallel over every device);
    "model" (ModelParallel with the model's `get_layout_map`: a mesh ("batch", "model") whose model
    axis has 2 devices, or all of them when their number is odd, and whose batch axis the rest)."""
    if distribute not in DISTRIBUTIONS:
        raise ValueError(f"train: unknown `distribute` {distribute!r}; allowed: None, 'data', 'model'.")
    if distribute is None:
        return contextlib.nullcontext()
    if keras.backend.backend() != "jax":
        raise ValueError(
            f"train: distribute={distribute!r} needs the jax backend (keras.distribution); "
            f"the backend is {keras.backend.backend()!r}."
        )
    devices = keras.distribution.list_devices()
    if distribute == "data":
        return keras.distribution.DataParallel(devices=devices).scope()
    cls = models.architecture_class(architecture)
    if not hasattr(cls, "get_layout_map"):
        raise ValueError(f"train: distribute='model' needs a model with a layout map (GLUTransformer, MosaicBERT); "
                         f"{architecture} ({cls.__name__}) has none.")
    if len(devices) < 2:
        raise ValueError(f"train: distribute='model' needs at least 2 devices; found {len(devices)}.")
    model_axis = 2 if len(devices) % 2 == 0 else len(devices)
    mesh = keras.distribution.DeviceMesh((len(devices) // model_axis, model_axis), ["batch", "model"], devices)
    return keras.distribution.ModelParallel(layout_map=cls.get_layout_map(mesh), batch_dim_name="batch").scope()


def _make_out(out):
    """Make the run folder, or a one-line ValueError saying why it cannot be one."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"train: `out` {out} is a file; pass a folder (new or holding a run).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"train: cannot make the run folder `out` {out}: {error.strerror or error}.") from None
    if not os.access(out, os.W_OK):
        raise ValueError(f"train: the run folder `out` {out} is not writable.")


@contextlib.contextmanager
def _locked(out):
    """An exclusive lock on `out/.lock` for the block, or a ValueError if
    another training holds it. The lock is flock's: the kernel releases it
    when the file is closed or the process ends, even by SIGKILL, so no
    stale lock is ever left. The file holds the holder's process id."""
    if fcntl is None:
        yield
        return
    path = out / LOCK
    try:
        f = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+")
    except OSError as error:
        raise ValueError(f"train: cannot open the lock file {path}: {error.strerror or error}.") from None
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = f.read().strip() or "unknown"
            raise ValueError(
                f"train: the run folder `out` {out} is in use by another training (process {holder}); "
                f"wait for it to end or pass another `out`."
            ) from None
        except OSError as error:
            raise ValueError(f"train: cannot lock the run folder `out` {out} ({path}): "
                             f"{error.strerror or error}.") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def _clear(out):
    """Remove a run's files from `out` (not `preset/`, which a run rewrites
    whole before it is finished): the backup first (its metadata first), so
    that a kill on the way leaves no run to resume."""
    delete_backup(out / "backup")
    for stale in ("result.json", "log.csv", "best.weights.h5", "curves.png"):
        (out / stale).unlink(missing_ok=True)
    _remove_partials(out)


def _prepare_out(out, run, overwrite):
    """Get the locked run folder ready; return the epochs its backup holds (0 for a fresh start)."""
    backup, result = out / "backup", out / "result.json"
    if overwrite:
        _clear(out)
        return 0
    if result.is_file():
        # A kill after result.json, the run's last file, can leave the backup
        # (or part of it): the run is finished all the same.
        delete_backup(backup)
        raise ValueError(
            f"train: {out} holds a finished run ({result}; its preset: {out / 'preset'}); pass overwrite=True "
            f"(glu-zoo train --overwrite) to train over it, or another `out`."
        )
    metadata = Backup.read(backup)
    if metadata is None:
        _clear(out)  # what a run killed before its first backup left, if anything
        return 0
    if metadata["run"] != run:
        raise ValueError(
            f"train: {out} holds an interrupted run of other settings ({metadata['run']}); resume it with "
            f"the same recipe, epochs, precision and distribute, or pass overwrite=True (glu-zoo train "
            f"--overwrite) or another `out`."
        )
    _remove_partials(out)
    return metadata["epoch"]


def _resumable(out, epochs, validation):
    """Trim the log to the `epochs` that the backup holds; return None if the
    run can resume from there, else what it lacks. A resumed run replays the
    epochs after its backup bit for bit, but needs from before it the log
    (each epoch's row: the best validation score so far) and, with a
    validation split, the best epoch's weights."""
    logged = _keep_log_rows(out / "log.csv", epochs)
    if logged != list(range(epochs)):
        return "log.csv is missing or unreadable" if logged is None else (
            f"log.csv holds the epochs {logged}, not each of 0-{epochs - 1} once")
    if validation and not _readable_weights(out / "best.weights.h5"):
        return "best.weights.h5 (the best epoch's weights) is missing or unreadable"
    return None


def train(recipe, epochs=None, out=None, precision="float32", distribute=None, verbose="auto", callbacks=(),
          backup_interval=BACKUP_INTERVAL, overwrite=False):
    """Train a recipe (a `Recipe` or its name) with `model.fit` on the current backend.

    Args:
        epochs: override the recipe's epochs (for quick runs).
        out: the run folder (default `runs/<recipe>`); if it holds an
            interrupted run, training resumes from its last backup (and must
            have the same recipe, epochs, precision and distribute). One
            training at a time: another one into the same `out` is refused.
        precision: "float32" or "mixed_bfloat16".
        distribute: None, "data" (`keras.distribution.DataParallel` over
            all devices) or "model" (`ModelParallel` with the model's layout
            map: FFN hidden axis and attention heads sharded; language
            models); JAX.
        callbacks: more Keras callbacks, called after the built-in ones and
            before the backup (which comes last, so that a backup holds all
            that its epochs did).
        backup_interval: seconds between backups, at epoch ends (0: every
            epoch); the last epoch is always backed up. A killed run loses
            at most this much training, which it replays on resume.
        overwrite: train over a finished or interrupted run in `out`
            (otherwise a finished run there is an error).

    Returns a dict: `metrics` on the test split, `preset` (the folder),
    `examples_per_second`, `reached` (whether the recipe's target was met).
    """
    recipe = recipes_lib.get(recipe) if isinstance(recipe, str) else recipe
    epochs = recipe.epochs if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"train: `epochs` must be a positive integer; got {epochs!r}.")
    check_number("backup_interval", backup_interval, "train", low=0.0, low_open=False)
    check_bool("overwrite", overwrite, "train")
    if precision not in PRECISIONS:
        raise ValueError(f"train: unknown `precision` {precision!r}; allowed: {', '.join(PRECISIONS)}.")
    if distribute not in DISTRIBUTIONS:
        raise ValueError(f"train: unknown `distribute` {distribute!r}; allowed: None, 'data', 'model'.")
    out = pathlib.Path(out or os.path.join("runs", recipe.name))
    # What a backup must match to be resumed (JSON, as it is stored).
    run = json.loads(presets.dump_json({"recipe": recipe.to_dict(), "epochs": epochs, "precision": precision,
                                        "distribute": distribute}))
    _make_out(out)
    with _locked(out):
        return _train(recipe, epochs, out, run, precision, distribute, verbose, callbacks, backup_interval,
                      overwrite)


def _train(recipe, epochs, out, run, precision, distribute, verbose, callbacks, backup_interval, overwrite):
    backup, log, best = out / "backup", out / "log.csv", out / "best.weights.h5"
    start = _prepare_out(out, run, overwrite)

    table = _is_table(recipe)
    if table:  # a generator: it learns the encoded training table; no labels, no validation split
        data = _load_table(recipe)
        overrides = {"encoder": data["encoder"].get_config(), **recipe.model_overrides}
        x_train, y_train, x_test, y_test = data["x_train"], None, data["x_test"], None
        x_val, y_val, description = x_train[:0], None, data["table"].description
    else:
        splits = data_lib.load(recipe.data, **recipe.data_options)
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits.train, splits.validation, splits.test
        overrides, description = recipe.model_overrides, splits.description
    if start:
        lacking = _resumable(out, start, validation=_rows(x_val) > 0)
        if lacking:
            print(f"glu_zoo: train: {out} holds a backup after epoch {start}, but {lacking}; training afresh.",
                  file=sys.stderr)
            _clear(out)
            start = 0
    resuming = start > 0
    keras.utils.set_random_seed(recipe.seed)
    with _precision(precision), _distribution(distribute, recipe.architecture):
        model = models.build(recipe.architecture, **overrides)
        for x, split in ((x_train, "training"), (x_test, "test")):
            model.check_inputs(x, f"{split} inputs")
        # A batch is never larger than the data (a table of 142 rows at batch 4096: one batch of all rows).
        batch_size = min(recipe.batch_size, _rows(x_train))
        dataset = EpochShuffled(x_train, y_train, batch_size, recipe.seed, drop_remainder=bool(distribute),
                                shift=recipe.augment.get("shift", 0), passes=recipe.passes_per_epoch)
        _compile(model, _optimizer(recipe, len(dataset), epochs), classify=not table)
        throughput = Throughput(len(dataset) * batch_size if distribute else _rows(x_train) * recipe.passes_per_epoch)
        monitor = f"val_{recipe.metric}"
        # With a validation split, the weights of the best validation epoch are
        # kept; without one, those of the last epoch.
        checkpoint = [_BestCheckpoint(
            str(best), monitor=monitor, mode=recipe.metric_mode, save_best_only=True, save_weights_only=True,
            initial_value_threshold=_best_so_far(log, monitor, recipe.metric_mode) if resuming else None,
        )] if _rows(x_val) else []
        callback_list = _Callbacks(
            [
                _SetEpoch(dataset, recipe.seed),
                *checkpoint,
                keras.callbacks.CSVLogger(str(log), append=resuming),
                throughput,
                *callbacks,
                Backup(backup, interval=backup_interval, run=run),  # last: it commits the epoch
            ],
            add_history=True, add_progbar=verbose != 0, model=model,
            verbose=verbose, epochs=epochs, steps=len(dataset),
        )
        model.fit(
            dataset,
            validation_data=(x_val, y_val) if _rows(x_val) else None,
            validation_batch_size=recipe.batch_size,
            epochs=epochs,
            shuffle=False,  # EpochShuffled orders each epoch by (seed, epoch)
            verbose=verbose,
            callbacks=callback_list,
        )
        if checkpoint:
            model.load_weights(best)
        scores = model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0, return_dict=True)
    metrics = {k: float(v) for k, v in scores.items() if k != "compile_metrics"}
    if table:
        metrics.update(_table_scores(model, data, recipe)["summary"])
    if precision != "float32":  # the preset is float32, whatever the training precision
        model = _as_float32(model, recipe, overrides)
    plot_curves(log, out / "curves.png", "loss" if table else recipe.metric)
    metadata = {
        "recipe": recipe.to_dict(),
        "data_split": description,
        "test_metrics": metrics,
        "examples_per_second": throughput.examples_per_second(),
        "epochs": epochs,
        "precision": precision,
        "distribute": distribute,
    }
    # Written in place: until result.json exists the run is not finished, and
    # a resume writes the preset again, whole.
    preset = presets.save(model, out / "preset", metadata=metadata)
    result = {
        "recipe": recipe.name,
        "backend": keras.backend.backend(),
        "metrics": metrics,
        "target": {recipe.metric: recipe.target},
        "metric_mode": recipe.metric_mode,
        "limits": dict(recipe.limits),
        "reached": _reached(recipe, metrics),
        "examples_per_second": throughput.examples_per_second(),
        "preset": str(preset),
        "out": str(out),
    }
    _write_atomically(out / "result.json", presets.dump_json(result, indent=2) + "\n")  # the run is finished
    delete_backup(backup)  # only now: a run killed before this resumes after its last epoch
    return result


def _as_float32(model, recipe, overrides):
    with _precision("float32"):
        clone = models.build(recipe.architecture, **overrides)
    clone.set_weights(model.get_weights())
    return clone


def _reached(recipe, metrics):
    """The recipe's metric at least its target (at most, for `metric_mode` "min"), and every metric of
    `limits` at most its limit."""
    def value(name, missing):
        v = metrics.get(name)
        return missing if v is None or (isinstance(v, float) and math.isnan(v)) else v

    if recipe.metric_mode == "max":
        met = value(recipe.metric, -math.inf) >= recipe.target
    else:
        met = value(recipe.metric, math.inf) <= recipe.target
    return met and all(
        value(name, math.inf) <= limit for name, limit in recipe.limits.items())


def _is_table(recipe):
    from glu_zoo.data import tabular

    return recipe.data in tabular.list_tables()


def _load_table(recipe):
    """The recipe's table, its encoder fitted on the training split, and both splits encoded."""
    from glu_zoo.data import tabular

    table = tabular.load_table(recipe.data, **recipe.data_options)
    encoder = tabular.TableEncoder(table.spec).fit(table.train)
    return {"table": table, "encoder": encoder, "x_train": encoder.transform(table.train),
            "x_test": encoder.transform(table.test)}


def _table_scores(model, data, recipe):
    """`glu_zoo.evaluation.evaluate` of a synthetic table as large as the training split, sampled
    with the recipe's `sample_options` and seed."""
    from glu_zoo import evaluation

    table = data["table"]
    synthetic = model.sample(len(table.train), seed=recipe.seed, **recipe.sample_options)
    return evaluation.evaluate(table.train, table.test, synthetic, table.spec, seed=recipe.seed)


def evaluate(name_or_path):
    """Test metrics of a preset on its recipe's test split, on the current backend.

    Returns a dict with `metrics`, `backend`, `preset` (the folder loaded),
    `source` ("shipped" for a bare shipped name, else "folder"), `recipe`,
    `examples` (the test split's size) and `expected_output_error` (largest
    difference from the recorded outputs). A preset whose metadata names no
    usable recipe is a `PresetError` naming its metadata.json.
    """
    folder, source = presets.resolve(name_or_path)
    metadata = presets.get_metadata(folder)
    try:
        recipe = recipes_lib.Recipe(**metadata["recipe"])
    except (KeyError, TypeError, ValueError) as error:
        raise presets.PresetError(
            f"{folder / 'metadata.json'}: no usable 'recipe' ({type(error).__name__}: {error}); evaluate needs "
            f"the recipe that trained the preset (its test split). A preset from save_to_preset without one "
            f"loads with from_preset."
        ) from None
    model = presets.load(folder)
    if _is_table(recipe):
        # The generator is scored on the recipe's table: a synthetic table as large as the training split.
        data = _load_table(recipe)
        x_test = data["x_test"]
        model.check_inputs(x_test, "test inputs")
        scores = _table_scores(model, data, recipe)
        metrics, details = scores["summary"], {k: v for k, v in scores.items() if k != "summary"}
    else:
        splits = data_lib.load(recipe.data, **recipe.data_options)
        x_test, y_test = splits.test
        model.check_inputs(x_test, "test inputs")
        _compile(model)
        scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
        metrics = {k: float(v) for k, v in scores.items() if k != "compile_metrics"}
        details = None
    return {
        "preset": str(folder),
        "source": source,
        "recipe": recipe.name,
        "backend": keras.backend.backend(),
        "metrics": metrics,
        **({"details": details} if details is not None else {}),
        "examples": _rows(x_test),
        "expected_output_error": presets.expected_output_error(model, metadata),
    }
