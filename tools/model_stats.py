"""TRecViT (arXiv 2412.14294) against joint space-time attention (ViViT model 1,
arXiv 2103.15691): parameters, FLOPs and activation memory counted from the
layer shapes, and clips/s, peak memory and streaming latency measured side by
side. The method (every formula) is in docs/model_stats.md.

Counted (no model runs, nothing large is allocated):
- parameters, per part, from the layer shapes; the built Keras models' own
  weight shapes (read in a `keras.StatelessScope` that allocates nothing)
  must give the same totals;
- multiply-accumulates (MACs; 1 MAC = 2 FLOPs) of every matmul, convolution,
  attention product (QKᵀ and AV), block-diagonal gate, temporal-conv tap and
  scan step, per clip; biases, norms, activations, softmax and other
  element-wise work are NOT counted;
- activation memory, float32 bytes per clip: (train) the tensors that a
  layer keeps for its backward pass, summed over the layers; (inference) the
  largest set of tensors alive at once in a forward pass that frees every
  tensor after its last use.

Measured (`--part measure`): each (model, frames, kind) in a fresh process
with KERAS_BACKEND set; TRecViT and the joint-attention ViViT at the same
width, depth, heads, MLP and patches, alternating, in one run.

    python tools/model_stats.py --part static         # the counts: TRecViT-B against ViViT-L
    python tools/model_stats.py --quick               # smoke test of everything (a minute)
    python tools/model_stats.py --part measure --frames 8,16,32,64 --backend jax
    python tools/model_stats.py --write docs/benchmarks.md   # both, into this tool's blocks there
"""

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HEADING = "TRecViT against joint space-time attention (`tools/model_stats.py`)"
FLOAT32 = 4
CLAIMS = {"parameters": 3.0, "flops": 5.0, "memory": 12.0}  # the TRecViT paper's abstract (v1) against ViViT-L


# === configurations ====================================================================


