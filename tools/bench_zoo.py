"""Train the digits recipes on every backend, side by side with the official
Activator training loop (plain PyTorch, eager), and report accuracy,
parameters, training images/s and peak memory.

Each (backend, recipe) runs the full recipe in its own process, so that the
backend is set before Keras is imported and the peak memory is its own. The
official loop is the official code's model and training loop (Adam 1e-3,
batch 64, a shuffled DataLoader, 60 epochs, cross-entropy, eager PyTorch),
re-typed here for the digits arrays; it runs in the same benchmark run.

    python tools/bench_zoo.py                       # prints the table
    python tools/bench_zoo.py --write docs/benchmarks.md
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from benchlib import write_block

BACKENDS = ("jax", "tensorflow", "torch")
RECIPES = ("vit_digits", "activator_vit_digits", "activator_vit_reduced_digits", "activator_vit_mixing_digits")


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_recipe(name, out):
    import keras

    from glu_zoo import models, recipes, training

    recipe = recipes.get(name)
    params = models.build(recipe.architecture, **recipe.model_overrides).count_params()
    baseline = _rss_mib()
    result = training.train(recipe, out=out, verbose=0)
    return {
        "kind": "recipe", "name": name, "backend": keras.backend.backend(), "parameters": params,
        "accuracy": result["metrics"]["accuracy"], "target": recipe.target,
        "examples_per_second": result["examples_per_second"],
        "peak_mib": _peak_mib(), "training_mib": _peak_mib() - baseline,
    }


def run_official(variant, seed=0):
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
    for _ in range(60):
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
        "examples_per_second": float(np.median(rates[1:])), "peak_mib": _peak_mib(),
        "training_mib": _peak_mib() - baseline,
    }


def table(rows):
    lines = [
        "Digits, 1,437 training images, 360 test images, 60 epochs; each row one process "
        "trained from scratch in the same benchmark run. Images/s: median over epochs 2–60 of the training "
        "batches only. Peak: the process's peak RSS; training: peak minus the RSS before training.",
        "",
        "| model | backend | parameters | test accuracy | target | training images/s | peak MiB | training MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = "" if r["target"] is None else f"{r['target']:.3f}"
        lines.append(
            f"| {r['name']} | {r['backend']} | {r['parameters']:,} | {r['accuracy']:.4f} | {target} | "
            f"{r['examples_per_second']:,.0f} | {r['peak_mib']:,.0f} | {r['training_mib']:,.0f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--no-official", action="store_true")
    parser.add_argument("--runs", default="runs/bench_zoo")
    parser.add_argument("--write", metavar="PATH")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, name = args.worker
        row = run_official(name) if kind == "official" else run_recipe(name, os.path.join(args.runs, name))
        print("RESULT " + json.dumps(row), flush=True)
        return
    jobs = [] if args.no_official else [("torch", "official", v) for v in ("full", "reduced")]
    jobs += [(b, "recipe", r) for r in args.recipes.split(",") for b in args.backends.split(",")]
    rows = []
    for backend, kind, name in jobs:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        runs = os.path.join(args.runs, backend)
        cmd = [sys.executable, __file__, "--worker", kind, name, "--runs", runs]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.split("RESULT ", 1)[1]))
        print(f"{backend} {name}: {rows[-1]['accuracy']:.4f}, {rows[-1]['examples_per_second']:,.0f} img/s",
              file=sys.stderr, flush=True)
    text = table(rows)
    print(text)
    if args.write:
        write_block(args.write, 'bench_zoo', 'Zoo models on digits (`tools/bench_zoo.py`)', text)


if __name__ == "__main__":
    main()
