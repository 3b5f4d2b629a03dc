"""Benchmark attention and unpadding: MosaicBERT packed against padded, ALiBi
attention through the fused path against the naive one, and the tiny
GLUTransformer against the same model built from keras.layers.MultiHeadAttention.

Each backend runs in its own process (KERAS_BACKEND set), float32; in it the
contenders of a row are timed in alternating rounds, median seconds per call:

  (a) MosaicBERT train step (`train_on_batch`: forward, backward, Adam;
      compiled with jit_compile="auto", eager on torch) on one fixed masked-LM
      batch with 50% padding (row lengths alternate L/4 and 3L/4), padded
      (batch rows) against packed (`pack_mlm_batch`: pairs share a row, batch/2
      rows). Steps/s and real tokens/s; aim packed ≥ 1.4× padded tokens/s.
      Sizes: mosaic_bert_tiny (d 128, 2 layers) and "small" (d 256, 4 layers,
      4 heads, GeGLU 512), L 128, batch 32.
  (b) ALiBi attention, forward + backward (gradient of a weighted sum with
      respect to q, k, v), `glu_zoo.layers.attention.dot_product_attention`
      against `naive_attention`, (batch, T, heads, head_dim) shapes below,
      compiled (jax.jit, tf.function(jit_compile=True), eager torch).
  (c) Train-step tokens/s of glu_transformer_tiny decoder-only against the same
      sizes (read from the built model; pre-RMSNorm, GeGLU, tied logits) built from keras.layers.MultiHeadAttention (causal mask, no relative
      position bias), L 128, batch 16.

    python tools/bench_attention.py                          # all backends
    python tools/bench_attention.py --quick --backends jax   # a smoke run: small shapes, 2 rounds
    python tools/bench_attention.py --write docs/benchmarks.md
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

BACKENDS = ("jax", "tensorflow", "torch")
AIM_PACKED = 1.4
SIZES = {
    "tiny": dict(vocabulary_size=384, hidden_dim=128, num_layers=2, num_heads=4, intermediate_dim=256),
    "small": dict(vocabulary_size=384, hidden_dim=256, num_layers=4, num_heads=4, intermediate_dim=512),
}
ATTENTION_SHAPES = ((8, 128, 4, 32), (4, 512, 8, 64))
QUICK = dict(sizes=("tiny",), length=32, batch=8, attention_shapes=((2, 32, 2, 16),), lm_length=32, lm_batch=4)
FULL = dict(sizes=("tiny", "small"), length=128, batch=32, attention_shapes=ATTENTION_SHAPES, lm_length=128,
            lm_batch=16)


def _timed(calls, rounds):
    """{name: median seconds} of the zero-argument `calls`, each called once to compile, then in alternating
    rounds."""
    for call in calls.values():
        call()
        call()
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def _sync(out):
    import keras

    keras.ops.convert_to_numpy(out if not isinstance(out, (list, tuple)) else out[0])


def _mlm_batch(length, batch, rng):
    import numpy as np

    lengths = np.where(np.arange(batch) % 2 == 0, length // 4, length - length // 4)
    mask = np.arange(length)[None] < lengths[:, None]
    ids = np.where(mask, rng.integers(4, 260, (batch, length)), 0).astype("int32")
    sw = (mask & (rng.random((batch, length)) < 0.3)).astype("float32")
    return {"token_ids": ids, "padding_mask": mask}, ids, sw


def part_a(cfg, rounds, rng):
    import keras
    import numpy as np

    from glu_zoo.models.mosaic_bert import MosaicBERT, pack_mlm_batch

    rows = []
    x, y, sw = _mlm_batch(cfg["length"], cfg["batch"], rng)
    xp, yp, swp, packing = pack_mlm_batch(x, y, sw, row_multiple=4)
    real = int(x["padding_mask"].sum())
    for size in cfg["sizes"]:
        calls = {}
        for kind, (bx, by, bsw) in (("padded", (x, y, sw)), ("packed", (xp, yp, swp))):
            keras.utils.set_random_seed(0)
            model = MosaicBERT(**SIZES[size], dropout=0.0, max_sequence_length=cfg["length"])
            model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile="auto",
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            calls[kind] = (lambda m, a, b, c: (lambda: m.train_on_batch(a, b, sample_weight=c)))(model, bx, by, bsw)
        t = _timed(calls, rounds)
        rows.append({"part": "a", "size": size, "length": cfg["length"], "batch": cfg["batch"],
                     "packed_rows": packing.num_rows, "real_tokens": real, "padding": 1 - real / x["token_ids"].size,
                     "seconds": t})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _gradient_step(fn):
    """A compiled function (q, k, v, w, bias) → (Σ w·fn(q, k, v, bias), its gradients in q, k, v)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def loss(q, k, v, w, bias):
            return (fn(q, k, v, bias=bias) * w).sum()

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(q, k, v, w, bias):
            with tf.GradientTape() as tape:
                tape.watch([q, k, v])
                value = tf.reduce_sum(fn(q, k, v, bias=bias) * w)
            return value, tape.gradient(value, [q, k, v])

        return step
    import torch

    def step(q, k, v, w, bias):
        q, k, v = (t.detach().requires_grad_(True) for t in (q, k, v))
        value = (fn(q, k, v, bias=bias) * w).sum()
        grads = torch.autograd.grad(value, (q, k, v))
        return value, grads

    return step


