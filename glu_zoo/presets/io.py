"""Save and load presets: a folder with config.json, model.weights.h5 and metadata.json.

Shipped presets live beside this file, one folder each, written by
`tools/make_presets.py` from the recipes. A preset loads exactly or not at
all: before any weight is allocated, loading checks the three files, the
sha256 of the config and of the weights recorded in metadata.json, the class
(a registered glu_zoo model, built by its own `from_config` from plain
values: nothing in a preset can name a Lambda, a function or a module), and
that the weights the config builds have the shapes stored in the weights
file; after, that the outputs on a fixed input are the recorded ones.

This module knows no model class by import: `load` builds the class that the
caller passes (`Model.from_preset` passes its own), or without one the class
that the config names among the Keras-registered models of package "glu_zoo"
(`import glu_zoo.models` registers the zoo's models).
"""

import contextlib
import datetime
import hashlib
import json
import math
import pathlib
import warnings

import numpy as np

CONFIG, WEIGHTS, METADATA = "config.json", "model.weights.h5", "metadata.json"
SHIPPED = pathlib.Path(__file__).parent
FIXED_INPUT_SEED = 1234
FIXED_INPUT_BATCH = 2
FIXED_INPUT_LENGTH = 16  # for an axis of unknown size (a model of any sequence length)
MAX_FIXED_INPUT_SIZE = 1 << 26  # values per example: 64 frames of 512×512×3 fit


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


def resolve(name_or_path):
    """(folder, source) of a preset: a bare name (a str without a path
    separator) that names a shipped preset is that preset ("shipped"), even
    if a folder of that name is in the working directory (it is not loaded;
    a warning says so: pass "./name" for it). Anything else is a path
    ("folder"): a preset folder, or a training run's folder (its `preset/`)."""
    text = str(name_or_path)
    bare = isinstance(name_or_path, str) and not any(sep in text for sep in ("/", "\\")) and text not in (".", "..")
    if bare and text in list_presets():
        if pathlib.Path(text).exists():
            warnings.warn(f"{text!r} is the shipped preset {SHIPPED / text}; the folder {text} in the working "
                          f"directory was not loaded (pass './{text}' to load it).", stacklevel=3)
        return SHIPPED / text, "shipped"
    path = pathlib.Path(name_or_path)
    if path.is_dir() and not (path / METADATA).exists() and (path / "preset" / METADATA).exists():
        return path / "preset", "folder"  # a training run's folder
    if path.is_dir():
        return path, "folder"
    raise PresetError(
        f"unknown preset {text!r}: not a preset folder, and not one of the shipped "
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PresetError(f"{path}: not a readable JSON file ({error}).") from error


def _check_metadata(metadata, path):
    """A PresetError naming metadata.json unless it holds what loading needs."""
    where = path / METADATA

    def wrong(what):
        return PresetError(f"{where}: {what}; a preset's metadata is written by glu_zoo.presets.save.")

    if not isinstance(metadata, dict):
        raise wrong(f"expected a JSON object; got {type(metadata).__name__}")
    for key in ("class_name", "weights_sha256", "config_sha256"):
        if not isinstance(metadata.get(key), str):
            raise wrong(f"{key!r} is {'missing' if key not in metadata else repr(metadata[key])}, not a string")
    expected = metadata.get("expected_output")
    if not isinstance(expected, dict) or not isinstance(expected.get("values"), list):
        raise wrong("'expected_output' with its 'values' (the outputs on the fixed input) is missing")
    shape, dtype, high = expected.get("input_shape"), expected.get("input_dtype", "float32"), expected.get("input_high")
    if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
            and math.prod(shape) <= MAX_FIXED_INPUT_SIZE):
        raise wrong(f"'expected_output' 'input_shape' must be a list of positive sizes, at most "
                    f"{MAX_FIXED_INPUT_SIZE} values in all; got {shape!r}")
    if dtype not in ("float32", "int32", "int64") or (dtype != "float32") != isinstance(high, int):
        raise wrong(f"'expected_output' input_dtype {dtype!r} / input_high {high!r} are not a float32 input "
                    f"or integer ids with their bound")
    try:
        recorded = np.asarray(expected["values"], dtype="float64")
    except (TypeError, ValueError):
        raise wrong("'expected_output' 'values' is not an array of numbers") from None
    if recorded.ndim == 0 or recorded.shape[0] != FIXED_INPUT_BATCH or not np.all(np.isfinite(recorded)):
        raise wrong(f"'expected_output' 'values' must be finite numbers, {FIXED_INPUT_BATCH} rows (one per "
                    f"fixed input); got shape {recorded.shape}")
    return metadata


