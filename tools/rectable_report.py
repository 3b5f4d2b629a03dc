"""RecTable presets scored on every backend, and their pictures.

For each RecTable preset, in one process per backend (the backend is set
before Keras is imported): `glu_zoo.training.evaluate` (a synthetic table as
large as the training split, sampled with the recipe's sampler and seed,
scored by `glu_zoo.evaluation`) and the sampling time. On the first backend
it also draws the real-against-synthetic marginals and correlation matrices
into `--figures`.

    python tools/rectable_report.py                    # prints the Markdown table
    python tools/rectable_report.py --figures docs/images --write docs/benchmarks.md
"""

import argparse
import json
import os
import subprocess
import sys
import time

from benchlib import write_block

BACKENDS = ("jax", "tensorflow", "torch")
PRESETS = ("rectable_wine", "rectable_breast_cancer", "rectable_diabetes")
SHOWN = ("c2st_auc", "mle_synthetic", "mle_real", "shapes", "trends", "alpha_precision", "beta_recall",
         "copied_share", "dcr_ratio")


def worker(name, figures):
    from glu_zoo import evaluation, presets, training
    from glu_zoo.training import _load_table

    start = time.perf_counter()
    result = training.evaluate(name)
    seconds = time.perf_counter() - start
    row = {"preset": name, "backend": result["backend"], "metrics": result["metrics"], "seconds": seconds}
    if figures:
        recipe = presets.get_metadata(name)["recipe"]
        model = presets.load(name)
        data = _load_table(training.recipes_lib.Recipe(**recipe))
        table = data["table"]
        synthetic = model.sample(len(table.train), seed=recipe["seed"], **recipe["sample_options"])
        os.makedirs(figures, exist_ok=True)
        evaluation.plot_marginals(table.train, synthetic, table.spec, os.path.join(figures, f"{name}_marginals.png"))
        evaluation.plot_correlations(table.train, synthetic, table.spec,
                                     os.path.join(figures, f"{name}_correlations.png"))
    return row


INTRO = ("Each shipped RecTable preset loaded on each backend and scored by `glu_zoo.training.evaluate`: a "
         "synthetic table as large as the training split, sampled by RK45 (rtol = atol = 1e-5) with the recipe's seed, "
         "against the real training split (C2ST: random forest, shuffled stratified 5-fold AUC; shapes, trends, "
         "α-precision, β-recall, copied rows, DCR ratio) and the real test split (mle_synthetic: a random forest "
         "trained on the synthetic table, accuracy — R² for diabetes — on the real test split; mle_real: the same "
         "forest trained on the real training split). 2-core CPU; \"evaluate s\" includes sampling (torch samples "
         "eagerly). Reproduce: `python tools/rectable_report.py --figures docs/images --write docs/benchmarks.md`.")


def table(rows):
    lines = ["| preset | backend | " + " | ".join(SHOWN) + " | evaluate s |",
             "|---|---|" + "---|" * (len(SHOWN) + 1)]
    for r in rows:
        cells = ["n/a" if r["metrics"].get(k) is None else f"{r['metrics'][k]:.3f}" for k in SHOWN]
        lines.append(f"| `{r['preset']}` | {r['backend']} | " + " | ".join(cells) + f" | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--figures", default=None, help="folder for the PNGs (drawn on the first backend)")
    parser.add_argument("--write", metavar="PATH")
    parser.add_argument("--worker", nargs=2, metavar=("NAME", "FIGURES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, figures = args.worker
        print("RESULT " + json.dumps(worker(name, figures or None)), flush=True)
        return
    rows = []
    for i, backend in enumerate(args.backends.split(",")):
        for name in args.presets.split(","):
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
            figures = args.figures if (i == 0 and args.figures) else ""
            run = subprocess.run([sys.executable, __file__, "--worker", name, figures], env=env,
                                 capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"{backend} {name} failed:\n{run.stderr[-3000:]}")
            rows.append(json.loads(run.stdout.split("RESULT ", 1)[1]))
            print(f"{backend} {name}: {rows[-1]['metrics']}", file=sys.stderr, flush=True)
    rows.sort(key=lambda r: (PRESETS.index(r["preset"]) if r["preset"] in PRESETS else 99, r["backend"]))
    text = table(rows)
    print(text)
    if args.write:
        write_block(args.write, "rectable_report", "RecTable presets on every backend (`tools/rectable_report.py`)",
                    INTRO + "\n\n" + text)


if __name__ == "__main__":
    main()
