"""Benchmark RecTable on wine: time to a fixed quality against a ReLU MLP flow,
sampling speed against the official code's figures, memory and bulk sampling.

For each backend, in its own process (the backend is set before Keras is
imported):

  (a) time to quality: the recipe `rectable_wine`'s network (GLU widths
      [128, 256, 128, 128], time width 128) and a TabDDPM-style ReLU MLP
      velocity network of equal parameter count (within 2%; MLPDiffusion of
      TabDDPM, arXiv 2209.15421: the same time embedding and input
      projection, blocks Dense → ReLU instead of GLU blocks), both in the
      same rectified flow (RecTable's FlowPairs, loss and samplers) and with
      the recipe's training: the whole 142-row training table as one batch a
      step, Adam 2e-4 with the recipe's linear warm-up, global clip-norm 1,
      EMA (torch_ema's warm-up), `model.fit`, 16 steps per execution on JAX
      and TensorFlow. The two train in alternating chunks of K steps in one
      process; after each chunk the EMA weights are swapped in, a synthetic
      table as large as the training split is sampled with the recipe's
      sampler (RK45, rtol = atol = 1e-5) and scored by glu_zoo.evaluation;
      the target is C2ST AUC ≤ 0.60 and train-on-synthetic accuracy on the
      real test split ≥ 0.95. Training seconds count only `fit` (its first
      chunk includes compilation); the checks are timed apart.
  (b) sampling wine's 178 rows with the shipped preset `rectable_wine`:
      Euler-50 against RK45 (rtol = atol = 1e-5): seconds of the first call
      (compilation included) and the median of later calls, function
      evaluations, and the quality of each table (scored against the
      training split); beside the official code's 19 s (RK45, 428
      evaluations) and 7.8 s (Euler) on this machine. Also Euler-50 with the
      paper's widths [1024, 2048, 1024, 1024] (random weights: the time of
      Euler does not depend on them), the official network's size.
  (c) peak memory of a training step at batch 4096 (training rows drawn
      with replacement), each network in a fresh process: the growth of the
      resident set over the step, the first step (with compilation) and a
      later one (peak reset through /proc/self/clear_refs); and rows/s of
      sampling 100,000 rows with Euler-50 (preset, batches of 4096, decoding
      included, after a compiling warm-up call).

    python tools/bench_rectable.py                           # all backends, print the table
    python tools/bench_rectable.py --backends jax --write docs/benchmarks.md
    python tools/bench_rectable.py --max-steps 1024 --check-every 256 --seeds 1   # shorter
    python tools/bench_rectable.py --backends jax --save r.json; python tools/bench_rectable.py --load r.json
"""

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from benchlib import write_block

BACKENDS = ("jax", "tensorflow", "torch")
RECIPE = "rectable_wine"
AUC_LIMIT, MLE_TARGET = 0.60, 0.95
OFFICIAL = {"steps": 2000, "step_s": 0.14, "seconds": 8.7 * 60, "rk45_s": 19.0, "rk45_nfe": 428, "euler_s": 7.8}
PAPER_DIMS = (1024, 2048, 1024, 1024)
MEMORY_BATCH = 4096
BULK_ROWS = 100_000


# --- the baseline network ------------------------------------------------------------------------------------------

