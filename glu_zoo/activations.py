"""Activations of the GLU papers, as pure functions of `keras.ops`.

Each takes a NumPy array or a backend tensor and returns a backend tensor of
the input's floating dtype (integer inputs are computed in `floatx`).

- `gelu(x, approximate=False)`: x·Φ(x) (Hendrycks & Gimpel), exact by default.
- `golu(x)`: x·exp(−exp(−x)) (Das et al. 2025, arXiv 2502.03654).
- `atlu(x)`: x·(arctan(x)/π + ½) (Huang 2024, arXiv 2405.20768).
- `expanded_gate(x, alpha, kind)`: g(x)·(1 + 2α) − α (Huang 2024).
- `expanded_activation(x, alpha, kind)`: x·(g(x)·(1 + 2α) − α), the
  self-gated xATLU, xGELU, xSiLU.
- `expanded_glu(a, b, alpha, kind)`: (g(a)·(1 + 2α) − α)·b, the gated
  xATGLU, xGEGLU, xSwiGLU.

Measured fast paths, each behind one function with a keras.ops fallback:
arctan under XLA is a minimax polynomial (`_arctan`), and on eager torch GoLU
and the arctan units run as fused `torch.compile`d kernels (`_fused_torch`).
"""

import math
import os
import warnings

import keras
from keras import ops

__all__ = [
    "gelu", "golu", "atlu", "expanded_gate", "expanded_activation", "expanded_glu", "GATE_KINDS",
]

GATE_KINDS = ("arctan", "gaussian", "sigmoid")
_HALF = ("float16", "bfloat16")


def _floating(x):
    """`x` as a tensor of a floating dtype (integers and bools go to floatx)."""
    x = ops.convert_to_tensor(x)
    if not keras.backend.is_float_dtype(x.dtype):
        x = ops.cast(x, keras.config.floatx())
    return x


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _in_float32(fn, *tensors):
    """fn(*tensors), computed in float32 when the first tensor is half
    precision and cast back to its dtype (one rounding, as the official
    GoLU kernel does)."""
    dtype = _dtype(tensors[0])
    if dtype not in _HALF:
        return fn(*tensors)
    return ops.cast(fn(*(ops.cast(t, "float32") for t in tensors)), dtype)


# --- arctan ------------------------------------------------------------------
# XLA's atan on the CPU costs 5–13× an exp or erf over the same floats
# (docs/benchmarks.md); this float32 arctan costs about what exp costs.
#
# Minimax coefficients of arctan(r) ≈ r + r·z·Q(z), z = r², r in [0, 1],
# Q(z) = Σ_k q_k z^k, for the relative error (Lawson's iteration in float64,
# then rounded to float32): approximation error 0.3 float32 ulp; evaluated in
# float32 with the reduction below, at most 2 ulp over the whole real line.
_ATAN_Q = (
    -0.33333152532577515, 0.19993773102760315, -0.1421106457710266, 0.10666052997112274,
    -0.07552337646484375, 0.043213553726673126, -0.016369104385375977, 0.0029210192151367664,
)
_HALF_PI_HI = 1.5707963705062866  # float32(π/2)
_HALF_PI_LO = -4.371138828673793e-08  # π/2 − float32(π/2), added after the subtraction


def _arctan_polynomial(x):
    """arctan of a float32 tensor from keras.ops, within 2 float32 ulp.

    |x| ≤ 1: the polynomial at r = x. |x| > 1: arctan(x) = sign(x)·π/2 −
    arctan(1/x), with π/2 in two parts (Cody–Waite) so that the subtraction
    adds only its own rounding. ±0 keep their sign, ±inf give ±π/2, NaN
    stays NaN (selects, not min/max, so nothing depends on a backend's NaN
    rule for min/max).
    """
    far = ops.abs(x) > 1.0
    one = ops.ones_like(x)
    r = ops.where(far, one, x) / ops.where(far, x, one)  # x, or 1/x for |x| > 1
    z = r * r
    q = _ATAN_Q[-1]
    for coefficient in _ATAN_Q[-2::-1]:
        q = q * z + coefficient
    p = r + (r * z) * q
    sign = ops.where(x > 0.0, one, -one)
    reflected = (sign * _HALF_PI_HI - p) + sign * _HALF_PI_LO
    # r + r·z·Q is +0 at r = −0 (a sum of opposite zeros): keep x there. Where
    # denormals are flushed (XLA on CPU) this also returns them unchanged.
    return ops.where(far, reflected, ops.where(x == 0.0, x, p))


