import json
import os
import subprocess
import sys

import pytest

from glu_zoo import cli
from tests.conftest import BACKEND
from tests.test_presets import _copy, _tamper


def test_list_shows_recipes_and_presets_with_metrics(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "recipes:" in out and "activator_vit_digits" in out and "target accuracy >= 0.975" in out
    assert "presets:" in out and "test accuracy 0.9" in out


@pytest.mark.slow
def test_evaluate_json(capsys):
    assert cli.main(["evaluate", "activator_vit_reduced_digits", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["backend"] == BACKEND and result["metrics"]["accuracy"] > 0.96
    assert result["source"] == "shipped" and result["preset"].endswith("activator_vit_reduced_digits")


def test_evaluate_says_which_preset_it_loaded_and_wants_a_recipe(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _copy("vit_digits", tmp_path)
    _tamper(tmp_path / "vit_digits", metadata=lambda m: m.pop("recipe"))
    assert cli.main(["evaluate", "./vit_digits"]) == 2
    err = capsys.readouterr().err
    assert "vit_digits/metadata.json: no usable 'recipe' (KeyError" in err and len(err.strip().splitlines()) == 1
    with pytest.warns(UserWarning, match=r"'vit_digits' is the shipped preset"):
        assert cli.main(["evaluate", "vit_digits"]) == 0  # the bare name: the shipped preset, not ./vit_digits
    out = capsys.readouterr().out
    assert out.startswith("vit_digits (shipped preset ") and "glu_zoo/presets/vit_digits) on " in out


def test_unknown_recipe_is_an_error_listing_the_known_ones(capsys, tmp_path):
    assert cli.main(["train", "vit_mnist", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'vit_mnist'; known: activator_vit_digits" in err


def test_a_tampered_preset_is_an_error_and_nothing_is_printed_on_stdout(capsys, tmp_path):
    path = _copy("vit_digits", tmp_path)
    _tamper(path, config=lambda c: c["config"].update(num_layers=3))  # the probe's case: outputs 6.6 off
    assert cli.main(["evaluate", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("glu-zoo: error: ") and "whose 56 weights do not match the 72" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_unknown_preset_is_an_error(capsys):
    assert cli.main(["evaluate", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("other", [b for b in ("jax", "tensorflow", "torch") if b != BACKEND][:1])
def test_backend_flag_is_set_before_keras_is_imported(other):
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-m", "glu_zoo.cli", "evaluate", "vit_digits", "--json", "--backend", other],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1])["backend"] == other


def test_train_options_reach_train(capsys, tmp_path):
    (tmp_path / "result.json").write_text("{}")
    assert cli.main(["train", "activator_vit_digits", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"train: {tmp_path} holds a finished run" in err and "(glu-zoo train --overwrite)" in err
    assert cli.main(["train", "activator_vit_digits", "--out", str(tmp_path / "new"), "--backup-interval", "-1"]) == 2
    assert "`backup_interval` must be a number in [0.0, inf); got -1.0" in capsys.readouterr().err


NOISE = [  # what TensorFlow 2.21 printed on a CPU machine at the first `glu-zoo train`
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1795982363.214295    8387 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.\n",
    "I0000 00:00:1795982363.214002    8387 port.cc:153] oneDNN custom operations are on.\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow.\n",
    "E0000 00:00:1795982373.081020    8387 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
    "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda\n",
]
KEPT = [
    "E0000 00:00:1795982373.081020    8387 executor.cc:12] an error that is not about CUDA\n",
    "Traceback (most recent call last):\n",
    "UserWarning: a Python warning\n",
]


def test_quiet_backend_logs_drop_the_backends_noise_and_keep_the_rest(capfd, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    with cli._quiet_backend_logs():
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
        for line in NOISE + KEPT:
            os.write(2, line.encode())
    assert capfd.readouterr().err == "".join(KEPT)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user's own setting: nothing is dropped
    with cli._quiet_backend_logs():
        for line in NOISE:
            os.write(2, line.encode())
    assert capfd.readouterr().err == "".join(NOISE) and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow, the default backend, prints the CUDA probes")
def test_a_first_training_run_prints_no_cuda_noise(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-m", "glu_zoo.cli", "train", "activator_vit_digits", "--epochs", "1",
                          "--out", str(tmp_path), "--quiet"],
                         capture_output=True, text=True, env={**env, "KERAS_BACKEND": BACKEND})
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"activator_vit_digits on {BACKEND}: test accuracy" in run.stdout
    assert "cuInit" not in run.stderr and "cuda" not in run.stderr.lower(), run.stderr[-3000:]


def test_interpret_a_bilinear_preset_writes_its_plots_and_json(capsys, tmp_path):
    assert cli.main(["interpret", "bilinear_digits", "--out", str(tmp_path), "--json", "-k", "2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["analysis"] == "bilinear" and result["backend"] == BACKEND and result["components"] == 64
    assert [len(row["top_eigenvalues"]) for row in result["outputs"]] == [2] * 10
    # The truncated model at full rank is the model; the recipe's target holds for both.
    assert result["accuracy_against_k"]["64"] == result["full_accuracy"] >= 0.96
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy_against_k.png", "eigenspectrum.png",
                                                         "eigenvectors.png"]
    assert cli.main(["interpret", "bilinear_digits"]) == 0
    assert "output 0: top eigenvalues" in capsys.readouterr().out


def test_interpret_refuses_a_preset_with_no_glu(capsys):
    assert cli.main(["interpret", "vit_digits"]) == 2
    err = capsys.readouterr().err
    assert "preset 'vit_digits' holds a ViT with no GLU feed-forward layer" in err


@pytest.mark.slow
def test_interpret_a_language_model_preset_reads_its_glu_neurons(capsys, tmp_path):
    assert cli.main(["interpret", "mosaic_bert_pydoc", "--out", str(tmp_path), "--json", "-k", "4"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["analysis"] == "logit_lens" and result["candidates"] == "256 token ids"
    assert [layer["name"] for layer in result["layers"]] == ["encoder_layer_0/mlp", "encoder_layer_1/mlp"]
    assert all(len(n["tokens"]) == 4 for layer in result["layers"] for n in layer["neurons"])
    # The ablation is measured on the recipe's test split, beside as many random neurons.
    assert result["ablation"]["tokens"] > 0 and "random_baseline" in result["ablation"]
    assert (tmp_path / "top_tokens.png").exists()
