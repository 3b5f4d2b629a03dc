"""Activations of the GLU papers, as pure functions of `keras.ops`.

Each takes a NumPy array or a backend tensor and returns a backend tensor of
the input's floating dtype (integer inputs are computed in `floatx`).

- `gelu(x, approximate=False)`: x·Φ(x) (Hendrycks & Gimpel), exact by default.
- `golu(x)`: x·exp(−exp(−x)) (Das et al. 2025, arXiv 2502.03654).
- `atlu(x)`: x·(arctan(x)/π + ½) (Huang 2024, arXiv 2405.20768).
- `expanded_gate(x, alpha, kind)`: g(x)·(1 + 2α) − α (Huang 2024).
"""

import math

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
    back, as in the official kernel.

    >>> golu(np.array([-1.0, 0.0, 1.0]))  # ≈ [-0.066, 0.0, 0.692]
    """
    x = _floating(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in _HALF:
        return ops.cast(_golu_f32(ops.cast(x, "float32")), dtype)
    return _golu_f32(x)


def atlu(x):
    """ATLU(x) = x·(arctan(x)/π + ½), the arctan-gated linear unit."""
    x = _floating(x)
    return x * (ops.arctan(x) * (1.0 / math.pi) + 0.5)


def _gate(x, kind):
    if kind == "arctan":
        return ops.arctan(x) * (1.0 / math.pi) + 0.5
    if kind == "gaussian":
        return 0.5 * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))
    return ops.sigmoid(x)


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
    return _gate(x, kind) * (1.0 + 2.0 * alpha) - alpha
