import hashlib
import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from glu_zoo import models, presets, recipes, training
from glu_zoo.presets import PresetError

SHIPPED = ["activator_vit_digits", "activator_vit_reduced_digits", "lru_listops", "vit_digits", "trecvit_moving_digits",
           "gru_svm_wdbc", "gru_softmax_wdbc", "bilinear_digits"]
TABLES = ["rectable_wine", "rectable_breast_cancer", "rectable_diabetes"]  # generators, scored on sampled tables
LANGUAGE = ["mosaic_bert_pydoc", "glu_transformer_bilinear_pydoc", "glu_transformer_geglu_pydoc"]  # language models, scored by their held-out loss


def test_the_shipped_presets_are_listed():
    assert set(SHIPPED + TABLES + LANGUAGE) == set(presets.list_presets())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_preset_reproduces_its_outputs_and_test_accuracy(name):
    metadata = presets.get_metadata(name)
    cls = getattr(models, metadata["class_name"])
    model = cls.from_preset(name)
    assert presets.expected_output_error(model, metadata) <= 1e-4
    result = training.evaluate(name)
    recorded = metadata["test_metrics"]["accuracy"]
    assert abs(result["metrics"]["accuracy"] - recorded) <= 1 / result["examples"] + 1e-9  # at most one example
    assert result["metrics"]["accuracy"] >= metadata["recipe"]["target"]
    assert result["backend"] == keras.backend.backend()


@pytest.mark.parametrize("name", LANGUAGE)
def test_shipped_language_model_reproduces_its_outputs_and_held_out_loss(name):
    """A language model's preset: the recorded logits, and its recipe's test loss (at most the target)
    equal to the one recorded when it was trained, on this backend."""
    metadata = presets.get_metadata(name)
    model = getattr(models, metadata["class_name"]).from_preset(name)
    assert presets.expected_output_error(model, metadata) <= 1e-4
    result = training.evaluate(name)
    assert result["metrics"]["loss"] == pytest.approx(metadata["test_metrics"]["loss"], rel=1e-4)
    assert metadata["recipe"]["metric_mode"] == "min" and result["metrics"]["loss"] <= metadata["recipe"]["target"]


@pytest.mark.parametrize("name", TABLES)
def test_shipped_table_generator_reaches_its_recipe_on_this_backend(name):
    """A RecTable preset samples (its recipe's sampler and seed) a table that meets the recipe's
    target and limits on this backend, with the scores recorded when it was trained."""
    metadata = presets.get_metadata(name)
    model = models.RecTable.from_preset(name)
    assert presets.expected_output_error(model, metadata) <= 1e-4
    result = training.evaluate(name)
    recipe = recipes.Recipe(**metadata["recipe"])
    assert training._reached(recipe, result["metrics"]), result["metrics"]
    assert result["metrics"]["copied_share"] == 0.0
    recorded = metadata["test_metrics"]
    for key in ("shapes", "trends", "alpha_precision"):  # floating-point differences between backends only
        assert abs(result["metrics"][key] - recorded[key]) <= 0.01, (key, result["metrics"][key], recorded[key])


def test_a_table_generator_preset_holds_its_encoder_as_data_only(tmp_path, monkeypatch):
    """RecTable's config holds its fitted encoder (a JSON object: DATA_CONFIG); a serialized object
    anywhere in it, or a mapping in any other key, is refused before anything is built."""
    made = []
    monkeypatch.setattr(models.RecTable, "__init__", lambda self, *a, **k: made.append(1))
    for i, (key, edit) in enumerate([("encoder", lambda e: e.update({"spec": LAMBDA})),
                                     ("encoder", lambda e: e["state"].update({"quantiles": [LAMBDA]})),
                                     ("hidden_dims", None)]):
        path = tmp_path / str(i)
        shutil.copytree(presets.SHIPPED / TABLES[0], path)
        if edit is None:
            _tamper(path, config=lambda c: c["config"].update({key: [128, {"class_name": "Lambda"}]}))
        else:
            _tamper(path, config=lambda c: edit(c["config"]["encoder"]))
        with pytest.raises(PresetError, match=rf"config\['{key}'\].* holds (a mapping with key 'module'|"
                                              rf"'Lambda')"):
            presets.load(path)
    assert made == []