def get_metadata(name_or_path):
    """The metadata.json of a preset, as a dict (checked: a PresetError names
    the file and what is missing or wrong)."""
    path, _ = resolve(name_or_path)
    if not (path / METADATA).is_file():
        raise PresetError(f"preset {path}: missing file {METADATA}.")
    return _check_metadata(_read_json(path / METADATA), path)


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
    inputs; an axis of unknown size gets FIXED_INPUT_LENGTH. A model of
    several named inputs says which array its `preset_outputs` takes, with
    `preset_input_spec()` (token ids (T,) for a language model)."""
    import keras

    own = getattr(model, "preset_input_spec", None)
    if own is not None:
        shape, dtype, high = own()
        return tuple(FIXED_INPUT_LENGTH if d is None else int(d) for d in shape), dtype, high
    spec = model.inputs[0]
    shape = tuple(FIXED_INPUT_LENGTH if d is None else int(d) for d in spec.shape[1:])
    dtype = keras.backend.standardize_dtype(spec.dtype)
    high = getattr(model, "vocabulary_size", None) if dtype.startswith(("int", "uint")) else None
    return shape, dtype, high


def _outputs(model, x):
    """The outputs recorded for the fixed input: `model.preset_outputs(x)` where the model defines it
    (a model whose call is random, such as a generator drawing its own noise), else `model(x)`."""
    import keras

    probe = getattr(model, "preset_outputs", None)
    out = probe(x) if probe is not None else model(x, training=False)
    return keras.ops.convert_to_numpy(out).astype("float64")


def expected_output_error(model, metadata):
    """Largest absolute difference between the model's outputs on the fixed
    input and the outputs recorded in the preset's metadata."""
    expected = metadata["expected_output"]
    recorded = np.asarray(expected["values"], dtype="float64")
    x = fixed_input(expected["input_shape"], expected.get("input_dtype", "float32"), expected.get("input_high"))
    import keras

    out = _outputs(model, x)
    if out.shape != recorded.shape:
        raise PresetError(f"expected outputs of shape {recorded.shape}; the model gives {out.shape}.")
    return float(np.max(np.abs(out - recorded)))


