"""NumPy references written from ../shared/REFERENCE.md §1–2 (float64)."""

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def phi(x):
    """Standard normal CDF Φ(x)."""
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu(x):
    return x * phi(x)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def golu(x):
    with np.errstate(over="ignore"):
        return x * np.exp(-np.exp(-x))


def atlu(x):
    return x * (np.arctan(x) / math.pi + 0.5)


GATES = {
    "arctan": lambda x: np.arctan(x) / math.pi + 0.5,
    "gaussian": phi,
    "sigmoid": sigmoid,
}


def expanded_gate(x, alpha, kind):
    return GATES[kind](x) * (1.0 + 2.0 * alpha) - alpha


# --- activations: expanded units and the arctan derivative ---------------------

def expanded_activation(x, alpha, kind):
    """xATLU / xGELU / xSiLU: x·(g(x)·(1 + 2α) − α)."""
    return x * expanded_gate(x, alpha, kind)


def expanded_glu(a, b, alpha, kind):
    """xATGLU / xGEGLU / xSwiGLU: (g(a)·(1 + 2α) − α)·b."""
    return expanded_gate(a, alpha, kind) * b


def arctan_derivative(x):
    """d/dx arctan(x) = 1/(1 + x²), 0 where x² overflows."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.square(x))


ACTIVATIONS = {
    "relu": lambda x, a: np.maximum(x, 0.0),
    "gelu": lambda x, a: gelu(x),
    "swish": lambda x, a: x * sigmoid(x),
    "golu": lambda x, a: golu(x),
    "atlu": lambda x, a: atlu(x),
    "xatlu": lambda x, a: x * expanded_gate(x, a, "arctan"),
    "xgelu": lambda x, a: x * expanded_gate(x, a, "gaussian"),
    "xsilu": lambda x, a: x * expanded_gate(x, a, "sigmoid"),
}

# The gate of act(a) ⊗ b for each GLU variant (first order for the expanded ones).
VARIANT_GATES = {
    "glu": lambda a, al: sigmoid(a),
    "bilinear": lambda a, al: a,
    "reglu": lambda a, al: np.maximum(a, 0.0),
    "geglu": lambda a, al: gelu(a),
    "swiglu": lambda a, al: a * sigmoid(a),
    "goglu": lambda a, al: golu(a),
    "xatglu": lambda a, al: expanded_gate(a, al, "arctan"),
    "xgeglu": lambda a, al: expanded_gate(a, al, "gaussian"),
    "xswiglu": lambda a, al: expanded_gate(a, al, "sigmoid"),
}


def ffn(x, kernel_in, kernel_out, activation, alpha=0.0, bias_in=None, bias_out=None):
    h = x @ kernel_in + (0.0 if bias_in is None else bias_in)
    y = ACTIVATIONS[activation](h, alpha) @ kernel_out
    return y + (0.0 if bias_out is None else bias_out)


def gated_ffn(x, kernel_in, kernel_out, variant, alpha=0.0, bias_in=None, bias_out=None):
    hidden = kernel_out.shape[0]
    h = x @ kernel_in + (0.0 if bias_in is None else bias_in)
    a, b = h[..., :hidden], h[..., hidden:]
    y = (VARIANT_GATES[variant](a, alpha) * b) @ kernel_out
    return y + (0.0 if bias_out is None else bias_out)