@pytest.mark.parametrize("name", SHIPPED + TABLES + LANGUAGE)
def test_shipped_preset_metadata(name, tmp_path):
    m = presets.get_metadata(name)
    for key in ("recipe", "data_split", "test_metrics", "parameters", "keras_version", "backend", "date",
                "weights_sha256", "expected_output"):
        assert key in m, key
    size = sum(f.stat().st_size for f in (presets.SHIPPED / name).iterdir())
    assert size < 2 * 1024 * 1024


def _copy(name, tmp_path):
    target = tmp_path / name
    shutil.copytree(presets.SHIPPED / name, target)
    return target


def test_altered_weights_are_refused_before_loading(tmp_path):
    path = _copy("activator_vit_digits", tmp_path)
    weights = path / "model.weights.h5"
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(PresetError, match=r"model\.weights\.h5: sha256 [0-9a-f]{64} does not match [0-9a-f]{64}"):
        presets.load(path)


def test_missing_file_is_named(tmp_path):
    path = _copy("vit_digits", tmp_path)
    (path / "config.json").unlink()
    with pytest.raises(PresetError, match=r"missing file config\.json"):
        models.ViT.from_preset(path)


def test_unknown_name_lists_the_shipped_presets():
    with pytest.raises(PresetError, match=r"unknown preset 'vit_cifar'.*activator_vit_digits, activator_vit_reduced"):
        presets.load("vit_cifar")


def test_wrong_class_is_refused():
    with pytest.raises(PresetError, match=r"holds a ActivatorViT, not a ViT"):
        models.ViT.from_preset("activator_vit_digits")


def test_a_base_class_loads_the_subclass_that_the_preset_names():
    model = models.ZooModel.from_preset("vit_digits")
    assert type(model) is models.ViT
    assert presets.expected_output_error(model, presets.get_metadata("vit_digits")) <= 1e-4


def _tamper(path, config=None, metadata=None, weights=None):
    """Edit a preset folder as a hostile user would: change its config
    (`config(dict)` edits it in place), metadata or weights (bytes), then
    record the files' new sha256 in the metadata."""
    if config is not None:
        edited = json.loads((path / "config.json").read_text())
        config(edited)
        (path / "config.json").write_text(json.dumps(edited))
    if weights is not None:
        (path / "model.weights.h5").write_bytes(weights)
    m = json.loads((path / "metadata.json").read_text())
    if metadata is not None:
        metadata(m)
    if isinstance(m, dict):
        m["config_sha256"] = hashlib.sha256((path / "config.json").read_bytes()).hexdigest()
        m["weights_sha256"] = hashlib.sha256((path / "model.weights.h5").read_bytes()).hexdigest()
    (path / "metadata.json").write_text(json.dumps(m))


def _rename_class(path, class_name, registered_name=None):
    """A preset whose config and metadata both name another class."""
    def rename(config):
        config["class_name"] = class_name
        config["registered_name"] = registered_name or f"glu_zoo>{class_name}"

    _tamper(path, config=rename, metadata=lambda m: m.update(class_name=class_name))


def test_an_unregistered_class_is_named(tmp_path):
    path = _copy("vit_digits", tmp_path)
    _rename_class(path, "NotAModel")
    with pytest.raises(PresetError, match=r"holds a 'NotAModel', which is not a registered glu_zoo model"):
        presets.load(path)


def test_only_glu_zoo_models_are_built_without_a_class(tmp_path):
    """A class registered by another package, or a glu_zoo layer, is not a
    glu_zoo model: a preset that names it is refused before anything is built."""
    built = []

    @keras.saving.register_keras_serializable(package="elsewhere")
    class Sneaky(keras.Model):
        @classmethod
        def from_config(cls, config):
            built.append(config)
            return cls()

    path = _copy("vit_digits", tmp_path)
    for class_name, registered in [("Sneaky", "elsewhere>Sneaky"), ("FFN", "glu_zoo>FFN")]:
        _rename_class(path, class_name, registered)
        with pytest.raises(PresetError, match=rf"holds a '{class_name}', which is not a registered glu_zoo model"):
            presets.load(path)
    assert built == []


def test_the_preset_io_imports_no_model():
    code = "import sys, glu_zoo.presets; print('glu_zoo.models' in sys.modules, 'keras' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["False", "False"]


def test_config_that_does_not_match_the_metadata_is_refused(tmp_path):
    path = _copy("vit_digits", tmp_path)
    _tamper(path, config=lambda c: c.update(class_name="ActivatorViT"))
    with pytest.raises(PresetError, match=r"config\.json: class 'ActivatorViT' does not match 'ViT'"):
        presets.load(path)