@ops.custom_gradient
def _arctan_xla(x):
    """`_arctan_polynomial` with the derivative 1/(1 + x²) written by hand
    (autodiff through the polynomial and the selects costs twice as much)."""

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        return upstream / (1.0 + x * x)  # x² = inf for |x| > 1.8e19 gives 0

    return _arctan_polynomial(x), grad


def _in_xla():
    """Whether ops are being compiled by XLA: always on JAX; on TensorFlow
    inside `tf.function(jit_compile=True)` (Keras's `jit_compile=True`);
    never on torch."""
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend != "tensorflow":
        return False
    try:
        from tensorflow.python.framework import ops as tf_ops
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # the private module moved: take the plain path
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph())


def _on_cpu():
    """Whether the backend computes on the CPU (no GPU or TPU in use)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() == "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    return True


def _arctan(x):
    """arctan(x) of a floating tensor: the float32 polynomial under XLA on the
    CPU (float32 and half inputs, the latter computed in float32), where it is
    measured 5–11× faster than XLA's atan; `ops.arctan` elsewhere: TensorFlow's
    eager kernel and torch's are vectorised already, accelerators are not
    measured, and float64 needs more terms. The two agree within 6 ulp, the
    polynomial being within 2 ulp of the exact value (tested)."""
    if _in_xla() and _dtype(x) in ("float32", *_HALF) and _on_cpu():
        return _in_float32(_arctan_xla, x)
    return ops.arctan(x)


# --- fused torch kernels -----------------------------------------------------

_TORCH = {}  # name → the `apply` of a fused kernel, built on first use
_TORCH_FAILED = set()  # names of compiled functions that failed: they run eagerly


def _fused_torch(name, build):
    """The fused torch kernel `name` (built once by `build(torch)`), or None
    where the keras.ops form should run: another backend,
    GLU_ZOO_FUSED_TORCH=0, or inside Keras's own `torch.compile`
    (`jit_compile=True`), which fuses the keras.ops form itself.

    Eager torch runs a keras.ops expression as one kernel per op (~11 for
    GoLU with its gradient, ~15 for xATLU), which made those FFN train steps
    1.4–1.9× a GELU-FFN one on CPU (docs/benchmarks.md). A kernel here is a
    `torch.autograd.Function` whose forward and backward are each one
    `torch.compile`d function (tens of seconds to compile on CPU the first
    time, cached on disk after).
    """
    if keras.backend.backend() != "torch" or os.environ.get("GLU_ZOO_FUSED_TORCH", "1") == "0":
        return None
    import torch

    if torch.compiler.is_compiling():
        return None
    if name not in _TORCH:
        _TORCH[name] = build(torch)
    return _TORCH[name]


def _compiled(torch, name, fn):
    """`fn` compiled by `torch.compile`; if compiling or running it fails (no
    C++ compiler, an unsupported device), `fn` runs eagerly from then on,
    after one warning: the same math, unfused."""
    compiled = torch.compile(fn, dynamic=True)

    def call(*args):
        if name not in _TORCH_FAILED:
            try:
                return compiled(*args)
            except Exception as error:
                _TORCH_FAILED.add(name)
                warnings.warn(f"glu_zoo: fused torch kernel {name} unavailable ({error!r}); running it eagerly.")
        return fn(*args)

    return call


def _build_golu(torch):
    def forward(x):
        xf = x.float()
        return (xf * torch.exp(-torch.exp(-xf))).to(x.dtype)

    def backward(x, upstream):
        xf = x.float()
        e = torch.exp(-xf)
        return (upstream.float() * (torch.exp(-e) + xf * torch.exp(-(xf + e)))).to(x.dtype)

    fused_forward = _compiled(torch, "golu_forward", forward)
    fused_backward = _compiled(torch, "golu_backward", backward)

    class GoLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return fused_forward(x)

        @staticmethod
        def backward(ctx, upstream):
            (x,) = ctx.saved_tensors
            return fused_backward(x, upstream)

    return GoLU.apply


def _build_xatlu(torch):
    """x·(½ + arctan(x)·c), c = (1 + 2α)/π, and its gradients in x and α.
    Inputs of any floating dtype are computed in float32 and cast back; α is
    float32."""
    inv_pi = 1.0 / math.pi

    def forward(x, alpha):
        xf = x.float()
        return (xf * (0.5 + torch.atan(xf) * ((1.0 + 2.0 * alpha) * inv_pi))).to(x.dtype)

    def backward_x(x, alpha, upstream):
        xf, c = x.float(), (1.0 + 2.0 * alpha) * inv_pi
        gate = 0.5 + torch.atan(xf) * c
        return (upstream.float() * (gate + xf * c / (1.0 + xf * xf))).to(x.dtype)

    def backward_x_alpha(x, alpha, upstream):
        xf, uf, c = x.float(), upstream.float(), (1.0 + 2.0 * alpha) * inv_pi
        at = torch.atan(xf)
        gx = uf * (0.5 + at * c + xf * c / (1.0 + xf * xf))
        return gx.to(x.dtype), (uf * xf * at).sum() * (2.0 * inv_pi)

    fused_forward = _compiled(torch, "xatlu_forward", forward)
    fused_backward_x = _compiled(torch, "xatlu_backward_x", backward_x)
    fused_backward_x_alpha = _compiled(torch, "xatlu_backward_x_alpha", backward_x_alpha)

    class XATLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, alpha):
            ctx.save_for_backward(x, alpha)
            return fused_forward(x, alpha)

        @staticmethod
        def backward(ctx, upstream):
            x, alpha = ctx.saved_tensors
            if ctx.needs_input_grad[1]:
                return fused_backward_x_alpha(x, alpha, upstream)
            return fused_backward_x(x, alpha, upstream), None

    return XATLU.apply


def _build_xatglu(torch):
    """(½ + arctan(a)·c)·b, c = (1 + 2α)/π, and its gradients in a, b and α,
    computed in float32 (cast back to the dtype of a)."""
    inv_pi = 1.0 / math.pi

    def forward(a, b, alpha):
        af = a.float()
        return ((0.5 + torch.atan(af) * ((1.0 + 2.0 * alpha) * inv_pi)) * b.float()).to(a.dtype)

    def backward_ab(a, b, alpha, upstream):
        af, uf, c = a.float(), upstream.float(), (1.0 + 2.0 * alpha) * inv_pi
        ga = uf * b.float() * c / (1.0 + af * af)
        gb = uf * (0.5 + torch.atan(af) * c)
        return ga.to(a.dtype), gb.to(a.dtype)

    def backward_ab_alpha(a, b, alpha, upstream):
        af, bf, uf, c = a.float(), b.float(), upstream.float(), (1.0 + 2.0 * alpha) * inv_pi
        at = torch.atan(af)
        ub = uf * bf
        ga = ub * c / (1.0 + af * af)
        gb = uf * (0.5 + at * c)
        return ga.to(a.dtype), gb.to(a.dtype), (ub * at).sum() * (2.0 * inv_pi)

    fused_forward = _compiled(torch, "xatglu_forward", forward)
    fused_backward_ab = _compiled(torch, "xatglu_backward_ab", backward_ab)
    fused_backward_ab_alpha = _compiled(torch, "xatglu_backward_ab_alpha", backward_ab_alpha)

    class XATGLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, alpha):
            ctx.save_for_backward(a, b, alpha)
            return fused_forward(a, b, alpha)

        @staticmethod
        def backward(ctx, upstream):
            a, b, alpha = ctx.saved_tensors
            if ctx.needs_input_grad[2]:
                return fused_backward_ab_alpha(a, b, alpha, upstream)
            return (*fused_backward_ab(a, b, alpha, upstream), None)

    return XATGLU.apply


# --- the activations ---------------------------------------------------------

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
    back, as in the official kernel. On eager torch, forward and backward
    each run as one fused kernel.

    >>> golu(np.array([-1.0, 0.0, 1.0]))  # ≈ [-0.066, 0.0, 0.692]
    """
    x = _floating(x)
    fused = _fused_torch("golu", _build_golu)
    if fused is not None:
        return fused(x)
    return _in_float32(_golu_f32, x)


