"""Shazeer's GLU-variant study (arXiv 2002.05202, Table 1) reproduced at CPU size.

Trains the recipe `glu_transformer_<ffn>_pydoc` of every FFN over several
seeds (each a whole run from scratch with `glu_zoo.training.train`; runs are
kept under --runs and reused, an interrupted one resumes), then measures the
held-out log-perplexity of each trained model exactly: the mean token
cross-entropy (nats) over every real target token of the test split. Prints
and writes the table (mean ± standard deviation over the seeds, beside the
paper's 65k-step figures), a bar plot, and the rank agreement with the paper.

    python tools/ffn_study.py                          # 10 FFNs × 3 seeds, the current backend
    python tools/ffn_study.py --ffns relu,swiglu --seeds 0 --epochs 1   # a smoke run
    python tools/ffn_study.py --write docs/benchmarks.md --plot docs/ffn_study.png
"""

import argparse
import dataclasses
import json
import math
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# Table 1 of the paper: held-out log-perplexity after 65,536 steps (mean of 4 runs, std) and 524,288 steps.
PAPER = {"relu": (1.997, 0.005, 1.677), "gelu": (1.983, 0.005, 1.679), "swish": (1.994, 0.003, 1.683),
         "glu": (1.982, 0.006, 1.663), "bilinear": (1.960, 0.005, 1.648), "reglu": (1.953, 0.003, 1.645),
         "geglu": (1.942, 0.004, 1.633), "swiglu": (1.944, 0.010, 1.636)}
BLOCK = "ffn_study"
HEADING = "GLU variants in a T5-style Transformer (`tools/ffn_study.py`)"


def log_perplexity(model, x, y, batch_size=256):
    """Mean cross-entropy (nats) over the real target tokens (label > 0), summed exactly over the batches."""
    import keras

    total, count = 0.0, 0
    n = len(y)
    for start in range(0, n, batch_size):
        batch = {k: v[start:start + batch_size] for k, v in x.items()}
        logits = keras.ops.convert_to_numpy(model.predict_on_batch(batch)).astype(np.float64)
        labels = y[start:start + batch_size]
        top = logits.max(-1, keepdims=True)
        log_z = top[..., 0] + np.log(np.exp(logits - top).sum(-1))
        picked = np.take_along_axis(logits, labels[..., None].astype(np.int64), -1)[..., 0]
        real = labels > 0
        total += float(((log_z - picked) * real).sum())
        count += int(real.sum())
    return total / count, count


def unigram_baseline(y_train, y_test, vocabulary_size):
    """Cross-entropy on the test targets of the training targets' token frequencies (add-one):
    what a model that ignores its inputs and context reaches."""
    counts = np.bincount(y_train[y_train > 0], minlength=vocabulary_size).astype(np.float64) + 1.0
    counts[0] = 0.0
    p = counts / counts.sum()
    test = y_test[y_test > 0]
    return float(-np.log(p[test]).mean())