def part_b(cfg, rounds, rng):
    import keras
    import numpy as np

    from glu_zoo.layers.attention import alibi_bias, alibi_slopes, dot_product_attention, naive_attention

    rows = []
    for batch, length, heads, dim in cfg["attention_shapes"]:
        q, k, v, w = (keras.ops.convert_to_tensor(rng.normal(size=(batch, length, heads, dim)).astype("float32"))
                      for _ in range(4))
        positions = np.arange(length)[None]
        bias = keras.ops.convert_to_tensor(alibi_bias(alibi_slopes(heads), positions, positions))
        steps = {"dot_product_attention": _gradient_step(dot_product_attention),
                 "naive_attention": _gradient_step(naive_attention)}
        values = {name: keras.ops.convert_to_numpy(step(q, k, v, w, bias)[0]) for name, step in steps.items()}
        calls = {name: (lambda s: (lambda: _sync(s(q, k, v, w, bias)[1])))(step) for name, step in steps.items()}
        t = _timed(calls, rounds)
        rows.append({"part": "b", "shape": [batch, length, heads, dim], "seconds": t,
                     "difference": float(abs(values["dot_product_attention"] - values["naive_attention"]))})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def keras_mha_lm(vocabulary_size, model_dim, num_layers, num_heads, hidden_dim, epsilon):
    """The baseline of (c): glu_transformer_tiny's sizes (read from the built model) built from keras.layers.MultiHeadAttention
    (pre-RMSNorm blocks, causal self-attention, GeGLU, tied logits; no relative position bias)."""
    import keras

    from glu_zoo.layers.embedding import ReversibleEmbedding
    from glu_zoo.layers.ffn import GatedFFN

    ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="bool", name="padding_mask")
    embedding = ReversibleEmbedding(vocabulary_size, model_dim, logit_scale=model_dim ** -0.5)
    x = embedding(ids)
    for i in range(num_layers):
        h = keras.layers.RMSNormalization(epsilon=epsilon)(x)
        h = keras.layers.MultiHeadAttention(num_heads, model_dim // num_heads, use_bias=False)(
            h, h, attention_mask=keras.ops.expand_dims(mask, 1), use_causal_mask=True)
        x = x + h
        x = x + GatedFFN(hidden_dim, variant="geglu")(keras.layers.RMSNormalization(epsilon=epsilon)(x))
    logits = embedding(keras.layers.RMSNormalization(epsilon=epsilon)(x), reverse=True)
    return keras.Model({"token_ids": ids, "padding_mask": mask}, logits)


def part_c(cfg, rounds, rng):
    import keras
    import numpy as np

    from glu_zoo.models import build

    length, batch = cfg["lm_length"], cfg["lm_batch"]
    ids = rng.integers(4, 260, (batch, length)).astype("int32")
    x = {"token_ids": ids, "padding_mask": np.ones((batch, length), bool)}
    y = np.roll(ids, -1, axis=1)
    calls = {}
    keras.utils.set_random_seed(0)
    ours = build("glu_transformer_tiny", decoder_only=True)
    sizes = dict(vocabulary_size=ours.vocabulary_size, model_dim=ours.model_dim, num_layers=ours.num_layers,
                 num_heads=ours.num_heads, hidden_dim=ours.hidden_dim, epsilon=ours.epsilon)
    for name in ("glu_transformer_tiny", "keras_mha"):
        keras.utils.set_random_seed(0)
        model = ours if name != "keras_mha" else keras_mha_lm(**sizes)
        model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile="auto",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        calls[name] = (lambda m: (lambda: m.train_on_batch(x, y)))(model)
        calls[name + " params"] = model.count_params()
    params = {k[:-7]: calls.pop(k) for k in list(calls) if k.endswith(" params")}
    t = _timed(calls, rounds)
    row = {"part": "c", "length": length, "batch": batch, "seconds": t, "params": params, "sizes": sizes}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return [row]


