"""Benchmark ParallelGRU: time, Newton iterations, error and peak memory of
"deer", "quasi_deer", "sequential" and "auto" beside `keras.layers.GRU`
(and, on JAX, a hand-written `lax.scan` GRU), for T in 1,000, 4,000, 16,000
and hidden 32, 64, 256, batch 4, 8 input features, float32.

Each (backend, hidden) runs in its own process, T ascending; in it the
methods are timed in alternating rounds (median seconds per call) as
compiled functions: `jax.jit`, `tf.function(jit_compile=True)`, eager torch.
"forward" is the layer's call; "train" is the gradient of a weighted sum of
its outputs with respect to the weights and inputs. The error is the largest
|output − keras GRU output|; the iterations are the forward call's
`last_iterations`. Peak memory is the largest resident-set growth over the
process's idle level while the method's train step runs (glibc gives large
blocks back, so the resident set follows live memory). A method is skipped
where its Jacobians alone (batch·T·hidden² floats, "deer") would pass
MEMORY_CAP, or where its previous T took over TIME_CAP seconds a call (T
quadruples).

    python tools/bench_deer.py                                    # all backends
    python tools/bench_deer.py --backends jax --hidden 32 --lengths 1000
    python tools/bench_deer.py --write docs/benchmarks.md
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from benchlib import PeakRSS, rss_bytes, write_block

BACKENDS = ("jax", "tensorflow", "torch")
LENGTHS = (1000, 4000, 16000)
HIDDEN = (32, 64, 256)
METHODS = ("deer", "quasi_deer", "sequential", "auto", "keras", "lax_scan")
KINDS = ("forward", "train")
BATCH, FEATURES = 4, 8
MEMORY_CAP = 1.2 * 2**30  # bytes of deer Jacobians
TIME_CAP = 30.0  # seconds a call at the previous T
AIM_SEQUENTIAL = 1.2


def _compiled(fn):
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    return fn


def _lax_scan_gru(units):
    """GRU (reset_after) as a plain `lax.scan`: what a JAX user would write."""
    import jax
    import jax.numpy as jnp

    def run(weights, x):
        kernel, recurrent, bias = weights
        xp = jnp.swapaxes(x @ kernel + bias[0], 0, 1)

        def step(h, xt):
            hp = h @ recurrent + bias[1]
            z = jax.nn.sigmoid(xt[:, :units] + hp[:, :units])
            r = jax.nn.sigmoid(xt[:, units:2 * units] + hp[:, units:2 * units])
            n = jnp.tanh(xt[:, 2 * units:] + r * hp[:, 2 * units:])
            h = z * h + (1 - z) * n
            return h, h

        _, ys = jax.lax.scan(step, jnp.zeros((x.shape[0], units), x.dtype), xp)
        return jnp.swapaxes(ys, 0, 1)

    return run


def _steps(layer, x, w, lax_scan=False):
    """(forward, train): compiled calls returning NumPy outputs / gradients."""
    import keras
    import numpy as np

    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp
    if lax_scan:

        run = _lax_scan_gru(layer.units)
        weights = [v.value for v in layer.weights]
        forward = jax.jit(run)
        grad = jax.jit(jax.grad(lambda p, t: jnp.sum(run(p, t) * w), argnums=(0, 1)))
        return (lambda: np.asarray(forward(weights, x)),
                lambda: jax.block_until_ready(grad(weights, x)))
    if backend == "jax":
        values = [v.value for v in layer.trainable_variables]
        fixed = [v.value for v in layer.non_trainable_variables]

        def call(vals, t):
            return layer.stateless_call(vals, fixed, t)[0]

        forward = jax.jit(call)
        grad = jax.jit(jax.grad(lambda vals, t: jnp.sum(call(vals, t) * w), argnums=(0, 1)))
        return (lambda: np.asarray(forward(values, x)),
                lambda: jax.block_until_ready(grad(values, x)))
    if backend == "tensorflow":
        import tensorflow as tf

        forward = _compiled(lambda t: layer(t))

        def grads(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                loss = tf.reduce_sum(layer(t) * w)
            return tape.gradient(loss, [t] + [v.value for v in layer.trainable_variables])

        grad = _compiled(grads)
        return (lambda: forward(x).numpy(), lambda: [g.numpy() for g in grad(x)])
    import torch

    xt = x.clone().requires_grad_(True)

    def eager_forward():
        with torch.no_grad():
            return layer(x).numpy()

    def train():
        for v in layer.trainable_variables:
            v.value.grad = None
        xt.grad = None
        (layer(xt) * w).sum().backward()
        return xt.grad

    return eager_forward, train


def worker(backend, units, lengths, rounds, budget, methods):
    import keras
    import numpy as np

    from glu_zoo.layers import ParallelGRU
    from glu_zoo.ops.scan import device_kind

    rng = np.random.default_rng(0)
    results = []
    slow = {}  # method → seconds a call at the previous T
    for length in lengths:
        x = keras.ops.convert_to_tensor(rng.normal(size=(BATCH, length, FEATURES)).astype("float32"))
        w = keras.ops.convert_to_tensor(rng.normal(size=(BATCH, length, units)).astype("float32"))
        gru = keras.layers.GRU(units, return_sequences=True)
        gru.build((BATCH, length, FEATURES))
        layers, skipped = {}, {}
        for method in methods:
            if method == "lax_scan" and backend != "jax":
                continue
            if method == "deer" and BATCH * length * units * units * 4 > MEMORY_CAP:
                skipped[method] = f"Jacobians {BATCH * length * units * units * 4 / 2**30:.1f} GiB"
                continue
            if slow.get(method, 0.0) > TIME_CAP:
                skipped[method] = f"{slow[method]:.0f} s a call at T/4"
                continue
            if method in ("keras", "lax_scan"):
                layers[method] = gru
            else:
                layers[method] = ParallelGRU(units, method=method, return_sequences=True)
                layers[method].build((BATCH, length, FEATURES))
                layers[method].set_weights(gru.get_weights())
        reference = keras.ops.convert_to_numpy(gru(x))
        steps = {m: _steps(layer, x, w, lax_scan=m == "lax_scan") for m, layer in layers.items()}
        row = {"backend": backend, "device": device_kind(), "units": units, "length": length, "batch": BATCH,
               "skipped": skipped, "iterations": {}, "error": {}, "times": {}, "peak_mib": {},
               "auto": ParallelGRU(units, method="auto").resolved_method(length)}
        for method, layer in layers.items():
            if isinstance(layer, ParallelGRU):  # one eager call: its Newton iterations
                layer(x)
                row["iterations"][method] = layer.last_iterations
        for kind in KINDS:
            first = {}
            for method, (forward, train) in steps.items():
                call = forward if kind == "forward" else train
                out = call()  # compile
                if kind == "forward":
                    row["error"][method] = float(np.abs(np.asarray(out) - reference).max())
                idle = rss_bytes()
                with PeakRSS() as peak:
                    t0 = time.perf_counter()
                    call()
                    first[method] = time.perf_counter() - t0
                if kind == "train":
                    row["peak_mib"][method] = (peak.peak - idle) / 2**20
            n = max(1, min(rounds, int(budget / max(sum(first.values()), 1e-9))))
            times = {m: [first[m]] for m in first}
            for _ in range(n - 1):
                for method, (forward, train) in steps.items():
                    t0 = time.perf_counter()
                    (forward if kind == "forward" else train)()
                    times[method].append(time.perf_counter() - t0)
            row["times"][kind] = {m: statistics.median(v) for m, v in times.items()}
        for method in steps:
            slow[method] = max(row["times"][k][method] for k in KINDS)
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return results


def _fmt(seconds):
    return "—" if seconds is None else (f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s")


def table(rows):
    lines = [
        f"Batch {BATCH}, {FEATURES} features, float32; median seconds per call; "
        "`jax.jit` / `tf.function(jit_compile=True)` / eager torch. "
        "Iterations: Newton iterations of the forward call (deer / quasi). "
        "Error: max |output − keras.layers.GRU|. Ratios: time of the method over `keras.layers.GRU`'s "
        "(on JAX also over the hand-written `lax.scan` GRU), so < 1 is faster.",
        "",
        "| backend | device | hidden | T | kind | deer | quasi_deer | sequential | auto (picks) | keras GRU | "
        "lax.scan | sequential / keras | sequential / lax.scan | iterations | max error | peak MiB (train) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for kind in KINDS:
            t = r["times"][kind]

            def cell(m):
                if m in t:
                    return _fmt(t[m])
                return f"skipped ({r['skipped'][m]})" if m in r["skipped"] else "—"

            seq_keras = t["sequential"] / t["keras"] if "sequential" in t and "keras" in t else None
            seq_lax = t["sequential"] / t["lax_scan"] if "sequential" in t and "lax_scan" in t else None
            iters = " / ".join(str(r["iterations"].get(m, "—")) for m in ("deer", "quasi_deer"))
            error = max((v for m, v in r["error"].items() if m not in ("keras", "lax_scan")), default=None)
            peak = ", ".join(f"{m} {v:.0f}" for m, v in r["peak_mib"].items()) if kind == "train" else ""
            lines.append(
                f"| {r['backend']} | {r['device']} | {r['units']} | {r['length']} | {kind} | {cell('deer')} | "
                f"{cell('quasi_deer')} | {cell('sequential')} | {cell('auto')} ({r['auto']}) | {cell('keras')} | "
                f"{cell('lax_scan')} | {'—' if seq_keras is None else f'{seq_keras:.2f}'} | "
                f"{'—' if seq_lax is None else f'{seq_lax:.2f}'} | {iters if kind == 'forward' else ''} | "
                f"{'' if kind == 'train' or error is None else f'{error:.1e}'} | {peak} |")
    aims = []
    for r in rows:
        for kind in KINDS:
            t = r["times"][kind]
            base = "lax_scan" if r["backend"] == "jax" else "keras"
            if "sequential" in t and base in t:
                aims.append(t["sequential"] / t[base] <= AIM_SEQUENTIAL)
    lines += ["", f"Aim (sequential within {AIM_SEQUENTIAL}× of the hand-written `lax.scan` GRU on JAX, of keras "
              f"GRU on TensorFlow and torch): met in {sum(aims)} of {len(aims)} cells. "
              f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--hidden", default=",".join(map(str, HIDDEN)))
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timing rounds per cell and kind")
    parser.add_argument("--json", metavar="PATH", help="also write the raw rows")
    parser.add_argument("--write", metavar="PATH")
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "HIDDEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    lengths = [int(t) for t in args.lengths.split(",")]
    methods = args.methods.split(",")
    if args.worker:
        rows = worker(args.worker[0], int(args.worker[1]), lengths, args.rounds, args.budget, methods)
        print("RESULT " + json.dumps(rows), flush=True)
        return
    rows = []
    for backend in args.backends.split(","):
        for units in args.hidden.split(","):
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
                   "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
            cmd = [sys.executable, __file__, "--worker", backend, units, "--lengths", args.lengths,
                   "--methods", args.methods, "--rounds", str(args.rounds), "--budget", str(args.budget)]
            run = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if run.returncode:  # reported; the other processes still run
                print(f"{backend} hidden {units} failed:\n{run.stderr[-3000:]}", file=sys.stderr, flush=True)
                continue
            rows += json.loads(run.stdout.split("RESULT ", 1)[1])
            print(f"{backend} hidden {units} done", file=sys.stderr, flush=True)
            if args.json:  # after every process, so that a later failure loses nothing
                with open(args.json, "w") as f:
                    json.dump(rows, f, indent=1)
    text = table(rows)
    print(text)
    if args.write:
        write_block(args.write, "bench_deer", "ParallelGRU: DEER, quasi-DEER and sequential (`tools/bench_deer.py`)",
                    text)


if __name__ == "__main__":
    main()
