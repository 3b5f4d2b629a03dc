"""Save and load presets: a folder with config.json, model.weights.h5 and metadata.json.

Shipped presets live beside this file, one folder each, written by
`tools/make_presets.py` from the recipes. Loading checks that the three files
exist, that the weights' sha256 is the one recorded in metadata.json, and
that the config names the expected class, before any weight is loaded.

This module knows no model class by import: `load` builds the class that the
caller passes (`Model.from_preset` passes its own), or without one the class
that the config names among the Keras-registered models of package "glu_zoo"
(`import glu_zoo.models` registers the zoo's models).
"""

import datetime
import hashlib
import json
import pathlib

import numpy as np

CONFIG, WEIGHTS, METADATA = "config.json", "model.weights.h5", "metadata.json"
SHIPPED = pathlib.Path(__file__).parent
FIXED_INPUT_SEED = 1234
FIXED_INPUT_BATCH = 2
FIXED_INPUT_LENGTH = 16  # for an axis of unknown size (a model of any sequence length)


class PresetError(ValueError):
    """A preset that cannot be loaded: unknown, incomplete, altered or mismatched."""


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def dump_json(value, **kwargs):
    """`json.dumps` that writes valid JSON only: a NaN or infinite float becomes
    the string "NaN", "Infinity" or "-Infinity" (which `float()` reads back),
    NumPy scalars become Python numbers; anything else JSON cannot hold is a
    TypeError."""
    return json.dumps(_finite(value), allow_nan=False, **kwargs)


def list_presets():
    """Names of the shipped presets, sorted."""
    return sorted(p.name for p in SHIPPED.iterdir() if (p / METADATA).is_file())


def _resolve(name_or_path):
    path = pathlib.Path(name_or_path)
    if path.is_dir() and not (path / METADATA).exists() and (path / "preset" / METADATA).exists():
        return path / "preset"  # a training run's folder
    if path.is_dir():
        return path
    if isinstance(name_or_path, str) and "/" not in name_or_path and (SHIPPED / name_or_path).is_dir():
        return SHIPPED / name_or_path
    raise PresetError(
        f"unknown preset {str(name_or_path)!r}: not a preset folder, and not one of the shipped "
        f"presets: {', '.join(list_presets())}."
    )


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PresetError(f"{path}: not a readable JSON file ({error}).") from error


def get_metadata(name_or_path):
    """The metadata.json of a preset, as a dict."""
    path = _resolve(name_or_path)
    if not (path / METADATA).is_file():
        raise PresetError(f"preset {path}: missing file {METADATA}.")
    return _read_json(path / METADATA)


def fixed_input(input_shape, dtype="float32", high=None):
    """The fixed input whose outputs a preset records, batch of 2, the model's
    input shape: seeded standard normal float32, or for integer inputs
    (token ids) seeded integers in [1, high)."""
    rng = np.random.default_rng(FIXED_INPUT_SEED)
    shape = (FIXED_INPUT_BATCH, *input_shape)
    if dtype.startswith(("int", "uint")):
        return rng.integers(1, high, size=shape).astype(dtype)
    return rng.normal(size=shape).astype("float32")


def _input_spec(model):
    """(shape without batch, dtype, high): high is the vocabulary size for token
    inputs; an axis of unknown size gets FIXED_INPUT_LENGTH."""
    import keras

    spec = model.inputs[0]
    shape = tuple(FIXED_INPUT_LENGTH if d is None else int(d) for d in spec.shape[1:])
    dtype = keras.backend.standardize_dtype(spec.dtype)
    high = getattr(model, "vocabulary_size", None) if dtype.startswith(("int", "uint")) else None
    return shape, dtype, high


def expected_output_error(model, metadata):
    """Largest absolute difference between the model's outputs on the fixed
    input and the outputs recorded in the preset's metadata."""
    expected = metadata["expected_output"]
    recorded = np.asarray(expected["values"], dtype="float64")
    x = fixed_input(expected["input_shape"], expected.get("input_dtype", "float32"), expected.get("input_high"))
    import keras

    out = keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")
    if out.shape != recorded.shape:
        raise PresetError(f"expected outputs of shape {recorded.shape}; the model gives {out.shape}.")
    return float(np.max(np.abs(out - recorded)))