def baseline_classes():
    """The ReLU MLP velocity network and the flow model that uses it (defined after the backend is set)."""
    import keras
    from keras import ops

    from glu_zoo.models import rectable
    from glu_zoo.models.rectable import TIME_SCALE, RecTable, timestep_embedding

    def dense(units, name, activation=None):
        return keras.layers.Dense(units, activation=activation, name=name,
                                  kernel_initializer=rectable._torch_linear_init())

    class ReLUMLPNet(keras.layers.Layer):
        """TabDDPM's MLPDiffusion: e = W₂·SiLU(W₁·emb(999·t) + b₁) + b₂, h = W_in·x + b_in + e,
        then Dense → ReLU blocks of widths `hidden_dims` and a linear head (RecTableNet with
        ReLU blocks instead of GLU blocks)."""

        def __init__(self, width, hidden_dims, time_dim=128, **kwargs):
            super().__init__(**kwargs)
            self.width, self.hidden_dims, self.time_dim = width, tuple(hidden_dims), time_dim
            self.time_dense_in = dense(time_dim, "time_dense_in")
            self.time_dense_out = dense(time_dim, "time_dense_out")
            self.input_projection = dense(time_dim, "input_projection")
            self.blocks = [dense(units, f"block_{i}", "relu") for i, units in enumerate(self.hidden_dims)]
            self.head = dense(width, "head")

        def build(self, x_shape, t_shape=None):
            self.time_dense_in.build((None, self.time_dim))
            self.time_dense_out.build((None, self.time_dim))
            self.input_projection.build((None, self.width))
            width = self.time_dim
            for block in self.blocks:
                block.build((None, width))
                width = block.units
            self.head.build((None, width))

        def call(self, x, t, training=None):
            e = timestep_embedding(ops.reshape(t, (-1,)) * TIME_SCALE, self.time_dim)
            h = self.input_projection(x) + self.time_dense_out(ops.silu(self.time_dense_in(e)))
            for block in self.blocks:
                h = block(h)
            return self.head(h)

        def compute_output_shape(self, x_shape, t_shape=None):
            return (*x_shape[:-1], self.width)

    class MLPFlow(RecTable):
        """RecTable's flow (FlowPairs, compute_loss, sample) with `ReLUMLPNet` as the velocity network."""

        def __init__(self, encoder, hidden_dims, time_dim=128, seed=None, **kwargs):
            super().__init__(encoder, hidden_dims, time_dim, seed=seed, name="mlp_flow", **kwargs)

        def velocity_network(self, width, hidden_dims, time_dim, dropout):
            return ReLUMLPNet(width, hidden_dims, time_dim, name="network")

    return ReLUMLPNet, MLPFlow


def mlp_dims(width, time_dim, target):
    """Widths [a, 2a, a, a] (the recipe's GLU pattern) whose ReLU MLP has the parameter count
    closest to `target`."""

    def count(a):
        dims = (a, 2 * a, a, a)
        n = 2 * (time_dim * time_dim + time_dim) + width * time_dim + time_dim
        fan_in = time_dim
        for units in dims:
            n += fan_in * units + units
            fan_in = units
        return n + fan_in * width + width

    a = min(range(8, 4096), key=lambda a: abs(count(a) - target))
    return (a, 2 * a, a, a), count(a)


# --- workers --------------------------------------------------------------------------------------------------------

def _rss_mib(field="VmRSS"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _versions():
    import keras

    backend = keras.backend.backend()
    module = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}[backend]
    return {"backend": backend, "version": __import__(module).__version__, "keras": keras.__version__}


def _setup(seed_offset=0):
    """The recipe, its table (encoded) and the two flow models, compiled as `train` compiles them."""
    import keras

    from glu_zoo import recipes, training
    from glu_zoo.models.rectable import RecTable

    recipe = recipes.get(RECIPE)
    data = training._load_table(recipe)
    encoder = data["encoder"]
    _, MLPFlow = baseline_classes()
    keras.utils.set_random_seed(recipe.seed + seed_offset)
    overrides = recipe.model_overrides
    glu = RecTable(encoder, seed=recipe.seed + seed_offset, **overrides)
    glu_params = glu.network.count_params()
    dims, _ = mlp_dims(encoder.width, glu.time_dim, glu_params)
    mlp = MLPFlow(encoder, dims, time_dim=glu.time_dim, seed=recipe.seed + seed_offset)
    mlp_params = mlp.network.count_params()
    if abs(mlp_params - glu_params) > 0.02 * glu_params:
        raise RuntimeError(f"MLP parameters {mlp_params} not within 2% of the GLU network's {glu_params}")
    rows = len(data["x_train"])
    xla = keras.backend.backend() != "torch"
    models = {"glu": glu, "mlp": mlp}
    for model in models.values():
        # The recipe's optimizer: an epoch of `train` is passes_per_epoch full-table steps.
        optimizer = training._optimizer(recipe, recipe.passes_per_epoch, recipe.epochs)
        # Keras writes the EMA into the weights at the end of every `fit`; here training goes
        # on across `fit` calls, so the EMA is swapped in only for the checks.
        optimizer.finalize_variable_values = lambda var_list: None
        model.compile(optimizer=optimizer, jit_compile=xla,
                      steps_per_execution=training.STEPS_PER_EXECUTION if xla else 1)
    return recipe, data, models, {"glu": glu_params, "mlp": mlp_params}, {"glu": list(glu.hidden_dims),
                                                                          "mlp": list(dims)}, rows