def atlu(x):
    """ATLU(x) = x·(arctan(x)/π + ½), the arctan-gated linear unit (Huang 2024,
    arXiv 2405.20768). Half-precision inputs are computed in float32; on
    eager torch forward and backward each run as one fused kernel.

    >>> atlu(np.array([-1.0, 0.0, 1.0]))  # [-0.25, 0.0, 0.75]
    """
    x = _floating(x)
    fused = _fused_torch("xatlu", _build_xatlu)
    if fused is not None:
        return fused(x, ops.zeros((), "float32"))
    return _in_float32(lambda t: t * (_arctan(t) * (1.0 / math.pi) + 0.5), x)


def _centred_gate(x, kind):
    """g(x) − ½ for the gate g of `kind`: each is an odd function of x."""
    if kind == "arctan":
        return _arctan(x) * (1.0 / math.pi)
    if kind == "gaussian":
        return 0.5 * ops.erf(x * (1.0 / math.sqrt(2.0)))
    return 0.5 * ops.tanh(0.5 * x)  # σ(x) − ½


def _check_expanded(fn, x, alpha, kind):
    if kind not in GATE_KINDS:
        raise ValueError(
            f"{fn}: unknown `kind` {kind!r}; allowed: {', '.join(GATE_KINDS)}."
        )
    x = _floating(x)
    alpha = ops.convert_to_tensor(alpha)
    if len(ops.shape(alpha)) != 0:
        raise ValueError(
            f"{fn}: `alpha` must be a scalar; got shape {tuple(ops.shape(alpha))}."
        )
    return x, alpha


