"""Train the shipped presets with their recipes and copy them into glu_zoo/presets/.

    python tools/make_presets.py                       # the shipped presets, on JAX
    python tools/make_presets.py vit_digits --backend tensorflow
    python tools/make_presets.py --record-config-sha256   # presets saved before it was recorded

Each recipe runs `glu-zoo train` in a fresh process (so the backend is set
before Keras is imported) into runs/presets/<recipe>. A preset is copied only
if it reached its recipe's target and is under 2 MB; nothing is hand-edited.
"""

import argparse
import hashlib
import json
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "glu_zoo" / "presets"
MAX_BYTES = 2 * 1024 * 1024
SHIPPED_RECIPES = ["activator_vit_digits", "activator_vit_reduced_digits", "lru_listops", "vit_digits",
                   "trecvit_moving_digits", "rectable_wine", "rectable_breast_cancer", "rectable_diabetes",
                   "gru_svm_wdbc", "gru_softmax_wdbc", "mosaic_bert_pydoc", "bilinear_digits",
                   "glu_transformer_bilinear_pydoc", "glu_transformer_geglu_pydoc"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="*", default=SHIPPED_RECIPES)
    parser.add_argument("--backend", default="jax", choices=("jax", "tensorflow", "torch"))
    parser.add_argument("--runs", default=str(ROOT / "runs" / "presets"))
    parser.add_argument("--record-config-sha256", action="store_true",
                        help="add the sha256 of config.json to the named shipped presets' metadata (glu_zoo "
                             "records it since issue 9); nothing else changes, nothing is trained")
    args = parser.parse_args()
    if args.record_config_sha256:
        for name in args.recipes:
            record_config_sha256(SHIPPED / name)
        return
    failed = []
    for name in args.recipes:
        out = pathlib.Path(args.runs) / name
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "glu_zoo.cli", "train", name, "--out", str(out), "--backend", args.backend,
             "--quiet"],
            check=True,
        )
        result = json.loads((out / "result.json").read_text())
        size = sum(f.stat().st_size for f in (out / "preset").iterdir())
        if not result["reached"] or size > MAX_BYTES:
            failed.append(f"{name}: {result['metrics']} (target {result['target']}), {size} bytes")
            continue
        target = SHIPPED / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(out / "preset", target)
        print(f"shipped {name}: {result['metrics']}, {size / 1024:.0f} KiB", flush=True)
    if failed:
        sys.exit("not shipped:\n  " + "\n  ".join(failed))


def record_config_sha256(folder):
    """Add `config_sha256` to a preset's metadata.json, keys and values otherwise as they are."""
    metadata_path = folder / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["config_sha256"] = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
    metadata_path.write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")
    print(f"{folder.name}: config_sha256 {metadata['config_sha256']}")


if __name__ == "__main__":
    main()