def test_an_altered_config_is_refused_by_its_sha256(tmp_path):
    path = _copy("vit_digits", tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["config"]["num_layers"] = 3
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(PresetError, match=r"config\.json: sha256 [0-9a-f]{64} does not match [0-9a-f]{64} recorded"):
        presets.load(path)


@pytest.fixture
def builds(monkeypatch):
    """The configs with which ViT was constructed during the test."""
    made = []
    init = models.ViT.__init__

    def counted(self, *args, **kwargs):
        made.append(kwargs)
        init(self, *args, **kwargs)

    monkeypatch.setattr(models.ViT, "__init__", counted)
    return made


LAMBDA = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
          "config": {"name": "x", "function": {"module": "builtins", "class_name": "function", "config": "print",
                                               "registered_name": "function"}}}
UNSAFE = {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization",
          "registered_name": "function"}


@pytest.mark.parametrize("key, payload", [("mlp", LAMBDA), ("dtype", UNSAFE), ("dtype", LAMBDA),
                                          ("image_shape", [8, 8, {"class_name": "Lambda"}]), ("pooling", {})])
def test_a_config_that_names_an_object_is_refused_before_anything_is_built(key, payload, tmp_path, builds):
    path = _copy("vit_digits", tmp_path)
    _tamper(path, config=lambda c: c["config"].update({key: payload}))
    with pytest.raises(PresetError, match=rf"config\.json: config(\['dtype'\] must be a dtype policy|\['{key}'\] "
                                          rf"holds .*plain values only)"):
        presets.load(path)
    assert builds == []


def test_a_preset_that_names_a_keras_layer_or_a_lambda_model_is_refused(tmp_path, builds):
    path = _copy("vit_digits", tmp_path)
    for class_name, registered in [("Lambda", "Lambda"), ("Functional", "Functional"), ("Sequential", None)]:
        _rename_class(path, class_name, registered)
        with pytest.raises(PresetError, match=rf"holds a '{class_name}', which is not a registered glu_zoo model"):
            presets.load(path)
    assert builds == []


def test_a_config_whose_weights_would_not_have_the_stored_shapes_is_refused_before_allocating(tmp_path, builds):
    """2³¹ hidden units would be 4 TiB of MLP kernels (4 blocks): only their
    shapes are made, in a stateless scope, and nothing is kept."""
    path = _copy("vit_digits", tmp_path)
    _tamper(path, config=lambda c: c["config"].update(mlp_dim=2**31))
    with pytest.raises(PresetError, match=r"builds a model whose 72 weights do not match the 72 in .*"
                                          r"model\.weights\.h5: the model's weights of shapes \[\(64, 2147483648\)"):
        presets.load(path)
    assert len(builds) == 1  # the shape probe only
    _tamper(path, config=lambda c: c["config"].update(mlp_dim=128, num_layers=3))
    with pytest.raises(PresetError, match=r"whose 56 weights do not match the 72 in"):
        presets.load(path)
    with keras.StatelessScope():
        pass  # on exit, Keras initializes the variables left uninitialized: the probes must have left none
    model = models.ViT(image_shape=(8, 8, 1), patch_size=2, num_layers=1, hidden_dim=8, num_heads=2, mlp_dim=8)
    assert keras.ops.convert_to_numpy(model(presets.fixed_input((8, 8, 1)))).shape == (2, 10)


def test_other_weights_of_the_same_shapes_are_refused_by_the_recorded_outputs(tmp_path):
    path = _copy("vit_digits", tmp_path)
    other = models.build("vit_digits")  # freshly initialized: right shapes, wrong values
    other.save_weights(tmp_path / "other.weights.h5")
    _tamper(path, weights=(tmp_path / "other.weights.h5").read_bytes())
    with pytest.raises(PresetError, match=r"outputs on the fixed input differ from those recorded in .*"
                                          r"metadata\.json by up to [0-9.e+-]+ \(allowed"):
        presets.load(path)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.clear() or m.update(x=1), r"'class_name' is missing, not a string"),
    (lambda m: m.pop("config_sha256"), None),
    (lambda m: m["expected_output"].pop("values"), r"'expected_output' with its 'values'"),
    (lambda m: m["expected_output"].update(values=[[1.0, float("nan")]] * 2), r"must be finite numbers"),
    (lambda m: m["expected_output"].update(input_shape=[8, -8, 1]), r"must be a list of positive sizes"),
    (lambda m: m["expected_output"].update(input_shape=[2**14, 2**14, 1]), r"at most 67108864 values in all"),
    (lambda m: m["expected_output"].update(input_dtype="int32"), r"input_dtype 'int32' / input_high None"),
])
def test_bad_metadata_is_a_preset_error_naming_the_file(edit, message, tmp_path):
    path = _copy("vit_digits", tmp_path)
    _tamper(path, metadata=edit)
    if message is None:  # the sha256 is recomputed by _tamper: remove it after
        m = json.loads((path / "metadata.json").read_text())
        m.pop("config_sha256")
        (path / "metadata.json").write_text(json.dumps(m))
        message = r"'config_sha256' is missing, not a string"
    with pytest.raises(PresetError, match=r"metadata\.json: .*" + message):
        presets.load(path)
    with pytest.raises(PresetError, match=r"metadata\.json: "):
        presets.get_metadata(path)
    (path / "metadata.json").write_text("[]")
    with pytest.raises(PresetError, match=r"metadata\.json: expected a JSON object; got list"):
        presets.load(path)