def _gate(x, alpha, kind):
    # g·(1 + 2α) − α = ½ + (g − ½)·(1 + 2α): one scalar factor on an odd function.
    return 0.5 + _centred_gate(x, kind) * (1.0 + 2.0 * ops.cast(alpha, x.dtype))


def expanded_gate(x, alpha, kind):
    """First-order expanded gate g(x)·(1 + 2α) − α, with range [−α, 1 + α].

    `kind` picks g: "arctan" (arctan(x)/π + ½), "gaussian" (Φ(x)) or
    "sigmoid" (σ(x)). α = 0 gives back the plain gate (Huang 2024,
    arXiv 2405.20768). `alpha` is a scalar (a trainable weight in layers).

    >>> expanded_gate(np.zeros(3), 0.5, "sigmoid")  # 0.5·2 − 0.5 = [0.5, ...]
    """
    x, alpha = _check_expanded("expanded_gate", x, alpha, kind)
    return _gate(x, alpha, kind)


def expanded_activation(x, alpha, kind):
    """x·(g(x)·(1 + 2α) − α): the expanded self-gated unit of `kind` —
    xATLU (arctan), xGELU (gaussian), xSiLU (sigmoid) (Huang 2024,
    arXiv 2405.20768). `alpha` is a scalar; α = 0 gives ATLU, GELU, SiLU.

    Half-precision inputs are computed in float32 and cast back. On eager
    torch, xATLU's forward and backward (with the α gradient) each run as one
    fused kernel.

    >>> expanded_activation(np.array([1.0]), 0.0, "arctan")  # [0.75]
    """
    x, alpha = _check_expanded("expanded_activation", x, alpha, kind)
    fused = _fused_torch("xatlu", _build_xatlu) if kind == "arctan" else None
    if fused is not None:
        return fused(x, ops.cast(alpha, "float32"))
    return _in_float32(lambda t: t * _gate(t, alpha, kind), x)


def expanded_glu(a, b, alpha, kind):
    """(g(a)·(1 + 2α) − α)·b: the expanded gated unit of `kind` — xATGLU
    (arctan), xGEGLU (gaussian), xSwiGLU (sigmoid) (Huang 2024,
    arXiv 2405.20768), with a the gate branch and b the linear branch.

    Half-precision inputs are computed in float32 and cast back. On eager
    torch, xATGLU (a and b of one shape and dtype) runs forward and backward
    as one fused kernel each.

    >>> expanded_glu(np.array([1.0]), np.array([2.0]), 0.0, "arctan")  # [1.5]
    """
    a, alpha = _check_expanded("expanded_glu", a, alpha, kind)
    b = ops.convert_to_tensor(b)
    if kind == "arctan" and tuple(a.shape) == tuple(b.shape) and _dtype(a) == _dtype(b):
        fused = _fused_torch("xatglu", _build_xatglu)
        if fused is not None:
            return fused(a, b, ops.cast(alpha, "float32"))
    return _in_float32(lambda s, t: _gate(s, alpha, kind) * t, a, ops.cast(b, a.dtype))
