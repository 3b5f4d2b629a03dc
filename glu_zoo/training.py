"""The one place that turns a recipe into `model.fit`, and a trained model into a preset.

    result = glu_zoo.training.train("activator_vit_digits", out="runs/act")
    result["metrics"]["accuracy"], result["preset"]

A run writes into `out`: `backup/` (BackupAndRestore: a run killed at any
point resumes from its last finished epoch and ends as an uninterrupted run
would), `best.weights.h5` (best validation accuracy), `log.csv`,
`curves.png`, `result.json` and `preset/`.
"""

import contextlib
import csv
import json
import math
import os
import pathlib
import time

import keras
import numpy as np

from glu_zoo import data as data_lib
from glu_zoo import models, presets
from glu_zoo import recipes as recipes_lib

PRECISIONS = ("float32", "mixed_bfloat16")
STEPS_PER_EXECUTION = 16
DISTRIBUTIONS = (None, "data")


class EpochShuffled(keras.utils.PyDataset):
    """Batches of (x, y) in an order fixed by (seed, epoch) alone, so that a
    resumed run sees the same batches as an uninterrupted one.
    `drop_remainder` drops the last, smaller batch (data parallel training
    needs batches that split evenly over the devices)."""

    def __init__(self, x, y, batch_size, seed, drop_remainder=False):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.drop_remainder = drop_remainder
        self.epoch = 0

    def __len__(self):
        if self.drop_remainder:
            return len(self.x) // self.batch_size
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))
        take = order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[take], self.y[take]


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
    """Training examples per second of each epoch (training batches only)."""

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
        """Median over epochs, leaving out the first (compilation) when there are others."""
        rates = self.per_epoch[1:] or self.per_epoch
        return float(np.median(rates)) if rates else float("nan")


def _optimizer(recipe, steps_per_epoch, epochs):
    lr = recipe.learning_rate
    if recipe.schedule == "cosine":
        warmup = recipe.warmup_epochs * steps_per_epoch
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else lr,
            decay_steps=max(1, epochs * steps_per_epoch - warmup),
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    if recipe.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(lr, weight_decay=recipe.weight_decay)
        if recipe.no_weight_decay:
            optimizer.exclude_from_weight_decay(var_names=list(recipe.no_weight_decay))
        return optimizer
    return keras.optimizers.Adam(lr)


def _compile(model, optimizer=None):
    xla = keras.backend.backend() != "torch"  # on torch, jit_compile=True means torch.compile
    model.compile(
        optimizer=optimizer or "adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=xla,
        # Several steps per compiled call: small models are bound by per-step
        # dispatch (+30% images/s on JAX for the digits recipes). Torch allows 1.
        steps_per_execution=STEPS_PER_EXECUTION if xla else 1,
    )


def _check_inputs(model, x, split):
    expected = tuple(None if d is None else int(d) for d in model.inputs[0].shape[1:])
    got = tuple(x.shape[1:])
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
        shown = ", ".join("None" if d is None else str(d) for d in expected)
        raise ValueError(
            f"{split} inputs have shape {got} but the model expects {expected} "
            f"(expected batch shape (None, {shown}), received {tuple(x.shape)})."
        )


def _best_so_far(log_path, monitor):
    if not log_path.is_file():
        return None
    with open(log_path) as f:
        values = [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor)]
    return max(values) if values else None