def save(model, path, metadata=None):
    """Write `model` as a preset folder at `path`; return the path.

    `metadata` (recipe, data split, test metrics, ...) is extended with the
    class, parameter count, Keras version, backend, date, sha256 of the
    weights and of the config, and the outputs for the fixed input.
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
    values = _outputs(model, x)
    full = {
        **(metadata or {}),
        "class_name": type(model).__name__,
        "parameters": int(model.count_params()),
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "weights_sha256": _sha256(path / WEIGHTS),
        "config_sha256": _sha256(path / CONFIG),
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
# The recorded outputs must be met within this fraction of their scale,
# 1 + max |value|: loose enough for float32 matrix products in TF32 on GPUs
# (about 1e-3 relative), tight enough for any other weights or config (a
# layer less, another preset's weights: differences of order 1).
OUTPUT_TOLERANCE = 1e-2
_DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy")


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


def _check_plain(value, where):
    """Plain JSON values only: no mapping, so no serialized object (a layer, a
    Lambda, a function, a module) can reach a constructor."""
    if isinstance(value, list):
        for item in value:
            _check_plain(item, where)
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        name = value.get("class_name", "a mapping") if isinstance(value, dict) else type(value).__name__
        raise PresetError(f"{where} holds {name!r}: a preset's config holds plain values only (numbers, strings, "
                          f"lists), never a layer, Lambda, function or module. Nothing was built.")


_OBJECT_KEYS = ("class_name", "module", "registered_name")


def _check_data(value, where):
    """JSON data (objects, lists, plain values) that the model's own code reads
    as data: a mapping is allowed, but none that looks like a serialized Keras
    object (a key class_name, module or registered_name)."""
    if isinstance(value, dict):
        found = [key for key in value if key in _OBJECT_KEYS or not isinstance(key, str)]
        if found:
            raise PresetError(f"{where} holds a mapping with key {found[0]!r}: a data entry of a preset's config "
                              f"holds JSON data only, never a serialized object. Nothing was built.")
        for key, item in value.items():
            _check_data(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for item in value:
            _check_data(item, where)
    else:
        _check_plain(value, where)


def _constructor_arguments(config, path, data_keys=()):
    """The model's constructor arguments from config.json, plain values only;
    `dtype` may be a Keras dtype policy's serialization (its name is used).
    The keys of `data_keys` (the model class's `DATA_CONFIG`, such as
    RecTable's fitted table encoder) may hold JSON objects, which that class
    reads as data (`_check_data`)."""
    where = path / CONFIG
    arguments = config.get("config")
    if not isinstance(arguments, dict):
        raise PresetError(f"{where}: 'config' must be a JSON object of constructor arguments; got {arguments!r}.")
    plain = {}
    for key, value in arguments.items():
        if key == "dtype" and isinstance(value, dict):
            inner = value.get("config")
            if not (value.get("module") == "keras" and value.get("class_name") in _DTYPE_POLICIES
                    and set(value) <= {"module", "class_name", "config", "registered_name"}
                    and value.get("registered_name") is None and isinstance(inner, dict)
                    and set(inner) == {"name"} and isinstance(inner["name"], str)):
                raise PresetError(f"{where}: config['dtype'] must be a dtype policy name or a keras "
                                  f"{' / '.join(_DTYPE_POLICIES)}; got {value!r}. Nothing was built.")
            value = inner["name"]
        (_check_data if key in data_keys else _check_plain)(value, f"{where}: config[{key!r}]")
        plain[key] = value
    return plain


def _stored_shapes(path):
    """{dataset name: shape} of the weights file, read without its data; a
    PresetError for an unreadable file or a link (an HDF5 link can point
    into another file)."""
    import h5py

    where = path / WEIGHTS
    shapes, links = {}, []

    def visit(name, link):
        if not isinstance(link, h5py.HardLink):
            links.append(f"{name} ({type(link).__name__})")

    try:
        with h5py.File(where, "r") as f:
            f.visititems_links(visit)
            if not links:
                f.visititems(lambda name, obj: shapes.update({name: obj.shape})
                             if isinstance(obj, h5py.Dataset) else None)
    except (OSError, RuntimeError, ValueError) as error:
        raise PresetError(f"{where}: not a readable HDF5 weights file ({error}). Nothing was loaded.") from None
    if links:
        raise PresetError(f"{where}: holds links, which a weights file never does: {', '.join(links[:3])}.")
    return shapes


@contextlib.contextmanager
def unallocated(build):
    """The model that `build()` makes, with its variables left uninitialized:
    their shapes, no memory (built in a `keras.StatelessScope` that does not
    initialize). On exit they are dropped from the queue where Keras keeps
    uninitialized variables, so no later scope allocates them.

        with unallocated(lambda: glu_zoo.models.build("trecvit_l")) as model:
            sum(math.prod(w.shape) for w in model.weights)  # 471,797,136
    """
    import keras
    from keras.src.backend.common import global_state  # the queue; no public API for it

    pending = global_state.get_global_attribute("uninitialized_variables", [], set_to_default=True)
    before = len(pending)
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = build()
        yield model
    finally:
        del pending[before:]


def _model_shapes(cls, arguments, path):
    """The shapes of the weights that `cls(**arguments)` would create, without allocating them."""
    try:
        with unallocated(lambda: cls.from_config(dict(arguments))) as probe:
            return [tuple(int(d) for d in v.shape) for v in probe.weights]
    except Exception as error:
        raise PresetError(f"{path / CONFIG}: cannot build the model ({type(error).__name__}: {error}).") from error


def _check_shapes(model_shapes, stored, path):
    """Every weight of the model in the file and every weight of the file
    in the model, by shape (the file's names are Keras's, not the layers')."""
    from collections import Counter

    wanted, held = Counter(model_shapes), Counter(stored.values())
    if wanted == held:
        return
    missing, unused = wanted - held, held - wanted
    raise PresetError(
        f"{path / CONFIG} builds a model whose {len(model_shapes)} weights do not match the {len(stored)} "
        f"in {path / WEIGHTS}: the model's weights of shapes {sorted(missing.elements())[:4]} are not in the "
        f"file, the file's of shapes {sorted(unused.elements())[:4]} are not in the model. Nothing was loaded."
    )


def load(name_or_path, model_class=None):
    """The model of a preset, checked before and after its weights are loaded.

    A bare name is a shipped preset; anything else a folder (see `resolve`).
    `model_class`: the class to build; the preset's config must name it or a
    subclass registered in package "glu_zoo". Without it, the config's class
    is looked up among the registered "glu_zoo" models only, and built with
    its own `from_config` from plain values (no Keras deserialization).
    Before any weight is allocated: the sha256 of config.json and of
    model.weights.h5 must be those in metadata.json, and the weights the
    config would build must have exactly the shapes stored in the file.
    After loading, the outputs on the fixed input must be the recorded ones
    (within `OUTPUT_TOLERANCE` of their scale). Anything else is a
    `PresetError` (a ValueError) naming the file and what is wrong.
    """
    path, _ = resolve(name_or_path)
    for name in (CONFIG, WEIGHTS, METADATA):
        if not (path / name).is_file():
            raise PresetError(f"preset {path}: missing file {name}; a preset holds {CONFIG}, {WEIGHTS}, {METADATA}.")
    metadata = _check_metadata(_read_json(path / METADATA), path)
    for name, key in ((WEIGHTS, "weights_sha256"), (CONFIG, "config_sha256")):
        actual = _sha256(path / name)
        if actual != metadata[key]:
            raise PresetError(
                f"{path / name}: sha256 {actual} does not match {metadata[key]} recorded in "
                f"{path / METADATA}; the file is corrupt or altered. Nothing was loaded."
            )
    config = _read_json(path / CONFIG)
    class_name = config.get("class_name") if isinstance(config, dict) else None
    if class_name != metadata["class_name"] or not str(class_name).isidentifier():
        raise PresetError(
            f"{path / CONFIG}: class {class_name!r} does not match {metadata['class_name']!r} "
            f"recorded in {path / METADATA}."
        )
    cls = _model_class(class_name, path, model_class)
    arguments = _constructor_arguments(config, path, getattr(cls, "DATA_CONFIG", ()))
    _check_shapes(_model_shapes(cls, arguments, path), _stored_shapes(path), path)
    try:
        model = cls.from_config(arguments)
        model.load_weights(path / WEIGHTS)
    except Exception as error:
        raise PresetError(f"preset {path}: cannot load ({type(error).__name__}: {error}).") from error
    try:
        error = expected_output_error(model, metadata)
    except Exception as failure:
        raise PresetError(f"preset {path}: the model cannot run on the fixed input recorded in {path / METADATA} "
                          f"({type(failure).__name__}: {failure}).") from failure
    scale = 1.0 + float(np.max(np.abs(metadata["expected_output"]["values"])))
    if not error <= OUTPUT_TOLERANCE * scale:
        raise PresetError(
            f"preset {path}: the model's outputs on the fixed input differ from those recorded in "
            f"{path / METADATA} by up to {error:.3g} (allowed {OUTPUT_TOLERANCE * scale:.3g}); its config "
            f"and weights do not make the model that was saved."
        )
    return model
