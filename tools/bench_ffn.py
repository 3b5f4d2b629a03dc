"""Benchmark the FFN layers against the same math written directly in each backend.

d_model 512, batch × sequence 8 × 512, float32; a SwiGLU GatedFFN (hidden 1365)
and a GELU FFN (hidden 2048). For each backend, in one process per backend,
measured side by side (interleaved rounds, median per step):

  (a) Keras train step (forward, backward, SGD update) / native train step
      (jax.jit of value_and_grad; tf.function(jit_compile=True); torch
      nn.Module in eager mode);
  (b) achieved matmul FLOP/s of the Keras step / the backend's own FLOP/s
      on a large square matmul;
  (c) GoLU-FFN / GELU-FFN and xATLU-FFN / GELU-FFN step times (Keras layers);
  (d) fused (d, 2h) GLU projection / two (d, h) matrices (native code).

    python tools/bench_ffn.py                      # all backends, print the table
    python tools/bench_ffn.py --write docs/benchmarks.md
    python tools/bench_ffn.py --parts c            # only the (c) rows (not writable)
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from benchlib import write_block

D_MODEL, BATCH, SEQ = 512, 8, 512
GATED_HIDDEN, FFN_HIDDEN = 1365, 2048
LR = 1e-3
MATMUL_N = 2048
BACKENDS = ("jax", "tensorflow", "torch")


def train_flops(hidden, gated, tokens=BATCH * SEQ, d=D_MODEL):
    """Matmul FLOPs of one train step. The input needs no gradient, so the
    backward pass is the weight gradients plus the hidden gradient of W2."""
    fwd_in = 2 * tokens * d * hidden * (2 if gated else 1)
    fwd_out = 2 * tokens * hidden * d
    return 2 * fwd_in + 3 * fwd_out


def interleaved(steps, rounds, reps):
    """Median seconds per call of each zero-argument callable, timed in turns."""
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                step()
            times[name].append((time.perf_counter() - t0) / reps)
    return {name: statistics.median(t) for name, t in times.items()}


# --- native implementations ----------------------------------------------------

def _weights(np, hidden, gated, fused, rng):
    s_in, s_out = D_MODEL**-0.5, hidden**-0.5
    if gated and not fused:
        return [rng.normal(size=(D_MODEL, hidden)).astype("float32") * s_in for _ in range(2)] + [
            rng.normal(size=(hidden, D_MODEL)).astype("float32") * s_out]
    width = 2 * hidden if gated else hidden
    return [rng.normal(size=(D_MODEL, width)).astype("float32") * s_in,
            rng.normal(size=(hidden, D_MODEL)).astype("float32") * s_out]


def native_jax(weights, act, gated, fused, x, y):
    import jax
    import jax.numpy as jnp

    f = {"swish": jax.nn.silu, "gelu": lambda z: jax.nn.gelu(z, approximate=False)}[act]

    def forward(p, x):
        if not gated:
            return f(x @ p[0]) @ p[1]
        if fused:
            a, b = jnp.split(x @ p[0], 2, axis=-1)
        else:
            a, b = x @ p[0], x @ p[1]
        return (f(a) * b) @ p[-1]

    def loss(p, x, y):
        return jnp.mean(jnp.square(forward(p, x) - y))

    @jax.jit
    def step(p, x, y):
        value, grads = jax.value_and_grad(loss)(p, x, y)
        return [w - LR * g for w, g in zip(p, grads)], value

    state = {"p": [jnp.asarray(w) for w in weights]}
    x, y = jnp.asarray(x), jnp.asarray(y)

    def run():
        state["p"], value = step(state["p"], x, y)
        value.block_until_ready()

    return run


def native_tensorflow(weights, act, gated, fused, x, y):
    import tensorflow as tf

    f = {"swish": tf.nn.silu, "gelu": lambda z: tf.nn.gelu(z, approximate=False)}[act]
    p = [tf.Variable(w) for w in weights]
    x, y = tf.constant(x), tf.constant(y)

    @tf.function(jit_compile=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            if not gated:
                out = f(x @ p[0]) @ p[1]
            else:
                if fused:
                    a, b = tf.split(x @ p[0], 2, axis=-1)
                else:
                    a, b = x @ p[0], x @ p[1]
                out = (f(a) * b) @ p[-1]
            value = tf.reduce_mean(tf.square(out - y))
        for w, g in zip(p, tape.gradient(value, p)):
            w.assign_sub(LR * g)
        return value

    return lambda: step(x, y).numpy()


def native_torch(weights, act, gated, fused, x, y):
    import torch
    from torch import nn
    from torch.nn import functional as F

    f = {"swish": F.silu, "gelu": F.gelu}[act]  # F.gelu is exact by default

    def linear(w):
        layer = nn.Linear(*w.shape, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w.T.copy()))
        return layer

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.projections = nn.ModuleList(linear(w) for w in weights[:-1])
            self.out = linear(weights[-1])

        def forward(self, x):
            if not gated:
                return self.out(f(self.projections[0](x)))
            if fused:
                a, b = self.projections[0](x).chunk(2, dim=-1)
            else:
                a, b = self.projections[0](x), self.projections[1](x)
            return self.out(f(a) * b)

    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def run():
        opt.zero_grad()
        value = F.mse_loss(net(x), y)
        value.backward()
        opt.step()
        value.item()

    return run


def matmul_step(backend, np, rng):
    """One (n × n) @ (n × n) float32 matmul in the backend, compiled where the
    backend compiles; its FLOP/s is the yardstick of (b)."""
    a = rng.normal(size=(MATMUL_N, MATMUL_N)).astype("float32")
    b = rng.normal(size=(MATMUL_N, MATMUL_N)).astype("float32")
    if backend == "jax":
        import jax

        mm, a, b = jax.jit(lambda u, v: u @ v), jax.numpy.asarray(a), jax.numpy.asarray(b)
        return lambda: mm(a, b).block_until_ready()
    if backend == "tensorflow":
        import tensorflow as tf

        mm, a, b = tf.function(lambda u, v: u @ v, jit_compile=True), tf.constant(a), tf.constant(b)
        return lambda: mm(a, b).numpy()
    import torch

    a, b = torch.from_numpy(a), torch.from_numpy(b)
    return lambda: torch.matmul(a, b)


# --- Keras ---------------------------------------------------------------------

def keras_step(layer, x, y):
    import keras

    model = keras.Sequential([keras.Input((SEQ, D_MODEL)), layer])
    model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse",
                  jit_compile=keras.backend.backend() != "torch")
    x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
    return lambda: model.train_on_batch(x, y)


PARTS = ("ab", "c", "d")


def worker(backend, rounds, reps, parts=PARTS):
    import numpy as np

    import keras

    from glu_zoo.layers import FFN, GatedFFN

    rng = np.random.default_rng(0)
    native = {"jax": native_jax, "tensorflow": native_tensorflow, "torch": native_torch}[backend]
    x = rng.normal(size=(BATCH, SEQ, D_MODEL)).astype("float32")
    y = rng.normal(size=(BATCH, SEQ, D_MODEL)).astype("float32")

    def warm(steps):
        for step in steps.values():
            for _ in range(3):  # compile and settle
                step()
        return steps

    result = {"backend": backend, "keras": keras.__version__}
    if backend == "jax":
        import jax
        result["version"] = jax.__version__
    elif backend == "tensorflow":
        import tensorflow as tf
        result["version"] = tf.__version__
    else:
        import torch
        result["version"] = torch.__version__

    cases = {"swiglu": (GatedFFN(GATED_HIDDEN, variant="swiglu"), "swish", GATED_HIDDEN, True),
             "gelu": (FFN(FFN_HIDDEN, activation="gelu"), "gelu", FFN_HIDDEN, False)}
    for name, (layer, act, hidden, gated) in cases.items() if "ab" in parts else ():
        steps = warm({
            "keras": keras_step(layer, x, y),
            "native": native(_weights(np, hidden, gated, True, rng), act, gated, True, x, y),
            "matmul": matmul_step(backend, np, rng),
        })
        t = interleaved(steps, rounds, reps)
        result[name] = {**t, "flops": train_flops(hidden, gated), "matmul_flops": 2 * MATMUL_N**3 / t["matmul"]}

    if "c" in parts:
        steps = warm({act: keras_step(FFN(FFN_HIDDEN, activation=act), x, y) for act in ("gelu", "golu", "xatlu")})
        result["activations"] = interleaved(steps, rounds, reps)

    if "d" not in parts:
        return result
    steps = warm({
        "fused": native(_weights(np, GATED_HIDDEN, True, True, rng), "swish", True, True, x, y),
        "split": native(_weights(np, GATED_HIDDEN, True, False, rng), "swish", True, False, x, y),
    })
    result["projection"] = interleaved(steps, rounds, reps)
    return result


# --- report --------------------------------------------------------------------

def table(results):
    lines = [
        f"FFN train step (forward, backward, SGD), d_model {D_MODEL}, batch × seq {BATCH} × {SEQ}, "
        f"float32, {platform.machine()} CPU with {os.cpu_count()} cores. Median ms per step; "
        "Keras and native timed in alternating rounds in one process.",
    ]
    if any("gelu" in r for r in results):
        lines += [
            "",
            "| backend | layer | Keras ms | native ms | (a) Keras / native | Keras GFLOP/s | "
            "matmul GFLOP/s | (b) fraction of matmul |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for r in results:
        for name, label in (("swiglu", f"GatedFFN swiglu h={GATED_HIDDEN}"), ("gelu", f"FFN gelu h={FFN_HIDDEN}")):
            if name not in r:
                continue
            c = r[name]
            rate = c["flops"] / c["keras"]
            lines.append(
                f"| {r['backend']} {r['version']} | {label} | {1e3 * c['keras']:.1f} | {1e3 * c['native']:.1f} | "
                f"{c['keras'] / c['native']:.3f} | {rate / 1e9:.1f} | {c['matmul_flops'] / 1e9:.1f} | "
                f"{rate / c['matmul_flops']:.3f} |"
            )
    lines += [
        "",
        "| backend | GELU-FFN ms | (c) GoLU-FFN / GELU-FFN | (c) xATLU-FFN / GELU-FFN | "
        "(d) fused / two-matrix GLU projection (native) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        a, p = r.get("activations"), r.get("projection")
        lines.append(
            f"| {r['backend']} | " + (f"{1e3 * a['gelu']:.1f} | {a['golu'] / a['gelu']:.3f} | "
                                      f"{a['xatlu'] / a['gelu']:.3f} | " if a else "– | – | – | ")
            + (f"{p['fused'] / p['split']:.3f} |" if p else "– |")
        )
    lines.append("")
    lines.append(f"Keras {results[0]['keras']}; matmul rate from a {MATMUL_N}³ float32 matmul, "
                 "compiled on JAX and TensorFlow, timed in the same rounds as the layer. Aims: (a) ≤ 1.10, (b) ≥ 0.75 on the best backend, (c) ≤ 1.15.")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="which measurements: ab (Keras / native, matmul fraction), c (GoLU and "
                             "xATLU against GELU), d (fused projection); default all. Only a run "
                             "of all parts can be written with --write.")
    parser.add_argument("--write", metavar="PATH", help="put the table into this markdown file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    parts = tuple(args.parts.split(","))
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"--parts: unknown part {unknown[0]!r}; allowed: {', '.join(PARTS)}")
    if args.write and set(parts) != set(PARTS):
        parser.error(f"--write needs every part ({','.join(PARTS)}); got --parts {args.parts}")
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.rounds, args.reps, parts)), flush=True)
        return
    results = []
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            parser.error(f"--backends: unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [sys.executable, __file__, "--worker", backend, "--rounds", str(args.rounds), "--reps", str(args.reps),
               "--parts", args.parts]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.split("RESULT ", 1)[1]))
        print(f"{backend}: done", file=sys.stderr, flush=True)
    text = table(results)
    print(text)
    if args.write:
        write_block(args.write, 'bench_ffn', 'FFN layers (`tools/bench_ffn.py`)', text)


if __name__ == "__main__":
    main()