def test_a_truncated_weights_file_with_its_sha256_recomputed_is_a_preset_error(tmp_path):
    path = _copy("vit_digits", tmp_path)
    blob = (path / "model.weights.h5").read_bytes()
    _tamper(path, weights=blob[: len(blob) // 2])
    with pytest.raises(PresetError, match=r"model\.weights\.h5: not a readable HDF5 weights file"):
        presets.load(path)


def test_a_bare_name_is_the_shipped_preset_and_a_local_folder_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lru_listops").mkdir()  # empty: it must not shadow the shipped preset
    with pytest.warns(UserWarning, match=r"'lru_listops' is the shipped preset .*the folder lru_listops in the "
                                         r"working directory was not loaded \(pass './lru_listops'"):
        assert presets.resolve("lru_listops") == (presets.SHIPPED / "lru_listops", "shipped")
    with pytest.raises(PresetError, match=r"missing file config\.json"):
        presets.load("./lru_listops")
    _copy("vit_digits", tmp_path / "mine")
    assert presets.resolve(tmp_path / "mine" / "vit_digits") == (tmp_path / "mine" / "vit_digits", "folder")
    assert presets.resolve("mine/vit_digits")[1] == "folder"


def test_save_and_load_round_trip(tmp_path):
    model = models.build("activator_vit_digits", num_layers=1, hidden_dim=8, ffn_dim=8)
    path = model.save_to_preset(tmp_path / "p", metadata={"note": "test"})
    loaded = models.ActivatorViT.from_preset(path)
    x = presets.fixed_input((8, 8, 1))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)),
                               rtol=1e-6, atol=1e-6)
    m = presets.get_metadata(path)
    assert m["note"] == "test" and m["parameters"] == model.count_params()
    assert presets.expected_output_error(loaded, m) < 1e-6


def test_token_model_preset_records_integer_inputs(tmp_path):
    model = models.LRUClassifier(vocabulary_size=7, sequence_length=12, hidden_dim=8, state_dim=4, num_layers=1)
    path = model.save_to_preset(tmp_path / "p")
    m = presets.get_metadata(path)
    expected = m["expected_output"]
    assert (expected["input_dtype"], expected["input_high"], expected["input_shape"]) == ("int32", 7, [12])
    x = presets.fixed_input((12,), "int32", 7)
    assert x.dtype == np.int32 and x.min() >= 1 and x.max() < 7
    loaded = models.LRUClassifier.from_preset(path)
    assert presets.expected_output_error(loaded, m) < 1e-6
    any_length = models.LRUClassifier(vocabulary_size=7, hidden_dim=8, state_dim=4, num_layers=1)
    m = presets.get_metadata(any_length.save_to_preset(tmp_path / "q"))
    assert m["expected_output"]["input_shape"] == [presets.FIXED_INPUT_LENGTH]


def test_json_is_written_without_nan_or_infinity():
    text = presets.dump_json({"loss": float("nan"), "up": np.float32("inf"), "down": -np.inf, "n": np.int64(3),
                              "ok": [np.bool_(True), 0.5]})
    assert json.loads(text) == {"loss": "NaN", "up": "Infinity", "down": "-Infinity", "n": 3, "ok": [True, 0.5]}
    back = json.loads(text)
    assert np.isnan(float(back["loss"])) and float(back["up"]) == np.inf and float(back["down"]) == -np.inf
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in the JSON"))
