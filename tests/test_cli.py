import json
import os
import subprocess
import sys

import pytest

from glu_zoo import cli
from tests.conftest import BACKEND


def test_list_shows_recipes_and_presets_with_metrics(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "recipes:" in out and "activator_vit_digits" in out and "target accuracy >= 0.975" in out
    assert "presets:" in out and "test accuracy 0.9" in out


def test_evaluate_json(capsys):
    assert cli.main(["evaluate", "activator_vit_reduced_digits", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["backend"] == BACKEND and result["metrics"]["accuracy"] > 0.96


def test_unknown_recipe_is_an_error_listing_the_known_ones(capsys, tmp_path):
    assert cli.main(["train", "vit_mnist", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'vit_mnist'; known: activator_vit_digits" in err


def test_unknown_preset_is_an_error(capsys):
    assert cli.main(["evaluate", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("other", [b for b in ("jax", "tensorflow", "torch") if b != BACKEND][:1])
def test_backend_flag_is_set_before_keras_is_imported(other):
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-m", "glu_zoo.cli", "evaluate", "vit_digits", "--json", "--backend", other],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1])["backend"] == other
