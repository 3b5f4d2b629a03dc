"""What every zoo model shares: construction from its config, the dtype policy,
one check of the inputs, and presets; the image and token-sequence bases."""

import contextlib
import functools
import inspect

import keras
import numpy as np
from keras import ops

from glu_zoo.layers.checks import check_positive_int
from glu_zoo.layers.embedding import check_images_shape
from glu_zoo.presets import io as preset_io

__all__ = ["ZooModel", "ImageClassifier", "SequenceClassifier", "LanguageModel", "check_sequence_length", "layout_map",
           "check_input_dict", "check_token_ids", "value_range"]


def _under_dtype_policy(init):
    """Wraps a model's `__init__` so that `dtype=` (a policy name, config or
    `DTypePolicy`) is the policy of every layer built inside it, not of the
    model object alone (a functional model ignores `dtype`)."""

    @functools.wraps(init)
    def __init__(self, *args, dtype=None, **kwargs):
        if dtype is None:
            return init(self, *args, **kwargs)
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(keras.dtype_policies.get(dtype))
        try:
            return init(self, *args, **kwargs)
        finally:
            keras.config.set_dtype_policy(previous)

    # Keras reads the constructor's signature (for its default config): the
    # wrapped one's, where `dtype` falls into **kwargs.
    __init__.__signature__ = inspect.signature(init)
    return __init__


class ZooModel(keras.Model):
    """A functional `keras.Model` built from its constructor arguments.

    Subclasses build their graph in `__init__` (KerasHub style: Layers,
    Functional Model, Config) and extend `get_config` with every constructor
    argument (`{**super().get_config(), ...}`), so `from_config` is just
    `cls(**config)`. This base writes `name`, `trainable` and `dtype`: every
    subclass accepts `dtype=` and builds all its layers under that policy
    (default: the global policy), so a config or a `.keras` file rebuilds the
    model in the precision it was built in.

    `check_inputs(x)` is the one check of a model's inputs; `fit`, `evaluate`
    and `predict` run it on array inputs before they start: Keras's
    functional input handling adjusts a wrong rank silently (token ids of
    shape (B, T, 1) or images of shape (B, H, W) would train without an
    error), and on JAX an error raised inside them, after Keras has moved
    the weights out of the variables, leaves the model without its weights
    (Keras 3.15). Layers still check their own call inputs, through the same
    functions (`check_images_shape`, `checks.check_floating`).

    `model(x)` runs it too when `x` is concrete (a NumPy array, a Python
    list, an eager JAX, TensorFlow or torch tensor), so that a token id out
    of range is refused there as well. It is skipped for symbolic inputs
    (KerasTensor, JAX tracers, TensorFlow graph tensors, torch meta tensors
    or tensors under `torch.compile`) and for every call made inside this
    model's own `fit`, `evaluate` and `predict`, whose inputs were checked
    once before they started: no per-batch cost (torch runs `fit` eagerly,
    where a min/max per batch would wait on the device at every step).
    """

    _inside_own_loop = False  # True while this model's fit/evaluate/predict runs

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            cls.__init__ = _under_dtype_policy(cls.__init__)

    def get_config(self):
        # Not Functional.get_config (the graph): the constructor arguments.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _owner(self, name=None):
        owner = f"{type(self).__name__} '{self.name}'"
        return f"{owner}, {name}" if name else owner

    def check_inputs(self, x, name=None):
        """A ValueError unless the array `x` fits the model's input: the same
        rank and the same size on every known axis. Data sets, generators and
        dicts are left to the traced check. `name` (such as "test inputs")
        goes into the message. Subclasses check more (images, token ids)."""
        shape = getattr(x, "shape", None)
        if shape is None or isinstance(x, dict) or len(self.inputs) != 1:
            return
        expected = tuple(self.inputs[0].shape)
        got = tuple(shape)
        check_batch(got, self._owner(name))
        if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected[1:], got[1:])):
            raise ValueError(f"{self._owner(name)}: expected inputs of shape {expected}; got shape {got}.")

    def __call__(self, *args, **kwargs):
        if not self._inside_own_loop:
            x = args[0] if args else kwargs.get("inputs")
            if isinstance(x, dict) and len(x) > 1:  # named inputs: checked when every one is concrete
                if all(_concrete_inputs(value) is not None for value in x.values()):
                    self.check_inputs(x)
            else:
                x = _concrete_inputs(x)
                if x is not None:
                    self.check_inputs(x)
        return super().__call__(*args, **kwargs)

    @contextlib.contextmanager
    def _own_loop(self):
        """Marks the calls made inside fit/evaluate/predict (inputs checked up
        front); restores the previous state, so a nested evaluate (fit's
        validation) leaves it as it was."""
        previous = self._inside_own_loop
        self._inside_own_loop = True
        try:
            yield
        finally:
            self._inside_own_loop = previous

    def fit(self, x=None, *args, **kwargs):
        self.check_inputs(x)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)) and validation:
            self.check_inputs(validation[0], "validation inputs")
        with self._own_loop():  # fit's validation `evaluate` then checks nothing
            return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        if not self._inside_own_loop:
            self.check_inputs(x)
        with self._own_loop():
            return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_inputs(x)
        with self._own_loop():
            return super().predict(x, *args, **kwargs)

    @classmethod
    def from_preset(cls, name_or_path):
        """Load a shipped preset by name, or a preset folder by path.

        The weights' sha256 and the config's class (this class or a subclass)
        are checked before anything is loaded; see `glu_zoo.presets`.
        """
        return preset_io.load(name_or_path, model_class=cls)

    def save_to_preset(self, path, metadata=None):
        """Write a preset folder: config.json, model.weights.h5, metadata.json."""
        return preset_io.save(self, path, metadata=metadata)