def run_one(ffn, seed, epochs, runs):
    import keras

    from glu_zoo import data as data_lib
    from glu_zoo import presets, recipes, training

    recipe = dataclasses.replace(recipes.get(f"glu_transformer_{ffn}_pydoc"), seed=seed)
    out = pathlib.Path(runs) / ffn / f"seed{seed}{'' if epochs is None else f'_epochs{epochs}'}"
    result_path = out / "result.json"
    start = time.perf_counter()
    if result_path.exists():
        result = json.loads(result_path.read_text())
        trained_seconds = None
    else:
        result = training.train(recipe, epochs=epochs, out=out, verbose=0)
        trained_seconds = time.perf_counter() - start
    model = presets.load(result["preset"])
    splits = data_lib.load(recipe.data, **recipe.data_options)
    value, tokens = log_perplexity(model, *splits.test)
    row = {"ffn": ffn, "seed": seed, "epochs": epochs or recipe.epochs, "backend": keras.backend.backend(),
           "parameters": int(model.count_params()), "test_log_perplexity": value, "test_tokens": tokens,
           "validation_log_perplexity": log_perplexity(model, *splits.validation)[0],
           "examples_per_second": result.get("examples_per_second"), "train_seconds": trained_seconds,
           "unigram_baseline": unigram_baseline(splits.train[1], splits.test[1], splits.num_classes)}
    keras.backend.clear_session()
    return row


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def table(rows):
    by_ffn = {}
    for r in sorted(rows, key=lambda r: list(PAPER).index(r["ffn"]) if r["ffn"] in PAPER else len(PAPER)):
        by_ffn.setdefault(r["ffn"], []).append(r)
    lines = ["| FFN | parameters | test log-perplexity (ours, mean ± std) | seeds | paper 65k steps | paper 524k steps |",
             "|---|---|---|---|---|---|"]
    means = {}
    for ffn, group in by_ffn.items():
        values = np.array([r["test_log_perplexity"] for r in group])
        means[ffn] = values.mean()
        spread = f" ± {values.std(ddof=1):.4f}" if len(values) > 1 else ""
        paper = PAPER.get(ffn)
        paper_65k = f"{paper[0]:.3f} ({paper[1]:.3f})" if paper else "— (ours)"
        paper_524k = f"{paper[2]:.3f}" if paper else "—"
        lines.append(f"| {ffn} | {group[0]['parameters']:,} | {values.mean():.4f}{spread} | {len(values)} | "
                     f"{paper_65k} | {paper_524k} |")
    shared = [f for f in PAPER if f in means]
    summary = []
    if len(shared) >= 3:
        rho = spearman([means[f] for f in shared], [PAPER[f][0] for f in shared])
        ours = sorted(shared, key=lambda f: means[f])
        paper = sorted(shared, key=lambda f: PAPER[f][0])
        summary.append(f"Ranking, best first — ours: {', '.join(ours)}; the paper's (65k): {', '.join(paper)}; "
                       f"Spearman ρ = {rho:.2f} over the {len(shared)} FFNs of the paper.")
        glu = [f for f in shared if f not in ("relu", "gelu", "swish")]
        plain = [f for f in shared if f in ("relu", "gelu", "swish")]
        if glu and plain:
            summary.append(f"Mean of the GLU variants {np.mean([means[f] for f in glu]):.4f} against the two-matrix "
                           f"FFNs {np.mean([means[f] for f in plain]):.4f} (paper: "
                           f"{np.mean([PAPER[f][0] for f in glu]):.3f} against "
                           f"{np.mean([PAPER[f][0] for f in plain]):.3f}).")
    baseline = rows[0]["unigram_baseline"]
    summary.append(f"A model that ignores its input (the training targets' byte frequencies): {baseline:.4f}.")
    return "\n".join(lines), means, summary


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_ffn = {}
    for r in rows:
        by_ffn.setdefault(r["ffn"], []).append(r["test_log_perplexity"])
    names = list(by_ffn)
    means = [np.mean(by_ffn[n]) for n in names]
    stds = [np.std(by_ffn[n], ddof=1) if len(by_ffn[n]) > 1 else 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    colors = ["tab:gray" if n in ("relu", "gelu", "swish") else "tab:blue" if n in PAPER else "tab:orange"
              for n in names]
    ax.bar(names, means, yerr=stds, color=colors, capsize=3)
    low = min(m - s for m, s in zip(means, stds))
    high = max(m + s for m, s in zip(means, stds))
    ax.set_ylim(low - 0.2 * (high - low + 1e-3), high + 0.2 * (high - low + 1e-3))
    ax.set_ylabel("test log-perplexity (nats)")
    ax.set_title("FFN variants, T5-style, span corruption of Python's docs (grey: two-matrix, orange: ours)")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ffns", default=",".join(["relu", "gelu", "swish", "glu", "bilinear", "reglu", "geglu",
                                                     "swiglu", "goglu", "xswiglu"]))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs (smoke runs)")
    parser.add_argument("--runs", default="runs/ffn_study")
    parser.add_argument("--write", metavar="PATH", help="put the table between this tool's markers in PATH")
    parser.add_argument("--plot", metavar="PNG", help="write the bar plot there")
    args = parser.parse_args()
    from benchlib import write_block

    import keras
    from keras.utils import Progbar

    ffns, seeds = args.ffns.split(","), [int(s) for s in args.seeds.split(",")]
    os.makedirs(args.runs, exist_ok=True)
    log = pathlib.Path(args.runs) / f"results_{keras.backend.backend()}.jsonl"
    rows, bar = [], Progbar(len(ffns) * len(seeds), unit_name="run")
    start = time.perf_counter()
    for seed in seeds:  # every FFN at one seed before the next seed: a partial study compares them all
        for ffn in ffns:
            row = run_one(ffn, seed, args.epochs, args.runs)
            rows.append(row)
            with open(log, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{ffn} seed {seed}: test log-perplexity {row['test_log_perplexity']:.4f}", file=sys.stderr,
                  flush=True)
            bar.add(1)
    text, _, summary = table(rows)
    epochs = rows[0]["epochs"]
    trained = [r["train_seconds"] for r in rows if r["train_seconds"] is not None]
    reused = len(rows) - len(trained)
    head = (f"`python tools/ffn_study.py --seeds {args.seeds}` on {keras.backend.backend()} (this 2-core CPU; "
            f"{len(trained)} runs trained in {sum(trained):.0f} s"
            f"{f', {reused} reused from earlier invocations' if reused else ''}; this invocation "
            f"{time.perf_counter() - start:.0f} s): recipes `glu_transformer_<ffn>_pydoc`, {epochs} epochs of 512 "
            f"steps (batch 32), each seed a whole run from scratch; test log-perplexity = the mean cross-entropy "
            f"over the {rows[0]['test_tokens']:,} real target tokens of the test split (nats). The paper's column: "
            f"T5-base on C4 (Table 1), not comparable in value, only in order.")
    text = "\n\n".join([head, text, "\n".join(f"- {s}" for s in summary)])
    print(text)
    if args.plot:
        plot(rows, args.plot)
    if args.write:
        write_block(args.write, BLOCK, HEADING, text)


if __name__ == "__main__":
    main()