@dataclasses.dataclass(frozen=True)
class TRecViTShape:
    """What TRecViT's counts depend on (defaults: the official TRecViT-B, 400 classes)."""

    image_size: tuple = (224, 224)
    num_channels: int = 3
    patch_size: int = 16
    hidden_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    lru_width: int = None  # None: 2·hidden_dim
    conv_width: int = 4
    representation_dim: int = 3072
    num_classes: int = 400

    @property
    def width(self):
        return self.lru_width or 2 * self.hidden_dim

    @property
    def patches(self):
        return (self.image_size[0] // self.patch_size) * (self.image_size[1] // self.patch_size)


@dataclasses.dataclass(frozen=True)
class ViViTShape:
    """ViViT model 1 (joint space-time attention, a class token, learned
    positions over all tokens, no pre-logits): tubelets of `tubelet` frames ×
    patch × patch (1: per-frame patches, as glu_zoo's ViViT)."""

    frames: int = 32
    image_size: tuple = (224, 224)
    num_channels: int = 3
    patch_size: int = 16
    tubelet: int = 1
    hidden_dim: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    mlp_dim: int = 4096
    num_classes: int = 400

    @property
    def patches(self):
        return (self.image_size[0] // self.patch_size) * (self.image_size[1] // self.patch_size)

    @property
    def tokens(self):
        """1 + (T / t)·N: the class token and the tubelets of the clip."""
        return 1 + (self.frames // self.tubelet) * self.patches


def _square(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def trecvit_shape(architecture="trecvit_b", **overrides):
    """The TRecViTShape of a named architecture of glu_zoo.models (with overrides)."""
    from glu_zoo.models.trecvit import ARCHITECTURES

    _, config = ARCHITECTURES[architecture]
    config = {**config, **overrides}
    fields = {f.name for f in dataclasses.fields(TRecViTShape)}
    values = {k: v for k, v in config.items() if k in fields}
    values["image_size"] = _square(values.get("image_size", 224))
    return TRecViTShape(**values)


# ViViT-L/16x2 (ViViT model 1, the paper's "spatio-temporal attention"), Kinetics-400 input: 32 frames of
# 224×224×3, tubelets of 2×16×16 → 16·196 = 3,136 tokens + the class token (scenic's ViViT configs).
VIVIT_L_16X2 = ViViTShape(frames=32, tubelet=2)
# The same with per-frame 16×16 patches (32·196 = 6,272 tokens + 1): what glu_zoo's ViViT(attention="joint") builds.
VIVIT_L_16X1 = ViViTShape(frames=32, tubelet=1)


# === parameters ========================================================================


def dense_parameters(d_in, d_out, bias=True):
    return d_in * d_out + (d_out if bias else 0)


def vit_block_parameters(d, m):
    """Pre-norm ViT block: 2 LayerNorms (scale, bias), Q, K, V, O with biases, MLP d→m→d with biases."""
    return 2 * 2 * d + 4 * dense_parameters(d, d) + dense_parameters(d, m) + dense_parameters(m, d)


def recurrent_block_parameters(d, w, heads, conv_width):
    """Griffin's recurrent block (no MLP): RMSNorm scale, linear_x, linear_y (d→w), linear_out (w→d),
    depthwise conv (conv_width·w + w), a_param (w), two block-diagonal gates (heads·b² + w, b = w/heads)."""
    block = w // heads
    return (d + 2 * dense_parameters(d, w) + dense_parameters(w, d) + conv_width * w + w + w
            + 2 * (heads * block * block + w))


def trecvit_parameters(s):
    """{part: count} and 'total' for a TRecViTShape."""
    d, p, c = s.hidden_dim, s.patch_size, s.num_channels
    parts = {
        "tokenizer": p * p * c * d + d + s.patches * d + d,  # patch kernel + bias, position table, class token
        "recurrent blocks": s.num_layers * recurrent_block_parameters(d, s.width, s.num_heads, s.conv_width),
        "ViT blocks": s.num_layers * vit_block_parameters(d, s.mlp_dim),
        "final norm": 2 * d,
        "head": dense_parameters(d, s.representation_dim) + dense_parameters(s.representation_dim, s.num_classes),
    }
    parts["total"] = sum(parts.values())
    return parts


def vivit_parameters(s):
    """{part: count} and 'total' for a ViViTShape."""
    d, p, c = s.hidden_dim, s.patch_size, s.num_channels
    parts = {
        "tokenizer": s.tubelet * p * p * c * d + d + d + s.tokens * d,  # tubelet kernel + bias, class token, positions
        "ViT blocks": s.num_layers * vit_block_parameters(d, s.mlp_dim),
        "final norm": 2 * d,
        "head": dense_parameters(d, s.num_classes),
    }
    parts["total"] = sum(parts.values())
    return parts


def built_parameters(cls, config):
    """The number of weights that `cls(**config)` creates, read from the
    shapes of its variables without allocating them (`presets.io.unallocated`)."""
    import numpy as np

    from glu_zoo.presets.io import unallocated

    with unallocated(lambda: cls(**config)) as model:
        return sum(int(np.prod(v.shape)) for v in model.weights)


# === multiply-accumulates ==============================================================


def matmul_macs(rows, d_in, d_out):
    """(rows, d_in) @ (d_in, d_out): rows·d_in·d_out multiply-accumulates."""
    return rows * d_in * d_out


def attention_macs(sequences, tokens, d):
    """QKᵀ and AV over `sequences` independent sequences of `tokens` tokens, all heads:
    2·sequences·tokens²·d (each is tokens²·(d/H) per head, H heads)."""
    return 2 * sequences * tokens * tokens * d


def vit_block_macs(sequences, tokens, d, m):
    rows = sequences * tokens
    return {"QKVO projections": 4 * matmul_macs(rows, d, d),
            "attention QKᵀ, AV": attention_macs(sequences, tokens, d),
            "MLP": matmul_macs(rows, d, m) + matmul_macs(rows, m, d)}


def recurrent_block_macs(rows, d, w, heads, conv_width):
    """Per token-step: linear_x, linear_y (2·d·w), linear_out (w·d), the two block-diagonal
    gates (2·w·b, b = w/heads), the depthwise temporal conv (conv_width·w) and the scan
    h_t = a_t·h_{t−1} + b_t (w)."""
    block = w // heads
    return {"linear x, y, out": 2 * matmul_macs(rows, d, w) + matmul_macs(rows, w, d),
            "RG-LRU gates": 2 * rows * w * block,
            "temporal conv": rows * conv_width * w,
            "scan": rows * w}


def trecvit_macs(s, frames):
    """{part: MACs} and 'total' for one clip of `frames` frames."""
    n = s.patches + 1
    rows = frames * n
    d = s.hidden_dim
    parts = {"patch embedding": matmul_macs(frames * s.patches, s.patch_size ** 2 * s.num_channels, d)}
    for name, value in recurrent_block_macs(rows, d, s.width, s.num_heads, s.conv_width).items():
        parts[name] = s.num_layers * value
    for name, value in vit_block_macs(frames, n, d, s.mlp_dim).items():
        parts[name] = s.num_layers * value
    parts["head"] = matmul_macs(frames, d, s.representation_dim) + matmul_macs(1, s.representation_dim,
                                                                               s.num_classes)
    parts["total"] = sum(parts.values())
    return parts


def vivit_macs(s):
    """{part: MACs} and 'total' for one clip of s.frames frames."""
    d = s.hidden_dim
    tubelets = (s.frames // s.tubelet) * s.patches
    parts = {"patch embedding": matmul_macs(tubelets, s.tubelet * s.patch_size ** 2 * s.num_channels, d)}
    for name, value in vit_block_macs(1, s.tokens, d, s.mlp_dim).items():
        parts[name] = s.num_layers * value
    parts["head"] = matmul_macs(1, d, s.num_classes)
    parts["total"] = sum(parts.values())
    return parts


# === activation memory =================================================================
# A layer is a straight-line list of ops (name, output elements, inputs, saved): `inputs`
# name earlier outputs or "x" (the layer's input); `saved` names the tensors that the op's
# backward needs (inputs of matmuls and products, the input or output of a nonlinearity).


def vit_block_ops(sequences, tokens, d, m, heads, x="x"):
    rows = sequences * tokens
    scores = sequences * heads * tokens * tokens
    return [
        ("ln1", rows * d, [x], [x]),
        ("q", rows * d, ["ln1"], ["ln1"]),
        ("k", rows * d, ["ln1"], ["ln1"]),
        ("v", rows * d, ["ln1"], ["ln1"]),
        ("scores", scores, ["q", "k"], ["q", "k"]),
        ("probs", scores, ["scores"], ["probs"]),
        ("att", rows * d, ["probs", "v"], ["probs", "v"]),
        ("att_out", rows * d, ["att"], ["att"]),
        ("x_att", rows * d, [x, "att_out"], []),
        ("ln2", rows * d, ["x_att"], ["x_att"]),
        ("mlp_in", rows * m, ["ln2"], ["ln2"]),
        ("gelu", rows * m, ["mlp_in"], ["mlp_in"]),
        ("mlp_out", rows * d, ["gelu"], ["gelu"]),
        ("x_mlp", rows * d, ["x_att", "mlp_out"], []),
    ]


def recurrent_block_ops(rows, d, w, x="x"):
    return [
        ("rms", rows * d, [x], [x]),
        ("y", rows * w, ["rms"], ["rms"]),
        ("y_gelu", rows * w, ["y"], ["y"]),
        ("u", rows * w, ["rms"], ["rms"]),
        ("conv", rows * w, ["u"], ["u"]),
        ("gate_x_in", rows * w, ["conv"], ["conv"]),
        ("gate_x", rows * w, ["gate_x_in"], ["gate_x"]),
        ("gate_a_in", rows * w, ["conv"], ["conv"]),
        ("gate_a", rows * w, ["gate_a_in"], ["gate_a"]),
        ("a", rows * w, ["gate_a"], ["a"]),  # a = exp(−8·gate_a·softplus(a_param))
        ("multiplier", rows * w, ["a"], ["a", "multiplier"]),  # √(1 − a²)
        ("mg", rows * w, ["multiplier", "gate_x"], ["multiplier", "gate_x"]),
        ("b", rows * w, ["mg", "conv"], ["mg", "conv"]),
        ("h", rows * w, ["a", "b"], ["a", "h"]),  # h_t = a_t·h_{t−1} + b_t
        ("z", rows * w, ["h", "y_gelu"], ["h", "y_gelu"]),
        ("rec_out", rows * d, ["z"], ["z"]),
        ("x_rec", rows * d, [x, "rec_out"], []),
    ]


def trecvit_layer_ops(s, frames):
    n = s.patches + 1
    rows = frames * n
    return (recurrent_block_ops(rows, s.hidden_dim, s.width)
            + vit_block_ops(frames, n, s.hidden_dim, s.mlp_dim, s.num_heads, x="x_rec"))


def vivit_layer_ops(s):
    return vit_block_ops(1, s.tokens, s.hidden_dim, s.mlp_dim, s.num_heads)


def saved_elements(ops, input_size):
    """Elements of the distinct tensors that the ops keep for the backward pass."""
    sizes = {"x": input_size, **{name: size for name, size, _, _ in ops}}
    return sum(sizes[t] for t in {t for _, _, _, saved in ops for t in saved})


def peak_elements(ops, input_size):
    """The most elements alive at once while the ops run in order: a tensor is
    alive from the op that makes it (the input from the start) to its last use;
    an op's inputs and output are alive together; the last output lives on."""
    sizes = {"x": input_size, **{name: size for name, size, _, _ in ops}}
    born = {"x": -1, **{name: i for i, (name, _, _, _) in enumerate(ops)}}
    last = {name: i for i, (name, _, _, _) in enumerate(ops)}
    for i, (_, _, inputs, _) in enumerate(ops):
        for t in inputs:
            last[t] = max(last.get(t, i), i)
    last[ops[-1][0]] = len(ops)
    return max(sum(sizes[t] for t in sizes if born[t] <= i <= last[t]) for i in range(len(ops)))


def trecvit_memory(s, frames):
    """{'train': bytes, 'inference': bytes, 'stream_state': bytes} per clip of `frames` frames."""
    n = s.patches + 1
    d = s.hidden_dim
    tokens = frames * n * d
    pixels = frames * s.image_size[0] * s.image_size[1] * s.num_channels
    layer = trecvit_layer_ops(s, frames)
    # the final LN's input, the pre-logits' input, the tanh output, the head's input
    head_saved = tokens + frames * d + frames * s.representation_dim + s.representation_dim
    train = s.num_layers * saved_elements(layer, tokens) + pixels + head_saved
    inference = max(peak_elements(layer, tokens), pixels + frames * s.patches * d + tokens)
    # streaming: one frame's activations at a time plus the carried state (conv taps and RG-LRU state of every token)
    state = s.num_layers * n * (s.conv_width - 1 + 1) * s.width
    stream = peak_elements(trecvit_layer_ops(s, 1), n * d) + state
    return {"train": FLOAT32 * train, "inference": FLOAT32 * inference, "stream_frame": FLOAT32 * stream,
            "stream_state": FLOAT32 * state}


def vivit_memory(s):
    """{'train': bytes, 'inference': bytes} per clip."""
    d = s.hidden_dim
    tokens = s.tokens * d
    pixels = s.frames * s.image_size[0] * s.image_size[1] * s.num_channels
    layer = vivit_layer_ops(s)
    head_saved = tokens + d  # LN input, head input
    train = s.num_layers * saved_elements(layer, tokens) + pixels + head_saved
    inference = max(peak_elements(layer, tokens), pixels + (s.tokens - 1) * d + tokens)
    return {"train": FLOAT32 * train, "inference": FLOAT32 * inference}


# === the static report =================================================================


def static_report(frames=32):
    """Rows (dicts) for TRecViT-B, TRecViT-L, ViViT-L/16x2 and ViViT-L/16x1 on `frames` frames of 224², 400 classes."""
    from glu_zoo.models.trecvit import ARCHITECTURES, TRecViT
    from glu_zoo.models.vivit import ViViT

    rows = []
    for name, arch in (("TRecViT-B", "trecvit_b"), ("TRecViT-L", "trecvit_l")):
        s = trecvit_shape(arch)
        built = built_parameters(TRecViT, ARCHITECTURES[arch][1])
        memory = trecvit_memory(s, frames)
        rows.append({"model": name, "tokens": f"{frames}×{s.patches + 1}",
                     "parameters": trecvit_parameters(s)["total"],
                     "built_parameters": built, "macs": trecvit_macs(s, frames)["total"], **memory})
    for name, s in (("ViViT-L/16x2 (model 1)", dataclasses.replace(VIVIT_L_16X2, frames=frames)),
                    ("ViViT-L/16x1 (model 1, glu_zoo ViViT)", dataclasses.replace(VIVIT_L_16X1, frames=frames))):
        built = None
        if s.tubelet == 1:  # glu_zoo's ViViT has per-frame patches only
            built = built_parameters(ViViT, dict(frames=s.frames, image_size=224, num_channels=3, patch_size=16,
                                                 num_classes=400, hidden_dim=1024, num_layers=24, num_heads=16,
                                                 mlp_dim=4096, mlp="gelu_tanh", attention="joint"))
        rows.append({"model": name, "tokens": f"1+{s.tokens - 1}", "parameters": vivit_parameters(s)["total"],
                     "built_parameters": built, "macs": vivit_macs(s)["total"], **vivit_memory(s)})
    return rows


def _gb(x):
    return f"{x / 1e9:,.2f}"


def static_table(rows, frames):
    lines = [
        f"Per clip of {frames} frames of 224×224×3, 400 classes, batch 1, float32. MACs: multiply-accumulates of "
        "every matmul, convolution, attention product (QKᵀ, AV), RG-LRU gate, temporal-conv tap and scan step "
        "(1 MAC = 2 FLOPs; element-wise work not counted). Train memory: the tensors kept for the backward pass, "
        "all layers; inference peak: the most tensors alive at once in a forward pass that frees each after its "
        "last use (method: docs/model_stats.md).",
        "",
        "| model | tokens | parameters (counted / built) | GMACs | GFLOPs | train activations GB | inference peak GB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        built = "n/a" if r["built_parameters"] is None else f"{r['built_parameters']:,}"
        lines.append(f"| {r['model']} | {r['tokens']} | {r['parameters']:,} / {built} | {r['macs'] / 1e9:,.1f} | "
                     f"{2 * r['macs'] / 1e9:,.1f} | {_gb(r['train'])} | {_gb(r['inference'])} |")
    b = rows[0]
    lines += ["", "| ViViT-L against TRecViT-B | parameters | FLOPs | train activations | inference peak |",
              "|---|---|---|---|---|"]
    for r in rows[2:]:
        lines.append(f"| {r['model']} | {r['parameters'] / b['parameters']:.2f}× (claim 3×) | "
                     f"{r['macs'] / b['macs']:.2f}× (claim 5×) | {r['train'] / b['train']:.2f}× (claim 12×) | "
                     f"{r['inference'] / b['inference']:.2f}× (claim 12×) |")
    lines += ["", f"TRecViT-B streaming, one frame at a time: the carried state is {_gb(b['stream_state'])} GB "
                  f"(conv taps and RG-LRU state of every token, all layers), the peak with one frame's activations "
                  f"{_gb(b['stream_frame'])} GB, whatever the clip length."]
    return "\n".join(lines)


# === measurements ======================================================================


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak():
    """Resets the process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0); False if it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_kib():
    hwm = _status_kib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _gpu_peak_bytes():
    """Peak device bytes in use, or None on the CPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "cpu":
                return None
            return (device.memory_stats() or {}).get("peak_bytes_in_use")
        if backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] if gpus else None
    except Exception:
        return None
    return None


def _models(size, frames):
    """(TRecViT, ViViT-joint) at the same width, depth, heads, MLP and patches."""
    from glu_zoo import models
    from glu_zoo.models.trecvit import ARCHITECTURES
    from glu_zoo.models.vivit import ViViT

    _, config = ARCHITECTURES[f"trecvit_{size}"]
    keys = ("image_size", "num_channels", "patch_size", "num_classes", "hidden_dim", "num_layers", "num_heads",
            "mlp_dim", "mlp")
    return (lambda: models.build(f"trecvit_{size}"),
            lambda: ViViT(frames=frames, attention="joint", **{k: config[k] for k in keys}))


def _median_seconds(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(model_name, frames, kind, size, batch, repeats):
    """One row: build the model, record the RSS (the baseline: built, nothing run), then
    run `kind` ('infer': predict_on_batch, then streaming latency at batch 1; 'train':
    train_on_batch with Adam) and report the median time per call and the peak RSS
    increase over the baseline (first call and its compilation included)."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    build_trecvit, build_vivit = _models(size, frames)
    model = build_trecvit() if model_name == "trecvit" else build_vivit()
    shape = (batch, frames, *model.image_shape)
    x = rng.random(shape, dtype=np.float32)
    y = rng.integers(0, model.num_classes, size=(batch,))
    if kind == "train":
        model.compile(optimizer=keras.optimizers.Adam(1e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    exact = _reset_peak()
    baseline = _status_kib("VmRSS")
    if kind == "train":
        seconds = _median_seconds(lambda: model.train_on_batch(x, y), repeats)
    else:
        seconds = _median_seconds(lambda: model.predict_on_batch(x), repeats)
    peak = _peak_kib()
    row = {"model": model_name, "backend": keras.backend.backend(), "size": size, "frames": frames, "kind": kind,
           "batch": batch, "repeats": repeats, "parameters": model.count_params(), "seconds": seconds,
           "clips_per_second": batch / seconds, "peak_increase_mib": (peak - baseline) / 1024,
           "peak_exact": exact, "gpu_peak_mib": None}
    gpu = _gpu_peak_bytes()
    if gpu is not None:
        row["gpu_peak_mib"] = gpu / 2**20
    if keras.backend.backend() == "jax":  # after the RSS peak is read: XLA's own buffer assignment
        row["xla_temp_mib"] = _xla_temp_bytes(model, x, y, kind) / 2**20
    if kind == "infer":  # streaming at batch 1: model.step frame by frame, against re-running the clip so far
        one = x[:1]
        row["rerun_ms"] = 1e3 * _median_seconds(lambda: model.predict_on_batch(one), repeats)
        if model_name == "trecvit":
            row["step_ms"] = _step_ms(model, model.step, one)
            if keras.backend.backend() == "jax":
                import jax

                row["step_jit_ms"] = _step_ms(model, jax.jit(model.step), one)
    return row


def _step_ms(model, step, clip):
    """Median ms of `step` on one frame, over the frames of `clip` after the first two
    (the first call compiles or traces), for a stream that starts at the clip's start."""
    import keras

    state = model.init_state(clip.shape[0])
    latencies = []
    for t in range(clip.shape[1]):
        start = time.perf_counter()
        logits, state = step(clip[:, t:t + 1], state)
        keras.ops.convert_to_numpy(logits)
        latencies.append(time.perf_counter() - start)
    return 1e3 * statistics.median(latencies[2:] or latencies[1:] or latencies)


def _xla_temp_bytes(model, x, y, kind):
    """JAX only: the temporary buffer bytes of the compiled forward ('infer') or
    forward + backward ('train': gradients of the mean cross-entropy, no optimizer)
    in XLA's buffer assignment (`compiled.memory_analysis().temp_size_in_bytes`):
    the activation working set, without weights, inputs and outputs."""
    import jax
    import keras

    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def logits(trainable, fixed, x, training):
        return model.stateless_call(trainable, fixed, x, training=training)[0]

    if kind == "infer":
        fn, args = (lambda t, f, x: logits(t, f, x, False)), (trainable, fixed, x)
    else:
        def loss(t, f, x, y):
            return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits(t, f, x, True),
                                                                               from_logits=True))

        fn, args = jax.grad(loss), (trainable, fixed, x, y)
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def run_measurements(backend, frames_list, size, batch, repeats):
    rows = []
    for frames in frames_list:
        for kind in ("infer", "train"):
            for model_name in ("trecvit", "vivit"):
                env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", model_name, str(frames), kind,
                       "--size", size, "--batch", str(batch), "--repeats", str(repeats)]
                start = time.perf_counter()
                run = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if run.returncode or "RESULT " not in run.stdout:
                    sys.exit(f"{backend} {model_name} {frames} {kind} failed:\n{run.stderr[-3000:]}")
                row = json.loads(run.stdout.split("RESULT ", 1)[1].splitlines()[0])
                row["process_seconds"] = time.perf_counter() - start
                rows.append(row)
                print(f"{backend} {model_name} T={frames} {kind}: {row['clips_per_second']:.2f} clips/s, "
                      f"+{row['peak_increase_mib']:.0f} MiB ({row['process_seconds']:.0f} s)", file=sys.stderr,
                      flush=True)
    return rows


def measured_table(rows, backend, size, batch, repeats):
    find = {(r["model"], r["frames"], r["kind"]): r for r in rows}
    frames_list = sorted({r["frames"] for r in rows})
    n = _models_tokens(size)
    xla = all("xla_temp_mib" in r for r in rows)
    lines = [
        f"trecvit_{size} against ViViT(attention=\"joint\") at the same width, depth, heads, MLP and patches "
        f"({rows[0]['parameters']:,} / {find[('vivit', frames_list[0], 'infer')]['parameters']:,} parameters at "
        f"{frames_list[0]} frames), backend {backend}, batch {batch}, float32. Each cell one fresh process "
        f"(TRecViT and ViViT alternating, one run); time: median of {repeats} calls after 2 warm-up calls "
        "(predict_on_batch; train_on_batch with Adam); RSS: the process's peak RSS minus its RSS after building "
        "the model and the batch (the first call and its compilation included)"
        + ("; XLA: the temporary buffers of the compiled forward (inference) or forward + backward (training) in "
           "XLA's buffer assignment (activations only)." if xla else "."),
        "",
        "| frames | tokens TRecViT / ViViT | inference clips/s TRecViT / ViViT | training clips/s TRecViT / ViViT "
        "| inference peak RSS MiB | training peak RSS MiB |"
        + (" inference XLA MiB | training XLA MiB |" if xla else ""),
        "|---|---|---|---|---|---|" + ("---|---|" if xla else ""),
    ]

    def pair(a, b, spec):
        return f"{format(a, spec)} / {format(b, spec)} ({_ratio(a, b)})"

    for t in frames_list:
        ti, vi = find[("trecvit", t, "infer")], find[("vivit", t, "infer")]
        tt, vt = find[("trecvit", t, "train")], find[("vivit", t, "train")]
        line = (f"| {t} | {t}×{n} / 1+{t * (n - 1)} | {pair(ti['clips_per_second'], vi['clips_per_second'], '.1f')} "
                f"| {pair(tt['clips_per_second'], vt['clips_per_second'], '.1f')} "
                f"| {pair(ti['peak_increase_mib'], vi['peak_increase_mib'], '.0f')} "
                f"| {pair(tt['peak_increase_mib'], vt['peak_increase_mib'], '.0f')} |")
        if xla:
            line += (f" {pair(ti['xla_temp_mib'], vi['xla_temp_mib'], '.1f')} "
                     f"| {pair(tt['xla_temp_mib'], vt['xla_temp_mib'], '.1f')} |")
        lines.append(line)
    jit = all("step_jit_ms" in find[("trecvit", t, "infer")] for t in frames_list)
    lines += ["", "Streaming, batch 1: TRecViT's `model.step` on the next frame (median over the frames of the clip "
                  "after the first two" + ("; eager as called, and under `jax.jit`" if jit else "") + ") against "
                  "`predict_on_batch` on the whole clip so far (TRecViT, and ViViT, which can only re-run).",
              "",
              "| frames | step ms/frame (eager)" + (" | step ms/frame (jit)" if jit else "")
              + " | re-run the clip ms TRecViT / ViViT |",
              "|---|---|" + ("---|" if jit else "") + "---|"]
    for t in frames_list:
        ti, vi = find[("trecvit", t, "infer")], find[("vivit", t, "infer")]
        lines.append(f"| {t} | {ti['step_ms']:.2f}" + (f" | {ti['step_jit_ms']:.2f}" if jit else "")
                     + f" | {ti['rerun_ms']:.2f} / {vi['rerun_ms']:.2f} |")
    return "\n".join(lines)


def counted_table(size, frames_list, batch):
    """The counts of the measured pair (per clip), for the measured clip lengths."""
    from glu_zoo.models.trecvit import ARCHITECTURES

    _, config = ARCHITECTURES[f"trecvit_{size}"]
    trec = trecvit_shape(f"trecvit_{size}")
    lines = [f"Counted for the same pair (per clip; method: docs/model_stats.md); batch {batch} multiplies the "
             "memory, not the ratios.", "",
             "| frames | GMACs TRecViT / ViViT | train activations MiB TRecViT / ViViT | inference peak MiB "
             "TRecViT / ViViT |", "|---|---|---|---|"]
    for t in frames_list:
        vivit = ViViTShape(frames=t, image_size=trec.image_size, num_channels=trec.num_channels,
                           patch_size=trec.patch_size, tubelet=1, hidden_dim=trec.hidden_dim,
                           num_layers=trec.num_layers, num_heads=trec.num_heads, mlp_dim=trec.mlp_dim,
                           num_classes=config["num_classes"])
        tm, vm = trecvit_macs(trec, t)["total"], vivit_macs(vivit)["total"]
        tmem, vmem = trecvit_memory(trec, t), vivit_memory(vivit)
        mib = 2**20
        lines.append(f"| {t} | {tm / 1e9:.3f} / {vm / 1e9:.3f} ({_ratio(tm, vm)}) | "
                     f"{tmem['train'] / mib:.2f} / {vmem['train'] / mib:.2f} "
                     f"({_ratio(tmem['train'], vmem['train'])}) | "
                     f"{tmem['inference'] / mib:.2f} / {vmem['inference'] / mib:.2f} "
                     f"({_ratio(tmem['inference'], vmem['inference'])}) |")
    return "\n".join(lines)


def _ratio(a, b):
    return f"{a / b:.2f}×" if b > 0 else "–"


def _fmt(value):
    return "–" if value is None else f"{value:.3f}"


def _models_tokens(size):
    from glu_zoo.models.trecvit import ARCHITECTURES

    _, config = ARCHITECTURES[f"trecvit_{size}"]
    h, w = _square(config["image_size"])
    return (h // config["patch_size"]) * (w // config["patch_size"]) + 1


def aim(rows):
    """The issue's aim at the longest clip: TRecViT ≥ 2× the baseline's inference clips/s
    and ≤ 1/4 of its peak memory (inference and training), measured."""
    t = max(r["frames"] for r in rows)
    find = {(r["model"], r["kind"]): r for r in rows if r["frames"] == t}
    out = {"frames": t}
    for kind in ("infer", "train"):
        tr, vi = find[("trecvit", kind)], find[("vivit", kind)]
        out[f"{kind}_speed_ratio"] = tr["clips_per_second"] / vi["clips_per_second"]
        rss = vi["peak_increase_mib"]
        out[f"{kind}_memory_ratio"] = tr["peak_increase_mib"] / rss if rss > 0 else None
        if "xla_temp_mib" in tr:
            out[f"{kind}_xla_memory_ratio"] = tr["xla_temp_mib"] / vi["xla_temp_mib"]
        out[f"{kind}_met"] = bool(out[f"{kind}_speed_ratio"] >= 2.0 and out[f"{kind}_memory_ratio"] is not None
                                  and out[f"{kind}_memory_ratio"] <= 0.25)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("static", "measure", "all"), default="all")
    parser.add_argument("--backend", default="jax", help="KERAS_BACKEND of the measured processes")
    parser.add_argument("--frames", default="8,16,32,64", help="clip lengths measured (comma-separated)")
    parser.add_argument("--size", default="tiny", help="trecvit_<size> and a ViViT of its width and depth")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--static-frames", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="smoke test: frames 2,4, batch 2, 2 repeats")
    parser.add_argument("--write", metavar="PATH", help="put the tables between this tool's markers in PATH "
                                                          "(docs/benchmarks.md)")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "FRAMES", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        model_name, frames, kind = args.worker
        row = measure(model_name, int(frames), kind, args.size, args.batch, args.repeats)
        print("RESULT " + json.dumps(row), flush=True)
        return
    if args.quick:
        args.frames, args.batch, args.repeats = "2,4", 2, 2
    if args.part in ("static", "all"):
        rows = static_report(args.static_frames)
        for r in rows:
            print("RESULT " + json.dumps({"kind": "static", "frames": args.static_frames, **r}), flush=True)
        text = static_table(rows, args.static_frames)
        print(text)
        print()
        if args.write:
            write_block(args.write, "model_stats_static", HEADING, text)
    if args.part in ("measure", "all"):
        start = time.perf_counter()
        frames_list = [int(f) for f in args.frames.split(",")]
        rows = run_measurements(args.backend, frames_list, args.size, args.batch, args.repeats)
        for r in rows:
            print("RESULT " + json.dumps({"kind_of_row": "measured", **r}), flush=True)
        result = aim(rows)
        print("RESULT " + json.dumps({"kind_of_row": "aim", **result}), flush=True)
        parts = []
        for kind, label in (("infer", "inference"), ("train", "training")):
            xla = result.get(f"{kind}_xla_memory_ratio")
            parts.append(f"{label} {result[f'{kind}_speed_ratio']:.2f}× the clips/s, "
                         f"{_fmt(result[f'{kind}_memory_ratio'])}"
                         f" of the peak RSS increase{'' if xla is None else f' ({xla:.3f} of the XLA temporaries)'}"
                         f" → {'met' if result[f'{kind}_met'] else 'NOT met'}")
        text = "\n\n".join([
            measured_table(rows, args.backend, args.size, args.batch, args.repeats),
            counted_table(args.size, frames_list, args.batch),
            f"Aim at {result['frames']} frames (TRecViT ≥ 2× the clips/s and ≤ 1/4 of the memory of ViViT): "
            + "; ".join(parts) + f". Measured in {time.perf_counter() - start:.0f} s."])
        print(text)
        if args.write:
            write_block(args.write, f"model_stats_{args.backend}_{args.size}", HEADING, text)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchlib import write_block

    main()
