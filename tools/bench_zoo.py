"""Train the digits recipes on every backend, side by side with the official
Activator training loop (plain PyTorch, eager), and report accuracy,
parameters, training speed and peak memory.

Each (backend, recipe) runs the full recipe in its own process, so that the
backend is set before Keras is imported and the peak memory is its own. The
official loop is the official code's model and training loop (Adam 1e-3,
batch 64, a shuffled DataLoader, 60 epochs, cross-entropy, eager PyTorch),
re-typed here for the digits arrays; it runs in the same benchmark run.

Speed, two ways:
- training batches only: images/s of `fit`'s training batches (median over
  the epochs after the first), what `train` reports;
- end to end, as the user waits for it: the wall time of a whole 12-epoch
  `train(recipe, epochs=12)` (data, model, compilation, fit, backups, test,
  preset) minus that of a 2-epoch one, so that start-up and compilation
  cancel: 10 epochs of training images over the difference. The official
  loop (model, loader, training, test) is timed the same way, in the same
  process, interleaved with the recipe (official 2, recipe 2, official 12,
  recipe 12, per repeat), and the ratio is taken per repeat.

    python tools/bench_zoo.py                       # prints the table
    python tools/bench_zoo.py --write docs/benchmarks.md
    python tools/bench_zoo.py --backends jax --recipes activator_vit_digits --no-official --end-to-end-only
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import write_block

BACKENDS = ("jax", "tensorflow", "torch")
RECIPES = ("vit_digits", "activator_vit_digits", "activator_vit_reduced_digits", "activator_vit_mixing_digits")
OFFICIAL = {"activator_vit_reduced_digits": "reduced"}  # the official variant each recipe is timed beside; else full
SHORT, LONG = 2, 12  # the epochs of the two runs whose difference is timed end to end


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def end_to_end(name, variant, repeats):
    """Images/s end to end of the recipe `name` and of the official loop
    `variant`, and their ratio: per repeat, the time of a LONG-epoch run
    minus that of a SHORT-epoch one, each a whole run in this process
    (medians over repeats)."""
    import numpy as np

    from glu_zoo import data, recipes, training

    recipe = recipes.get(name)
    images = (LONG - SHORT) * len(data.load(recipe.data, **recipe.data_options).train[0])
    official_images = (LONG - SHORT) * len(data.load_digits(validation_size=0.0).train[0])

    def ours(epochs):
        out = tempfile.mkdtemp(prefix=f"bench_zoo_{name}_")
        seconds = _timed(lambda: training.train(recipe, epochs=epochs, out=out, verbose=0))
        shutil.rmtree(out)
        return seconds

    def theirs(epochs):
        return _timed(lambda: run_official(variant, epochs=epochs))

    theirs(1)  # the official loop's one-time costs (torch's first use) are in neither of its timed runs
    rates, official, ratios, seconds = [], [], [], []
    for _ in range(repeats):
        t_official_short, t_short = theirs(SHORT), ours(SHORT)
        t_official_long, t_long = theirs(LONG), ours(LONG)
        rates.append(images / (t_long - t_short))
        official.append(official_images / (t_official_long - t_official_short))
        ratios.append(rates[-1] / official[-1])
        seconds.append([round(t, 3) for t in (t_official_short, t_short, t_official_long, t_long)])
    return {"end_to_end": float(np.median(rates)), "official_end_to_end": float(np.median(official)),
            "end_to_end_ratio": float(np.median(ratios)), "official_variant": variant, "seconds": seconds}


def run_recipe(name, out, repeats=1, full=True, seeds=(0,), end_to_end_too=True):
    import dataclasses

    import keras
    import numpy as np

    from glu_zoo import models, recipes, training

    recipe = recipes.get(name)
    params = models.build(recipe.architecture, **recipe.model_overrides).count_params()
    row = {"kind": "recipe", "name": name, "backend": keras.backend.backend(), "parameters": params,
           "target": recipe.target, "accuracy": None, "accuracies": None, "seeds": list(seeds),
           "examples_per_second": None, "peak_mib": None, "training_mib": None,
           "end_to_end": None, "official_end_to_end": None, "end_to_end_ratio": None,
           "official_variant": OFFICIAL.get(name, "full"), "seconds": None}
    if full:  # the whole recipe, once per seed (the seed of its initial weights, dropout, order and augmentation)
        baseline = _rss_mib()
        accuracies, rates = [], []
        for seed in seeds:
            result = training.train(dataclasses.replace(recipe, seed=seed), out=f"{out}_seed{seed}", verbose=0,
                                    overwrite=True)
            accuracies.append(result["metrics"]["accuracy"])
            rates.append(result["examples_per_second"])
        row.update(accuracy=float(np.mean(accuracies)), accuracies=accuracies,
                   examples_per_second=float(np.median(rates)),
                   peak_mib=_peak_mib(), training_mib=_peak_mib() - baseline)
    if not end_to_end_too:
        return row
    if not full:  # a first, untimed run: the process's one-time costs (imports, first compilations) are not in either run
        warmup = tempfile.mkdtemp(prefix="bench_zoo_warmup_")
        training.train(recipe, epochs=1, out=warmup, verbose=0)
        shutil.rmtree(warmup)
    row.update(end_to_end(name, OFFICIAL.get(name, "full"), repeats))
    return row


def run_official(variant, seed=0, epochs=60):
    """The official Activator model and training loop, in eager PyTorch."""
    import numpy as np
    import torch
    from torch import nn

    from glu_zoo import data

    torch.manual_seed(seed)
    splits = data.load_digits(validation_size=0.0)
    x_train = torch.from_numpy(splits.train[0]).permute(0, 3, 1, 2).contiguous()  # N, C, H, W
    y_train = torch.from_numpy(splits.train[1]).long()
    x_test = torch.from_numpy(splits.test[0]).permute(0, 3, 1, 2).contiguous()
    y_test = torch.from_numpy(splits.test[1]).long()

    class GatingUnit(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.proj_1, self.proj_2, self.proj_3 = nn.Linear(d, h), nn.Linear(d, h), nn.Linear(h, d)
            self.gelu, self.norm = nn.GELU(), nn.LayerNorm(h)

        def forward(self, x):
            u = self.norm(self.gelu(self.proj_1(x)))
            v = self.norm(self.proj_2(x))
            return self.proj_3(u * v)

    class Block(nn.Module):
        def __init__(self, d, h, dropout, full):
            super().__init__()
            self.norm, self.actgu, self.full = nn.LayerNorm(d), GatingUnit(d, h), full
            if full:
                self.ffn = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Dropout(dropout), nn.Linear(h, d),
                                         nn.Dropout(dropout))

        def forward(self, x):
            x = x + self.actgu(self.norm(x))
            return x + self.ffn(self.norm(x)) if self.full else x

    class Classifier(nn.Module):
        def __init__(self, d=64, h=128, layers=4, patch=4, dropout=0.5, full=True):
            super().__init__()
            self.patcher = nn.Conv2d(1, d, kernel_size=patch, stride=patch)
            self.blocks = nn.Sequential(*[Block(d, h, dropout, full) for _ in range(layers)])
            self.classifier = nn.Linear(d, 10)

        def forward(self, x):
            p = self.patcher(x)
            p = p.permute(0, 2, 3, 1).reshape(p.shape[0], -1, p.shape[1])
            return self.classifier(self.blocks(p).mean(dim=1))

    model = Classifier(full=variant == "full", dropout=0.5 if variant == "full" else 0.0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train), batch_size=64,
                                         shuffle=True)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    baseline = _rss_mib()
    rates = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
        rates.append(len(x_train) / (time.perf_counter() - start))
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return {
        "kind": "official", "name": f"official Activator ({variant})", "backend": f"torch {torch.__version__}",
        "parameters": sum(p.numel() for p in model.parameters()), "accuracy": accuracy, "target": None,
        "examples_per_second": float(np.median(rates[1:] or rates)), "peak_mib": _peak_mib(),
        "training_mib": _peak_mib() - baseline,
    }


def run_official_row(variant, repeats=1, seeds=(0,), end_to_end_too=True):
    """The official loop's 60-epoch row (once per seed), and its own end-to-end speed."""
    import numpy as np

    from glu_zoo import data

    runs = [run_official(variant, seed=seed) for seed in seeds]
    row = {**runs[-1], "accuracies": [r["accuracy"] for r in runs], "seeds": list(seeds),
           "accuracy": float(np.mean([r["accuracy"] for r in runs])),
           "examples_per_second": float(np.median([r["examples_per_second"] for r in runs])),
           "end_to_end": None, "official_end_to_end": None, "end_to_end_ratio": None, "official_variant": variant,
           "seconds": None}
    if not end_to_end_too:
        return row
    images = (LONG - SHORT) * len(data.load_digits(validation_size=0.0).train[0])
    rates, seconds = [], []
    for _ in range(repeats):
        t_short = _timed(lambda: run_official(variant, epochs=SHORT))
        t_long = _timed(lambda: run_official(variant, epochs=LONG))
        rates.append(images / (t_long - t_short))
        seconds.append([round(t_short, 3), round(t_long, 3)])
    row.update(end_to_end=float(np.median(rates)), official_end_to_end=float(np.median(rates)), end_to_end_ratio=1.0,
               seconds=seconds)
    return row