class ImageClassifier(ZooModel):
    """What the image models share: images (batch, H, W, C), float.

    Subclasses set `self.image_shape` and `self.input_spec = None` after
    building the graph: Keras's own functional input check drops a trailing
    axis of size 1 from both shapes, so for C = 1 it lets a wrong channel
    count through and misreports the received shape. The shape is checked by
    `check_images_shape`, in `check_inputs` before fit/evaluate/predict and
    in the patch embedding when the model is called.
    """

    def check_inputs(self, x, name=None):
        shape = getattr(x, "shape", None)
        if shape is None or isinstance(x, dict):
            return  # a data set, generator or dict: checked when traced
        # Exactly (batch, H, W, C): no squeezed channel axis either, since a
        # TF predict function traced for two ranks fails on both (Keras 3.15).
        check_images_shape(tuple(shape), self.image_shape, self._owner(name))
        check_batch(tuple(shape), self._owner(name))


class LanguageModel(ZooModel):
    """What the language models share (inputs: a dict of token ids and masks;
    output: logits over the vocabulary at each position). Training scores the
    token cross-entropy over the real targets only, label 0 (padding, or a
    position not selected for MLM) ignored: its mean is the log-perplexity,
    and no metric is added. A preset records the logits of token ids (T,) in
    [0, vocabulary_size) (`preset_outputs`, per model). Subclasses set
    `vocabulary_size`."""

    def classification_loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)

    def training_metrics(self):
        return []

    def preset_input_spec(self):
        return (None,), "int32", self.vocabulary_size


class SequenceClassifier(ZooModel):
    """What the token-sequence classifiers share: token ids (batch, T), int,
    0 = padding. `check_inputs` also checks the ids' range, in fit/evaluate/
    predict and in `model(x)` on concrete inputs: an id past the vocabulary
    gives NaN on JAX and an error elsewhere, and -1 silently reads the last
    embedding row on every backend. On a backend tensor only its min and max
    leave the device. Subclasses set `vocabulary_size` and `sequence_length`
    (None: any T)."""

    def check_inputs(self, x, name=None):
        shape = getattr(x, "shape", None)
        if shape is None or isinstance(x, dict):
            return  # a data set or generator: shapes are checked when traced
        owner = self._owner(name)
        if len(shape) != 2:
            raise ValueError(f"{owner}: token ids must have shape (batch, sequence); got shape {tuple(shape)}.")
        if self.sequence_length is not None and shape[1] != self.sequence_length:
            raise ValueError(f"{owner}: token ids must have shape (batch, {self.sequence_length}); "
                             f"got shape {tuple(shape)}.")
        check_batch(tuple(shape), owner)
        if ops.is_tensor(x):  # a backend tensor: two numbers leave the device, not the array
            dtype = keras.backend.standardize_dtype(x.dtype)
        else:
            x = np.asarray(x)
            dtype = str(x.dtype)
        if not dtype.startswith(("int", "uint")):
            raise ValueError(f"{owner}: token ids must be integers; got dtype {dtype}.")
        if not np.prod(shape):
            return
        low, high = value_range(x)
        if low < 0 or high >= self.vocabulary_size:
            raise ValueError(f"{owner}: token ids must be in [0, {self.vocabulary_size}); got values in "
                             f"[{low}, {high}].")