def worker(backend, cfg, rounds, parts):
    import numpy as np

    from glu_zoo.ops.scan import device_kind

    rng = np.random.default_rng(0)
    rows = []
    for part, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
        if part in parts:
            for row in fn(cfg, rounds, rng):
                rows.append({"backend": backend, "device": device_kind(), **row})
    return rows


def table(rows):
    lines = ["(a) MosaicBERT train step on one masked-LM batch with 50% padding: padded (all rows) against packed "
             "(`pack_mlm_batch`), median of alternating rounds; tokens/s counts real tokens.", "",
             "| backend | device | size | L × batch | packed rows | padded steps/s | packed steps/s | "
             "padded tokens/s | packed tokens/s | packed / padded |", "|---|---|---|---|---|---|---|---|---|---|"]
    aims = []
    for r in (r for r in rows if r["part"] == "a"):
        t = r["seconds"]
        ratio = t["padded"] / t["packed"]
        aims.append(ratio >= AIM_PACKED)
        lines.append(f"| {r['backend']} | {r['device']} | {r['size']} | {r['length']} × {r['batch']} | "
                     f"{r['packed_rows']} | {1 / t['padded']:.2f} | {1 / t['packed']:.2f} | "
                     f"{r['real_tokens'] / t['padded']:,.0f} | {r['real_tokens'] / t['packed']:,.0f} | {ratio:.2f}× |")
    lines += ["", f"Aim packed ≥ {AIM_PACKED}× padded: met in {sum(aims)} of {len(aims)} rows.", "",
              "(b) ALiBi attention forward + backward (gradient in q, k, v), median ms per call.", "",
              "| backend | device | batch, T, heads, head_dim | dot_product_attention | naive_attention | "
              "naive / dot_product | |loss difference| |", "|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if r["part"] == "b"):
        t = r["seconds"]
        lines.append(f"| {r['backend']} | {r['device']} | {', '.join(map(str, r['shape']))} | "
                     f"{t['dot_product_attention'] * 1e3:.2f} | {t['naive_attention'] * 1e3:.2f} | "
                     f"{t['naive_attention'] / t['dot_product_attention']:.2f} | {r['difference']:.1e} |")
    lines += ["", "(c) Decoder-only LM train step, tokens/s: glu_transformer_tiny against the same sizes built "
              "from keras.layers.MultiHeadAttention (no relative position bias; its weights are the same but for the "
              "relative position table).", "",
              "| backend | device | d, blocks, heads, GeGLU | L × batch | GLUTransformer tokens/s | keras MHA tokens/s | GLUTransformer / keras "
              "MHA | weights (ours, keras) |", "|---|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if r["part"] == "c"):
        t, tokens = r["seconds"], r["length"] * r["batch"]
        z = r["sizes"]
        lines.append(f"| {r['backend']} | {r['device']} | {z['model_dim']}, {z['num_layers']}, {z['num_heads']}, "
                     f"{z['hidden_dim']} | {r['length']} × {r['batch']} | {tokens / t['glu_transformer_tiny']:,.0f} | {tokens / t['keras_mha']:,.0f} | "
                     f"{t['keras_mha'] / t['glu_transformer_tiny']:.2f} | {r['params']['glu_transformer_tiny']:,}, "
                     f"{r['params']['keras_mha']:,} |")
    lines += ["", f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; float32."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--parts", default="abc")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small shapes and 2 rounds: a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the raw rows (after every backend)")
    parser.add_argument("--write", metavar="PATH")
    parser.add_argument("--worker", metavar="BACKEND", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    rounds = 2 if args.quick else args.rounds
    if args.worker:
        rows = worker(args.worker, cfg, rounds, args.parts)
        print("RESULT " + json.dumps(rows), flush=True)
        return
    if args.write and args.quick:
        parser.error("--quick results are a smoke run; they are not written")
    rows = []
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [sys.executable, __file__, "--worker", backend, "--parts", args.parts, "--rounds", str(args.rounds)]
        if args.quick:
            cmd.append("--quick")
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if run.returncode:  # reported; the other backends still run
            print(f"{backend} failed:\n{run.stderr[-3000:]}", file=sys.stderr, flush=True)
            continue
        rows += json.loads(run.stdout.split("RESULT ", 1)[1])
        print(f"{backend} done", file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
        if args.write:  # incrementally: a later failure loses nothing
            write_block(args.write, "bench_attention", "Attention and unpadding (`tools/bench_attention.py`)",
                        table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