def table(rows, repeats, seeds):
    lines = [
        "Digits, 1,437 training images, 360 test images, each recipe's epochs (60; vit_digits 120); each row one "
        "process training from scratch in the same benchmark run. Batches only: images/s of the training batches, "
        f"median over the epochs after the first. End to end: 10 epochs' images over the wall time of a whole {LONG}-epoch "
        f"run minus that of a {SHORT}-epoch run (data, model, compilation, fit, backups, test, preset), "
        "beside the official loop (variant in brackets) timed the same way in the same process, interleaved; "
        f"median of {repeats} repeat(s). Test accuracy: mean ± standard deviation over the seeds "
        f"{', '.join(map(str, seeds))} (each a whole run from scratch; the least in brackets); batches-only "
        "images/s: their median. Peak: the process's peak RSS before the official loop runs in it; "
        "training: peak minus the RSS before training.",
        "",
        "| model | backend | parameters | test accuracy | target | batches only images/s | end to end images/s "
        "| official loop end to end | end to end / official | peak MiB | training MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def number(value, spec=",.0f"):
        return "" if value is None else format(value, spec)

    def accuracy(r):
        values = r.get("accuracies") or []
        if len(values) < 2:
            return number(r["accuracy"], ".4f")
        return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} ({min(values):.4f})"

    for r in rows:
        official = "" if r["official_end_to_end"] is None else f"{r['official_end_to_end']:,.0f} ({r['official_variant']})"
        ratio = "" if r["end_to_end_ratio"] is None else f"{r['end_to_end_ratio']:.2f}×"
        lines.append(
            f"| {r['name']} | {r['backend']} | {r['parameters']:,} | {accuracy(r)} | "
            f"{number(r['target'], '.3f')} | {number(r['examples_per_second'])} | {number(r['end_to_end'])} | "
            f"{official} | {ratio} | {number(r['peak_mib'])} | {number(r['training_mib'])} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--no-official", action="store_true")
    parser.add_argument("--runs", default="runs/bench_zoo")
    parser.add_argument("--repeats", type=int, default=1, help="end-to-end repeats per row (median)")
    parser.add_argument("--end-to-end-only", action="store_true",
                        help="skip the full recipe runs (accuracy, batches-only speed, memory)")
    parser.add_argument("--seeds", default="0", help="the recipe seeds of the full runs (comma-separated)")
    parser.add_argument("--end-to-end-recipes", default=None,
                        help="the recipes (and the official variants) timed end to end (default: all)")
    parser.add_argument("--write", metavar="PATH")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    timed = None if args.end_to_end_recipes is None else args.end_to_end_recipes.split(",")
    if args.worker:
        kind, name = args.worker
        e2e = timed is None or name in timed or (kind == "official" and any(OFFICIAL.get(r, "full") == name
                                                                               for r in timed if r in RECIPES))
        if kind == "official":
            row = run_official_row(name, args.repeats, seeds, end_to_end_too=e2e)
        else:
            row = run_recipe(name, os.path.join(args.runs, name), args.repeats, full=not args.end_to_end_only,
                             seeds=seeds, end_to_end_too=e2e)
        print("RESULT " + json.dumps(row), flush=True)
        return
    jobs = [] if args.no_official else [("torch", "official", v) for v in ("full", "reduced")]
    jobs += [(b, "recipe", r) for r in args.recipes.split(",") for b in args.backends.split(",")]
    rows = []
    for backend, kind, name in jobs:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        runs = os.path.join(args.runs, backend)
        cmd = [sys.executable, __file__, "--worker", kind, name, "--runs", runs, "--repeats", str(args.repeats),
               "--seeds", args.seeds]
        if timed is not None:
            cmd += ["--end-to-end-recipes", ",".join(timed)]
        if args.end_to_end_only:
            cmd.append("--end-to-end-only")
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"{backend} {name} failed:\n{run.stderr[-3000:]}")
        rows.append(json.loads(run.stdout.split("RESULT ", 1)[1]))
        r = rows[-1]
        print(f"{backend} {name}: accuracies {r['accuracies']} (seeds {r['seeds']}), batches only "
              f"{r['examples_per_second']} img/s, end to end {r['end_to_end']} img/s = {r['end_to_end_ratio']}× the "
              f"official loop ({r['official_end_to_end']}); seconds per repeat (official {SHORT}, ours {SHORT}, "
              f"official {LONG}, ours {LONG}): {r['seconds']}", file=sys.stderr, flush=True)
    text = table(rows, args.repeats, seeds)
    print(text)
    if args.write:
        write_block(args.write, 'bench_zoo', 'Zoo models on digits (`tools/bench_zoo.py`)', text)


if __name__ == "__main__":
    main()