def _concrete_inputs(x):
    """`x` as an array or eager tensor that `check_inputs` can read now, or
    None when its values are not known yet (symbolic, traced, compiled) or it
    is not one array. A list holding one array is that array (Keras accepts
    it for a one-input model); a nested list of numbers is its NumPy array."""
    if isinstance(x, dict) and len(x) == 1:
        (x,) = x.values()
    if isinstance(x, (list, tuple)):
        if len(x) == 1 and hasattr(x[0], "shape"):
            x = x[0]
        elif any(hasattr(item, "shape") for item in x):
            return None  # several arrays: Keras says what is wrong
        else:
            try:
                x = np.asarray(x)
            except Exception:  # ragged, or not numbers: Keras says what is wrong
                return None
            return None if x.dtype == object else x
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__
    if module.startswith(("jax", "jaxlib")):
        import jax

        return None if isinstance(x, jax.core.Tracer) or not isinstance(x, jax.Array) else x
    if module.startswith("tensorflow"):
        import tensorflow as tf

        return x if isinstance(x, tf.Tensor) and not tf.is_symbolic_tensor(x) else None
    if module.startswith("torch"):
        import torch

        if not isinstance(x, torch.Tensor) or x.is_meta or torch.compiler.is_compiling():
            return None
        return x
    return None  # a KerasTensor, or anything else: left to Keras and the layers


def check_batch(shape, owner):
    """A ValueError for an empty batch (Keras's predict would fail inside
    its loop with an UnboundLocalError)."""
    if shape and shape[0] == 0:
        raise ValueError(f"{owner}: the inputs hold no example (shape {shape}); pass at least one.")


def check_sequence_length(sequence_length, owner, required=False):
    """A positive int, or None (any length) unless `required`."""
    if sequence_length is None and not required:
        return None
    return check_positive_int("sequence_length", sequence_length, owner)


def layout_map(device_mesh, rules, model_parallel_dim_name="model"):
    """A `keras.distribution.LayoutMap` of `device_mesh` from {variable-path regex: "in" | "out" | "rows"}:
    "in" shards a kernel's output axis (d, h) → (None, model), "out" its input axis (h, d) → (model, None),
    "rows" an embedding table's width (V, d) → (None, model). Unlisted variables are replicated."""
    import keras

    axes = {"in": (None, model_parallel_dim_name), "out": (model_parallel_dim_name, None),
            "rows": (None, model_parallel_dim_name)}
    layout = keras.distribution.LayoutMap(device_mesh)
    for pattern, kind in rules.items():
        layout[pattern] = axes[kind]
    return layout


def check_input_dict(x, keys, owner):
    """A ValueError unless `x` is a dict of exactly `keys` (a model of named inputs); returns False for
    what is left to the traced checks (a data set, a generator), True for a dict to check further."""
    if x is None or not isinstance(x, dict):
        if hasattr(x, "shape"):
            raise ValueError(f"{owner}: inputs must be a dict with keys {', '.join(keys)}; got an array of shape "
                             f"{tuple(x.shape)}.")
        return False
    if set(x) != set(keys):
        raise ValueError(f"{owner}: inputs must be a dict with keys {', '.join(keys)}; got keys "
                         f"{', '.join(sorted(map(str, x)))}.")
    return True


def value_range(value):
    """(min, max) of an array or backend tensor (only two numbers leave the device)."""
    if ops.is_tensor(value):
        low, high = ops.convert_to_numpy(ops.stack([ops.min(value), ops.max(value)]))
        return low, high
    return np.min(value), np.max(value)


def check_token_ids(value, vocabulary_size, owner, key="token_ids"):
    """A ValueError unless `value` holds integer ids in [0, vocabulary_size), naming `key`."""
    dtype = keras.backend.standardize_dtype(value.dtype)
    if not dtype.startswith(("int", "uint")):
        raise ValueError(f"{owner}: `{key}` must hold integer token ids; got dtype {dtype}.")
    if np.prod(value.shape):
        low, high = value_range(value)
        if low < 0 or high >= vocabulary_size:
            raise ValueError(f"{owner}: `{key}` must hold token ids in [0, {vocabulary_size}); got values in "
                             f"[{low}, {high}].")