def plot_curves(log_path, png_path, metric="accuracy"):
    """Loss and metric against epoch, training and validation, from a CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

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


def _distribution(distribute):
    if distribute not in DISTRIBUTIONS:
        raise ValueError(f"train: unknown `distribute` {distribute!r}; allowed: None, 'data'.")
    if distribute is None:
        return contextlib.nullcontext()
    if keras.backend.backend() != "jax":
        raise ValueError(
            f"train: distribute='data' needs the jax backend (keras.distribution); "
            f"the backend is {keras.backend.backend()!r}."
        )
    return keras.distribution.DataParallel(devices=keras.distribution.list_devices()).scope()


def train(recipe, epochs=None, out=None, precision="float32", distribute=None, verbose="auto", callbacks=()):
    """Train a recipe (a `Recipe` or its name) with `model.fit` on the current backend.

    Args:
        epochs: override the recipe's epochs (for quick runs).
        out: the run folder (default `runs/<recipe>`); if it holds an
            interrupted run, training resumes from its last finished epoch.
        precision: "float32" or "mixed_bfloat16".
        distribute: None or "data" (`keras.distribution.DataParallel` over
            all devices; JAX).
        callbacks: more Keras callbacks, called after the built-in ones.

    Returns a dict: `metrics` on the test split, `preset` (the folder),
    `examples_per_second`, `reached` (whether the recipe's target was met).
    """
    recipe = recipes_lib.get(recipe) if isinstance(recipe, str) else recipe
    epochs = recipe.epochs if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"train: `epochs` must be a positive integer; got {epochs!r}.")
    out = pathlib.Path(out or os.path.join("runs", recipe.name))
    out.mkdir(parents=True, exist_ok=True)
    backup, log, best = out / "backup", out / "log.csv", out / "best.weights.h5"
    resuming = backup.is_dir() and any(backup.iterdir())
    if not resuming:
        for stale in (log, best):
            stale.unlink(missing_ok=True)

    splits = data_lib.load(recipe.data, **recipe.data_options)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits.train, splits.validation, splits.test
    keras.utils.set_random_seed(recipe.seed)
    with _precision(precision), _distribution(distribute):
        model = models.build(recipe.architecture, **recipe.model_overrides)
        for x, split in ((x_train, "training"), (x_test, "test")):
            _check_inputs(model, x, split)
        dataset = EpochShuffled(x_train, y_train, recipe.batch_size, recipe.seed, drop_remainder=bool(distribute))
        _compile(model, _optimizer(recipe, len(dataset), epochs))
        throughput = Throughput(len(dataset) * recipe.batch_size if distribute else len(x_train))
        monitor = f"val_{recipe.metric}"
        # With a validation split, the weights of the best validation epoch are
        # kept; without one, those of the last epoch.
        checkpoint = [keras.callbacks.ModelCheckpoint(
            str(best), monitor=monitor, mode="max", save_best_only=True, save_weights_only=True,
            initial_value_threshold=_best_so_far(log, monitor) if resuming else None,
        )] if len(x_val) else []
        model.fit(
            dataset,
            validation_data=(x_val, y_val) if len(x_val) else None,
            validation_batch_size=recipe.batch_size,
            epochs=epochs,
            shuffle=False,  # EpochShuffled orders each epoch by (seed, epoch)
            verbose=verbose,
            callbacks=[
                keras.callbacks.BackupAndRestore(str(backup)),
                _SetEpoch(dataset, recipe.seed),
                *checkpoint,
                keras.callbacks.CSVLogger(str(log), append=resuming),
                throughput,
                *callbacks,
            ],
        )
        if checkpoint and best.is_file():
            model.load_weights(best)
        scores = model.evaluate(x_test, y_test, batch_size=recipe.batch_size, verbose=0, return_dict=True)
    metrics = {k: float(v) for k, v in scores.items() if k != "compile_metrics"}
    if precision != "float32":  # the preset is float32, whatever the training precision
        model = _as_float32(model, recipe)
    plot_curves(log, out / "curves.png", recipe.metric)
    metadata = {
        "recipe": recipe.to_dict(),
        "data_split": splits.description,
        "test_metrics": metrics,
        "examples_per_second": throughput.examples_per_second(),
        "epochs": epochs,
        "precision": precision,
        "distribute": distribute,
    }
    preset = presets.save(model, out / "preset", metadata=metadata)
    result = {
        "recipe": recipe.name,
        "backend": keras.backend.backend(),
        "metrics": metrics,
        "target": {recipe.metric: recipe.target},
        "reached": metrics.get(recipe.metric, float("-inf")) >= recipe.target,
        "examples_per_second": throughput.examples_per_second(),
        "preset": str(preset),
        "out": str(out),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _as_float32(model, recipe):
    with _precision("float32"):
        clone = models.build(recipe.architecture, **recipe.model_overrides)
    clone.set_weights(model.get_weights())
    return clone


def evaluate(name_or_path):
    """Test metrics of a preset on its recipe's test split, on the current backend.

    Returns a dict with `metrics`, `backend`, `preset`, `recipe`, `examples`
    (the test split's size) and `expected_output_error` (largest difference from the recorded outputs).
    """
    metadata = presets.get_metadata(name_or_path)
    model = presets.load(name_or_path)
    recipe = recipes_lib.Recipe(**metadata["recipe"])
    splits = data_lib.load(recipe.data, **recipe.data_options)
    x_test, y_test = splits.test
    _check_inputs(model, x_test, "test")
    _compile(model)
    scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    return {
        "preset": str(name_or_path),
        "recipe": recipe.name,
        "backend": keras.backend.backend(),
        "metrics": {k: float(v) for k, v in scores.items() if k != "compile_metrics"},
        "examples": len(x_test),
        "expected_output_error": presets.expected_output_error(model, metadata),
    }