def save(model, path, metadata=None):
    """Write `model` as a preset folder at `path`; return the path.

    `metadata` (recipe, data split, test metrics, ...) is extended with the
    class, parameter count, Keras version, backend, date, sha256 of the
    weights and the outputs for the fixed input.
    """
    import keras

    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if getattr(model, "optimizer", None) is not None:  # a preset holds the model, not the optimizer's state or compile()
        trained, model = model, type(model).from_config(model.get_config())
        model.set_weights(trained.get_weights())
    config = keras.saving.serialize_keras_object(model)
    (path / CONFIG).write_text(dump_json(config, indent=2, sort_keys=True) + "\n")
    model.save_weights(path / WEIGHTS)
    shape, dtype, high = _input_spec(model)
    x = fixed_input(shape, dtype, high)
    values = keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")
    full = {
        **(metadata or {}),
        "class_name": type(model).__name__,
        "parameters": int(model.count_params()),
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "weights_sha256": _sha256(path / WEIGHTS),
        "expected_output": {
            "input": (f"numpy default_rng({FIXED_INPUT_SEED}).integers(1, {high}), {dtype}" if high
                      else f"numpy default_rng({FIXED_INPUT_SEED}).normal, float32"),
            "input_shape": list(shape),
            "input_dtype": dtype,
            "input_high": high,
            "values": values.tolist(),
        },
    }
    (path / METADATA).write_text(dump_json(full, indent=2) + "\n")
    return path


PACKAGE = "glu_zoo"


def _model_class(class_name, path, model_class):
    """The class that builds the preset: `model_class` itself when the config
    names it, else the `PACKAGE` model registered under that name, which must
    be `model_class` or a subclass of it."""
    import keras

    if model_class is not None and class_name == model_class.__name__:
        return model_class
    found = keras.saving.get_registered_object(f"{PACKAGE}>{class_name}")
    if not (isinstance(found, type) and issubclass(found, keras.Model)):
        raise PresetError(
            f"preset {path} holds a {class_name!r}, which is not a registered {PACKAGE} model "
            f"({PACKAGE}>{class_name}); import the module that defines it (glu_zoo.models registers "
            f"the zoo's models) or load the preset with that class's from_preset."
        )
    if model_class is not None and not issubclass(found, model_class):
        raise PresetError(
            f"preset {path} holds a {class_name}, not a {model_class.__name__}; "
            f"load it with {class_name}.from_preset or glu_zoo.presets.load."
        )
    return found


def load(name_or_path, model_class=None):
    """The model of a preset, its weights verified against metadata.json.

    `model_class`: the class to build; the preset's config must name it or a
    subclass registered in package "glu_zoo". Without it, the config's class
    is looked up among the registered "glu_zoo" models only. Raises
    `PresetError` (a ValueError) naming the file on an unknown name, a
    missing file, a checksum mismatch, an unknown class or a config mismatch.
    """
    path = _resolve(name_or_path)
    for name in (CONFIG, WEIGHTS, METADATA):
        if not (path / name).is_file():
            raise PresetError(f"preset {path}: missing file {name}; a preset holds {CONFIG}, {WEIGHTS}, {METADATA}.")
    metadata = _read_json(path / METADATA)
    recorded = metadata.get("weights_sha256")
    actual = _sha256(path / WEIGHTS)
    if actual != recorded:
        raise PresetError(
            f"{path / WEIGHTS}: sha256 {actual} does not match {recorded} recorded in "
            f"{path / METADATA}; the weights are corrupt or altered. Nothing was loaded."
        )
    config = _read_json(path / CONFIG)
    class_name = config.get("class_name") if isinstance(config, dict) else None
    if class_name != metadata.get("class_name"):
        raise PresetError(
            f"{path / CONFIG}: class {class_name!r} does not match {metadata.get('class_name')!r} "
            f"recorded in {path / METADATA}."
        )
    cls = _model_class(class_name, path, model_class)
    try:
        model = cls.from_config(config.get("config", {}))
    except Exception as error:
        raise PresetError(f"{path / CONFIG}: cannot build the model ({error}).") from error
    model.load_weights(path / WEIGHTS)
    return model
