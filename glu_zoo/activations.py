"""Activations of the GLU papers, as pure functions of `keras.ops`.

Each takes a NumPy array or a backend tensor and returns a backend tensor of
the input's floating dtype (integer inputs are computed in `floatx`).

- `gelu(x, approximate=False)`: x·Φ(x) (Hendrycks & Gimpel), exact by default.
- `golu(x)`: x·exp(−exp(−x)) (Das et al. 2025, arXiv 2502.03654).
- `atlu(x)`: x·(arctan(x)/π + ½) (Huang 2024, arXiv 2405.20768).
- `expanded_gate(x, alpha, kind)`: g(x)·(1 + 2α) − α (Huang 2024).
"""

import math
import os
import warnings

import keras
from keras import ops

__all__ = ["gelu", "golu", "atlu", "expanded_gate", "GATE_KINDS"]

GATE_KINDS = ("arctan", "gaussian", "sigmoid")
_HALF = ("float16", "bfloat16")


def _floating(x):
    """`x` as a tensor of a floating dtype (integers and bools go to floatx)."""
    x = ops.convert_to_tensor(x)
    if not keras.backend.is_float_dtype(x.dtype):
        x = ops.cast(x, keras.config.floatx())
    return x


def gelu(x, approximate=False):
    """GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2)).

    `approximate=True` gives the tanh form ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    Unlike `keras.ops.gelu`, the default here is the exact form, as in the
    papers (Shazeer 2020 GEGLU; Huang 2024 xGELU).
    """
    if not isinstance(approximate, bool):
        raise ValueError(
            f"gelu: `approximate` must be True or False; got {approximate!r}."
        )
    return ops.gelu(_floating(x), approximate=approximate)


@ops.custom_gradient
def _golu_f32(x):
    e = ops.exp(-x)
    gate = ops.exp(-e)

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        # d/dx x·exp(−e^{−x}) = exp(−e^{−x}) + x·exp(−(x + e^{−x})): the second
        # term stays 0 (not 0·∞) where e^{−x} overflows.
        return upstream * (gate + x * ops.exp(-(x + e)))

    return x * gate, grad


def golu(x):
    """GoLU(x) = x·exp(−exp(−x)), the Gumbel-CDF gate (arXiv 2502.03654).

    The gradient exp(−e^{−x}) + x·exp(−(x + e^{−x})) is written by hand: it is
    finite for every finite x, where naive autodiff gives 0·∞ = NaN for very
    negative x. float16 and bfloat16 inputs are computed in float32 and cast
    back, as in the official kernel. On torch, forward and backward each run
    as one fused kernel (see `_torch_golu`).

    >>> golu(np.array([-1.0, 0.0, 1.0]))  # ≈ [-0.066, 0.0, 0.692]
    """
    x = _floating(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    kernel = _torch_golu() if keras.backend.backend() == "torch" else None
    kernel = kernel or _golu_f32
    if dtype in _HALF:
        return ops.cast(kernel(ops.cast(x, "float32")), dtype)
    return kernel(x)


_TORCH_GOLU = {}


def _torch_golu():
    """GoLU for eager torch as a `torch.autograd.Function` whose forward and
    backward are each one `torch.compile`d kernel, or None where disabled.

    Eager torch runs the keras.ops form as ~11 separate element-wise kernels,
    which made a GoLU-FFN train step ~1.4× a GELU-FFN one on CPU (see
    docs/benchmarks.md); fused, it costs what GELU costs. The first call
    compiles (tens of seconds on CPU, cached on disk after). If compilation
    fails, or GLU_ZOO_FUSED_TORCH=0, the keras.ops form `_golu_f32` is used.
    """
    if os.environ.get("GLU_ZOO_FUSED_TORCH", "1") == "0" or _TORCH_GOLU.get("failed"):
        return None
    if "apply" not in _TORCH_GOLU:
        import torch

        def forward(x):
            return x * torch.exp(-torch.exp(-x))

        def backward(x, upstream):
            e = torch.exp(-x)
            return upstream * (torch.exp(-e) + x * torch.exp(-(x + e)))

        fused_forward = torch.compile(forward, dynamic=True)
        fused_backward = torch.compile(backward, dynamic=True)

        class GoLU(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return fused_forward(x)

            @staticmethod
            def backward(ctx, upstream):
                (x,) = ctx.saved_tensors
                return fused_backward(x, upstream)

        def apply(x):
            try:
                return GoLU.apply(x)
            except Exception as error:  # no compiler, unsupported device, ...
                _TORCH_GOLU["failed"] = True
                warnings.warn(f"glu_zoo: fused torch GoLU unavailable ({error!r}); using keras.ops.")
                return _golu_f32(x)

        _TORCH_GOLU["apply"] = apply
    return _TORCH_GOLU["apply"]


def atlu(x):
    """ATLU(x) = x·(arctan(x)/π + ½), the arctan-gated linear unit."""
    x = _floating(x)
    return x * (ops.arctan(x) * (1.0 / math.pi) + 0.5)


def _centred_gate(x, kind):
    """g(x) − ½ for the gate g of `kind`: each is an odd function of x."""
    if kind == "arctan":
        return ops.arctan(x) * (1.0 / math.pi)
    if kind == "gaussian":
        return 0.5 * ops.erf(x * (1.0 / math.sqrt(2.0)))
    return 0.5 * ops.tanh(0.5 * x)  # σ(x) − ½


def expanded_gate(x, alpha, kind):
    """First-order expanded gate g(x)·(1 + 2α) − α, with range [−α, 1 + α].

    `kind` picks g: "arctan" (arctan(x)/π + ½), "gaussian" (Φ(x)) or
    "sigmoid" (σ(x)). α = 0 gives back the plain gate (Huang 2024,
    arXiv 2405.20768). `alpha` is a scalar (a trainable weight in layers).

    >>> expanded_gate(np.zeros(3), 0.5, "sigmoid")  # 0.5·2 − 0.5 = [0.5, ...]
    """
    if kind not in GATE_KINDS:
        raise ValueError(
            f"expanded_gate: unknown `kind` {kind!r}; allowed: {', '.join(GATE_KINDS)}."
        )
    x = _floating(x)
    alpha = ops.cast(alpha, x.dtype)
    if len(ops.shape(alpha)) != 0:
        raise ValueError(
            f"expanded_gate: `alpha` must be a scalar; got shape {tuple(ops.shape(alpha))}."
        )
    # g·(1 + 2α) − α = ½ + (g − ½)·(1 + 2α): one scalar factor on an odd function.
    return 0.5 + _centred_gate(x, kind) * (1.0 + 2.0 * alpha)