class _EMAWeights:
    """Inside the block the model holds its optimizer's EMA weights; the raw weights come back after."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        from keras import ops

        self.raw = [ops.convert_to_numpy(v.value) for v in self.model.trainable_variables]
        self.model.optimizer._overwrite_model_variables_with_average_value(self.model.trainable_variables)

    def __exit__(self, *exc):
        for v, value in zip(self.model.trainable_variables, self.raw):
            v.assign(value)


def _score(model, data, recipe, n, method, seed, **options):
    from glu_zoo import evaluation

    table = data["table"]
    synthetic = model.sample(n, seed=seed, method=method, **options)
    return evaluation.evaluate(table.train, table.test, synthetic, table.spec, seed=recipe.seed)["summary"]


def time_to_quality(max_steps, check_every, check_method, seed_offset=0):
    """(a): alternate chunks of `check_every` steps of the two models, checking after each; the
    models' initial weights and training noise from the recipe's seed + `seed_offset`."""
    import numpy as np

    recipe, data, models, params, dims, rows = _setup(seed_offset)
    chunk = np.tile(data["x_train"], (check_every, 1))
    state = {name: {"steps": 0, "train_s": 0.0, "check_s": 0.0, "chunk_s": [], "checks": [], "reached": None}
             for name in models}
    for _ in range(max_steps // check_every):
        for name, model in models.items():
            s = state[name]
            if s["reached"] is not None:
                continue
            start = time.perf_counter()
            history = model.fit(chunk, batch_size=rows, epochs=1, shuffle=False, verbose=0)
            seconds = time.perf_counter() - start
            s["steps"] += check_every
            s["train_s"] += seconds
            s["chunk_s"].append(seconds)
            start = time.perf_counter()
            with _EMAWeights(model):
                summary = _score(model, data, recipe, rows, check_method, recipe.seed)
            s["check_s"] += time.perf_counter() - start
            check = {"step": s["steps"], "loss": float(history.history["loss"][-1]),
                     "c2st_auc": summary["c2st_auc"], "mle_synthetic": summary["mle_synthetic"],
                     "copied_share": summary["copied_share"], "nfe": model.last_sample_nfe,
                     "train_s": round(s["train_s"], 3)}
            s["checks"].append(check)
            print(f"{name} {check}", file=sys.stderr, flush=True)
            if summary["c2st_auc"] <= AUC_LIMIT and summary["mle_synthetic"] >= MLE_TARGET:
                s["reached"] = check
        if all(s["reached"] is not None for s in state.values()):
            break
    for name, s in state.items():
        later = s["chunk_s"][1:] or s["chunk_s"]
        s["step_ms"] = 1e3 * statistics.median(later) / check_every  # after the compiling first chunk
        s["parameters"], s["hidden_dims"] = params[name], dims[name]
        del s["chunk_s"]
    return {"max_steps": max_steps, "check_every": check_every, "check_method": check_method, "rows": rows,
            "seed": recipe.seed + seed_offset, "models": state}


def sampling(repeats):
    """(b) and the bulk part of (c), with the shipped preset."""
    from glu_zoo import presets, recipes, training
    from glu_zoo.models.rectable import RecTable

    recipe = recipes.get(RECIPE)
    data = training._load_table(recipe)
    model = presets.load(RECIPE)
    n = len(data["table"].train) + len(data["table"].test)  # wine's 178 rows
    out = {"rows": n}
    for method in ("euler", "rk45"):
        options = {"steps": 50} if method == "euler" else {"rtol": 1e-5, "atol": 1e-5}
        start = time.perf_counter()
        model.sample(n, seed=0, method=method, **options)
        first = time.perf_counter() - start
        times = []
        for r in range(repeats):
            start = time.perf_counter()
            model.sample(n, seed=r + 1, method=method, **options)
            times.append(time.perf_counter() - start)
        nfe = model.last_sample_nfe
        summary = _score(model, data, recipe, n, method, 0, **options)
        out[method] = {"first_s": first, "seconds": statistics.median(times), "nfe": nfe,
                       "c2st_auc": summary["c2st_auc"], "mle_synthetic": summary["mle_synthetic"],
                       "copied_share": summary["copied_share"]}

    # The paper's widths, random weights: the cost of an Euler-50 table with the official network's size.
    paper = RecTable(data["encoder"], hidden_dims=PAPER_DIMS, seed=0)
    paper.sample(n, seed=0, steps=50)
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        paper.sample(n, seed=r + 1, steps=50)
        times.append(time.perf_counter() - start)
    out["paper_euler"] = {"seconds": statistics.median(times), "parameters": paper.network.count_params()}

    # Bulk: 100,000 rows, Euler-50, batches of 4096 (the first call compiles the batch shape).
    model.sample(4096, seed=0, steps=50)
    start = time.perf_counter()
    table = model.sample(BULK_ROWS, seed=1, steps=50)
    seconds = time.perf_counter() - start
    assert len(table) == BULK_ROWS and not table.isna().any().any()
    out["bulk"] = {"rows": BULK_ROWS, "seconds": seconds, "rows_per_s": BULK_ROWS / seconds}
    return out


def memory(name):
    """(c): resident-set growth over a training step at batch 4096 of the network `name`."""
    import numpy as np

    before_setup = _rss_mib()
    recipe, data, models, params, _, _ = _setup()
    for other in [k for k in models if k != name]:
        del models[other]
    model = models[name]
    x = data["x_train"][np.random.default_rng(0).integers(0, len(data["x_train"]), MEMORY_BATCH)]
    base = _rss_mib()
    model.train_on_batch(x)
    first = _rss_mib("VmHWM") - base
    for _ in range(2):
        model.train_on_batch(x)
    libc = ctypes.CDLL("libc.so.6")
    later, times = [], []
    for _ in range(3):
        # Freed memory back to the system first, else a step may reuse pages the last one left resident.
        libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current resident set
            f.write("5")
        base_later = _rss_mib()
        start = time.perf_counter()
        model.train_on_batch(x)
        times.append(time.perf_counter() - start)
        later.append(_rss_mib("VmHWM") - base_later)
    return {"network": name, "parameters": params[name], "first_mib": first, "step_mib": max(later),
            "step_mibs": later, "process_mib": _rss_mib(), "setup_mib": base - before_setup,
            "step_s": statistics.median(times)}


def worker(job, args):
    if job.startswith("train:"):
        result = time_to_quality(args.max_steps, args.check_every, args.check_method, int(job.split(":", 1)[1]))
    elif job == "sample":
        result = sampling(args.repeats)
    else:
        result = memory(job.split(":", 1)[1])
    return {**_versions(), **result}


# --- report ---------------------------------------------------------------------------------------------------------

def _f(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _trains(r):
    return [v for k, v in r.items() if k.startswith("train:")]


def table(results):
    first = next(iter(results.values()))
    t0 = _trains(first)[0]
    lines = [
        f"RecTable on wine (recipe `{RECIPE}`), {platform.machine()} CPU with {os.cpu_count()} cores, float32, "
        f"Keras {t0['keras']}. Target: C2ST AUC ≤ {AUC_LIMIT} and train-on-synthetic accuracy ≥ {MLE_TARGET}, "
        f"checked every {t0['check_every']} steps (a {t0['rows']}-row table sampled by "
        f"{t0['check_method'].upper()}), at most {t0['max_steps']} steps, one run per seed (initial weights "
        "and training noise). The two networks train in alternating chunks in one process; seconds are `fit`'s "
        "alone (the first chunk includes compilation), the checks are timed apart.",
        "",
        "**(a) Time to quality, GLU blocks against a ReLU MLP of equal parameter count**",
        "",
        "| backend | network | widths | parameters | seed | ms / step | steps to target | training s to target | "
        "AUC / MLE there | checks s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = []
    for backend, r in results.items():
        for name, label in (("glu", "RecTable GLU"), ("mlp", "ReLU MLP")):
            reached, steps_ms = [], []
            for t in _trains(r):
                m = t["models"][name]
                reach = m["reached"]
                steps_ms.append(m["step_ms"])
                if reach:
                    reached.append(reach)
                lines.append(
                    f"| {backend} {t['version']} | {label} | {m['hidden_dims']} | {m['parameters']:,} | {t['seed']} | "
                    f"{m['step_ms']:.2f} | "
                    + (f"{reach['step']} | {reach['train_s']:.1f} | "
                       f"{reach['c2st_auc']:.3f} / {reach['mle_synthetic']:.3f}"
                       if reach else f"not reached within {m['steps']} | – | –")
                    + f" | {m['check_s']:.1f} |")
            runs = len(_trains(r))
            summary.append(
                f"- {backend}, {label}: reached in {len(reached)} of {runs} runs"
                + (f"; median {statistics.median(c['step'] for c in reached):.0f} steps, "
                   f"{statistics.median(c['train_s'] for c in reached):.1f} s of training "
                   f"(slowest {max(c['train_s'] for c in reached):.1f} s)" if reached else "")
                + f"; {statistics.median(steps_ms):.2f} ms a step.")
    lines += ["", *summary, "",
              f"Official code on this machine: {OFFICIAL['steps']:,} steps at {OFFICIAL['step_s']} s "
              f"(≈ {OFFICIAL['seconds'] / 60:.1f} min) to AUC 0.51–0.57 and MLE 0.96–0.99; aim ≤ half of that "
              f"({OFFICIAL['seconds'] / 2:.0f} s) on the best backend.",
              "",
              "Checks, step: AUC / MLE (GLU \\| MLP):",
              ""]
    for backend, r in results.items():
        for t in _trains(r):
            models = t["models"]
            steps = sorted({c["step"] for m in models.values() for c in m["checks"]})
            cells = []
            for step in steps:
                pair = []
                for name in ("glu", "mlp"):
                    c = next((c for c in models[name]["checks"] if c["step"] == step), None)
                    pair.append(f"{c['c2st_auc']:.2f}/{c['mle_synthetic']:.2f}" if c else "–")
                cells.append(f"{step}: {pair[0]} \\| {pair[1]}")
            lines.append(f"- {backend}, seed {t['seed']}: " + "; ".join(cells))
    lines += [
        "",
        "**(b) Sampling wine's 178 rows, shipped preset** (first call compiles; median of later calls; "
        "quality scored against the training split)",
        "",
        "| backend | sampler | first call s | s | rows/s | nfe | C2ST AUC | MLE | copied | official s | "
        "official / ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        s = r["sample"]
        for method, label, official in (("euler", "Euler-50", OFFICIAL["euler_s"]),
                                        ("rk45", "RK45 1e-5", OFFICIAL["rk45_s"])):
            m = s[method]
            lines.append(
                f"| {backend} | {label} | {m['first_s']:.2f} | {m['seconds']:.3f} | {s['rows'] / m['seconds']:,.0f} | "
                f"{m['nfe']} | {_f(m['c2st_auc'])} | {_f(m['mle_synthetic'])} | {_f(m['copied_share'])} | "
                f"{official} | {official / m['seconds']:.0f}× |")
        p = s["paper_euler"]
        lines.append(f"| {backend} | Euler-50, paper widths {list(PAPER_DIMS)} ({p['parameters']:,} parameters, "
                     f"random weights) | – | {p['seconds']:.3f} | {s['rows'] / p['seconds']:,.0f} | 50 | – | – | – | "
                     f"{OFFICIAL['euler_s']} | {OFFICIAL['euler_s'] / p['seconds']:.0f}× |")
    lines += [
        "",
        f"Official code on this machine: RK45 {OFFICIAL['rk45_s']} s ({OFFICIAL['rk45_nfe']} evaluations), "
        f"Euler {OFFICIAL['euler_s']} s, for 178 rows with the paper's widths. Aim: ≥ 5× faster at equal quality.",
        "",
        f"**(c) Memory of a training step at batch {MEMORY_BATCH:,}, and bulk sampling**",
        "",
        "| backend | network | first step ΔRSS MiB (with compilation) | later step ΔRSS MiB | step s | "
        "process RSS MiB | Euler-50, 100,000 rows: s | rows/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        bulk = r["sample"]["bulk"]
        for name, label in (("glu", "RecTable GLU"), ("mlp", "ReLU MLP")):
            m = r[f"memory:{name}"]
            tail = f"{bulk['seconds']:.1f} | {bulk['rows_per_s']:,.0f} |" if name == "glu" else "– | – |"
            lines.append(f"| {backend} | {label} | {m['first_mib']:.0f} | {m['step_mib']:.0f} | {m['step_s']:.3f} | "
                         f"{m['process_mib']:.0f} | " + tail)
    lines += ["", "ΔRSS: growth of the resident set over the step (peak, VmHWM, minus the resident set before "
                  "it; for a later step, the largest of three, each after malloc_trim and a reset of the peak "
                  "through /proc/self/clear_refs); each network in a fresh process. Bulk sampling with the "
                  "preset, decoding included."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--max-steps", type=int, default=3072, help="training steps at most (the recipe: 3,000)")
    parser.add_argument("--check-every", type=int, default=256,
                        help="steps between checks; a multiple of 16 (the steps per execution)")
    parser.add_argument("--check-method", default="rk45", choices=("rk45", "euler"))
    parser.add_argument("--seeds", type=int, default=3,
                        help="training runs of (a), seeds recipe seed + 0, 1, ...")
    parser.add_argument("--repeats", type=int, default=3, help="timed sampling calls, median")
    parser.add_argument("--write", metavar="PATH", help="put the table into this markdown file")
    parser.add_argument("--save", metavar="JSON", help="also keep the raw results in this file")
    parser.add_argument("--load", metavar="JSON", help="make the table from results kept by --save; run nothing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.check_every <= 0 or args.check_every % 16 or args.max_steps < args.check_every:
        parser.error("--check-every must be a positive multiple of 16, at most --max-steps")
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args)), flush=True)
        return
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    seeds = range(args.seeds)
    results = {}
    if args.load:
        with open(args.load) as f:
            results = json.load(f)
    for backend in [] if args.load else args.backends.split(","):
        if backend not in BACKENDS:
            parser.error(f"--backends: unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        results[backend] = {}
        for job in (*(f"train:{s}" for s in seeds), "sample", "memory:glu", "memory:mlp"):
            cmd = [sys.executable, __file__, "--worker", job, "--max-steps", str(args.max_steps),
                   "--check-every", str(args.check_every), "--check-method", args.check_method,
                   "--repeats", str(args.repeats)]
            run = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"{backend} {job} failed:\n{run.stderr[-3000:]}")
            results[backend][job] = json.loads(run.stdout.split("RESULT ", 1)[1])
            print(f"{backend} {job}: done", file=sys.stderr, flush=True)
            if args.save:
                with open(args.save, "w") as f:
                    json.dump(results, f)
    text = table(results)
    print(text)
    if args.write:
        write_block(args.write, "bench_rectable", "RecTable on wine (`tools/bench_rectable.py`)", text)


if __name__ == "__main__":
    main()
