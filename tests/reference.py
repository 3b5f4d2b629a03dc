"""NumPy references (float64) of the activations, layers and models, written from their papers."""

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
    "gelu_tanh": lambda x, a: gelu_tanh(x),
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
    "geglu_tanh": lambda a, al: gelu_tanh(a),
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


# --- Transformer block, patch embedding, ViT and Activator (models; issue 8 §2) ---
# Weights come as dicts keyed by the path below the layer or model
# ("attention/query/kernel", "block_0/mlp/kernel_in"), as float64 arrays.

def below(w, prefix):
    """The entries of `w` under `prefix`, keyed by the rest of their path."""
    return {k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)}


def layer_norm(x, gamma, beta, eps):
    """(x − mean) / √(var + eps) · γ + β over the last axis (arXiv 1607.06450)."""
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def key_mask(mask, num_queries):
    """A (batch, S) mask of the keys as (batch, T, S); a (batch, T, S) mask as it is."""
    mask = np.asarray(mask, bool)
    if mask.ndim == 2:
        return np.broadcast_to(mask[:, None, :], (mask.shape[0], num_queries, mask.shape[1]))
    return mask


def multi_head_attention(query, value, w, mask=None):
    """softmax(Q_h K_hᵀ / √k) V_h per head h, the heads projected back
    (Vaswani et al. 2017, arXiv 1706.03762), in Keras's MultiHeadAttention
    layout: query/key/value kernels (d, H, k) and biases (H, k),
    attention_output kernel (H, k, d) and bias (d,). `mask` (batch, T, S) or
    (batch, S): True where a query may attend to a key."""
    def project(x, name):
        return np.einsum("bsd,dhk->bshk", x, w[f"{name}/kernel"]) + w.get(f"{name}/bias", 0.0)

    q, k, v = project(query, "query"), project(value, "key"), project(value, "value")
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(key_mask(mask, query.shape[1])[:, None], scores, -np.inf)
    heads = np.einsum("bhts,bshk->bthk", softmax(scores), v)
    return np.einsum("bthk,hkd->btd", heads, w["attention_output/kernel"]) + w.get("attention_output/bias", 0.0)


def mlp(x, w, kind):
    """FFN(x) for an FFN activation, GatedFFN(x) for a GLU variant; `w` holds
    kernel_in, kernel_out and, where present, bias_in, bias_out, alpha."""
    fn = ffn if kind in ACTIVATIONS else gated_ffn
    return fn(x, w["kernel_in"], w["kernel_out"], kind, alpha=w.get("alpha", 0.0), bias_in=w.get("bias_in"),
              bias_out=w.get("bias_out"))


def transformer_encoder_block(x, w, kind, mask=None, eps=1e-6):
    """Pre-norm block: x ← x + MHA(LN(x)), x ← x + MLP(LN(x))."""
    h = layer_norm(x, w["attention_norm/gamma"], w["attention_norm/beta"], eps)
    x = x + multi_head_attention(h, h, below(w, "attention/"), mask)
    h = layer_norm(x, w["mlp_norm/gamma"], w["mlp_norm/beta"], eps)
    return x + mlp(h, below(w, "mlp/"), kind)


def patch_embedding(x, kernel, bias, p):
    """Token i·(W/p) + j is patch (i, j), flattened against kernel (p, p, C, d)."""
    _, h, w, _ = x.shape
    out = []
    for i in range(h // p):
        for j in range(w // p):
            patch = x[:, i * p:(i + 1) * p, j * p:(j + 1) * p, :].astype(np.float64)
            out.append(np.einsum("buvc,uvcd->bd", patch, kernel) + bias)
    return np.stack(out, axis=1)


def vit(x, w, patch_size, num_layers, kind, pooling):
    """ViT (Dosovitskiy et al. 2020, arXiv 2010.11929): patches, [class
    token], + positions, pre-norm blocks, final LN, class token or mean, head."""
    h = patch_embedding(x, w["patch_embedding/conv/kernel"], w["patch_embedding/conv/bias"], patch_size)
    if pooling == "cls":
        token = np.broadcast_to(w["class_token/token"], (h.shape[0], 1, h.shape[2]))
        h = np.concatenate([token, h], axis=1)
    h = h + w["position_embedding/embeddings"]
    for i in range(num_layers):
        h = transformer_encoder_block(h, below(w, f"block_{i}/"), kind)
    h = layer_norm(h, w["final_norm/gamma"], w["final_norm/beta"], 1e-6)
    pooled = h[:, 0] if pooling == "cls" else h.mean(axis=1)
    return pooled @ w["head/kernel"] + w["head/bias"]


def vivit(clips, w, patch_size, num_layers, kind, attention):
    """ViViT (Arnab et al. 2021, arXiv 2103.15691) on clips (B, T, H, W, C):
    per-frame patches; "joint": [cls; all T·N patches] + positions, blocks
    over all of them; "frame": [cls; N patches] + positions per frame, the
    blocks per frame, the head per frame, logits averaged over T."""
    b, t = clips.shape[:2]
    h = patch_embedding(clips.reshape(b * t, *clips.shape[2:]), w["patch_embedding/conv/kernel"],
                        w["patch_embedding/conv/bias"], patch_size)
    if attention == "joint":
        h = h.reshape(b, -1, h.shape[-1])
    token = np.broadcast_to(w["class_token/token"], (h.shape[0], 1, h.shape[2]))
    h = np.concatenate([token, h], axis=1) + w["position_embedding/embeddings"]
    for i in range(num_layers):
        h = transformer_encoder_block(h, below(w, f"block_{i}/"), kind)
    h = layer_norm(h, w["final_norm/gamma"], w["final_norm/beta"], 1e-6)
    logits = h[:, 0] @ w["head/kernel"] + w["head/bias"]
    return logits if attention == "joint" else logits.reshape(b, t, -1).mean(axis=1)


def masked_mean(h, mask):
    """Mean over axis 1 of the steps where mask is 1; zeros where it keeps none."""
    return (h * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)


def transformer_classifier(tokens, w, num_layers, kind):
    """The LRA Transformer baseline (Tay et al. 2020, arXiv 2011.04006): token
    embedding + positions, pre-norm blocks whose queries see the non-padding
    keys (id 0 = padding), final LN, mean over the non-padding tokens, head."""
    mask = tokens != 0
    h = w["token_embedding/embeddings"][tokens] + w["position_embedding/embeddings"]
    for i in range(num_layers):
        h = transformer_encoder_block(h, below(w, f"block_{i}/"), kind, mask=mask)
    h = layer_norm(h, w["final_norm/gamma"], w["final_norm/beta"], 1e-6)
    pooled = masked_mean(h, mask)
    return pooled @ w["head/kernel"] + w["head/bias"]


def lru_classifier(tokens, w, num_layers, norm_first=False):
    """LRUClassifier (Orvieto et al. 2023, arXiv 2303.06349, as its LRA
    experiments): token embedding, LRU blocks (`lru_block`) whose state is
    carried over the padding (id 0), [a final LN when pre-norm], the mean
    over the non-padding steps, head."""
    mask = tokens != 0
    h = w["token_embedding/embeddings"][tokens]
    for i in range(num_layers):
        h, _ = lru_block(h, below(w, f"block_{i}/"), mask=mask, norm_first=norm_first)
    if norm_first:
        h = layer_norm(h, w["final_norm/gamma"], w["final_norm/beta"], 1e-5)
    pooled = masked_mean(h, mask)
    return pooled @ w["head/kernel"] + w["head/bias"]


def activator_gating_unit(x, w, ffn_dim):
    """Activator gating unit (Abdullah et al. 2024, arXiv 2405.15953):
    u = LN'(GELU(x·W1 + b1)), v = LN'(x·W2 + b2) with ONE LayerNorm LN'
    (eps 1e-5) for both, [ours: v ← v ⊗ (W_t·v + b_t) over tokens],
    out = (u ⊗ v)·W3 + b3."""
    w1, w2 = w["kernel_in"][:, :ffn_dim], w["kernel_in"][:, ffn_dim:]
    b1, b2 = w["bias_in"][:ffn_dim], w["bias_in"][ffn_dim:]
    u = layer_norm(gelu(x @ w1 + b1), w["norm/gamma"], w["norm/beta"], 1e-5)
    v = layer_norm(x @ w2 + b2, w["norm/gamma"], w["norm/beta"], 1e-5)
    if "token_kernel" in w:
        v = v * (np.einsum("ij,bjf->bif", w["token_kernel"], v) + w["token_bias"][:, None])
    return (u * v) @ w["kernel_out"] + w["bias_out"]


def activator_vit(x, w, patch_size, num_layers, ffn_dim, variant):
    """The official ACTIVATORImageClassification forward pass: conv patches,
    blocks x ← x + ActGU(LN(x)) and (variant "full") x ← x + FFN(LN(x)) with
    the same LayerNorm, the mean over tokens, a linear head."""
    h = patch_embedding(x, w["patch_embedding/conv/kernel"], w["patch_embedding/conv/bias"], patch_size)
    for i in range(num_layers):
        norm = below(w, f"block_{i}_norm/")
        h = h + activator_gating_unit(layer_norm(h, norm["gamma"], norm["beta"], 1e-5),
                                      below(w, f"block_{i}_gating/"), ffn_dim)
        if variant == "full":
            h = h + mlp(layer_norm(h, norm["gamma"], norm["beta"], 1e-5), below(w, f"block_{i}_ffn/"), "gelu")
    return h.mean(axis=1) @ w["head/kernel"] + w["head/bias"]


# --- linear recurrences: the scan, LRU, RG-LRU and their blocks (recurrent layers; issue 8 §1) ---
# Weights come as dicts keyed by their path below the layer ("nu_log";
# "lru/B_re", "glu/kernel" for LRUBlock; "rg_lru/a_param" for
# RecurrentBlock), as float64 arrays. One step at a time, in float64 / complex128.

def linear_recurrence(a, b, h0=None, kind="diagonal", reverse=False):
    """h_t = a_t ∘ h_{t−1} + b_t along axis 1 (from the end with `reverse`),
    h_{−1} = h0 (None: 0). diagonal and complex_diagonal: a ⊗ h, complex
    numbers as complex arrays; dense: a_t @ h. `a` broadcasts to b's shape
    (plus (d,) for dense)."""
    b = np.asarray(b)
    a = np.broadcast_to(a, b.shape + ((b.shape[-1],) if kind == "dense" else ()))
    steps = range(b.shape[1] - 1, -1, -1) if reverse else range(b.shape[1])
    h = np.zeros_like(b[:, 0]) if h0 is None else np.asarray(h0)
    out = np.zeros_like(b)
    for t in steps:
        h = (np.einsum("...ij,...j->...i", a[:, t], h) if kind == "dense" else a[:, t] * h) + b[:, t]
        out[:, t] = h
    return out


def lru(x, w, h0=None, mask=None):
    """LRU (Orvieto et al. 2023, arXiv 2303.06349): h_t = λ ⊗ h_{t−1} + γ ⊗ (x_t·B),
    y_t = Re(h_t·C) + D ⊗ x_t, λ = exp(−exp(ν_log) + i·exp(θ_log)), γ = exp(γ_log).
    `h0` (batch, 2N) = [Re | Im]; masked steps keep h and give 0.
    Returns (y, final state [Re | Im])."""
    x = x.astype(np.float64)
    lam = np.exp(-np.exp(w["nu_log"]) + 1j * np.exp(w["theta_log"]))
    gamma = np.exp(w["gamma_log"])
    b_mat = w["B_re"] + 1j * w["B_im"]
    c_mat = w["C_re"] + 1j * w["C_im"]
    n = lam.shape[0]
    h = np.zeros((x.shape[0], n), np.complex128) if h0 is None else h0[:, :n] + 1j * h0[:, n:]
    mask = np.ones(x.shape[:2], bool) if mask is None else mask
    ys = []
    for t in range(x.shape[1]):
        m = mask[:, t, None]
        h = np.where(m, lam * h + gamma * (x[:, t] @ b_mat), h)
        ys.append(np.where(m, (h @ c_mat).real + w["D"] * x[:, t], 0.0))
    return np.stack(ys, 1), np.concatenate([h.real, h.imag], -1)


def lru_block(x, w, mask=None, norm_first=False, h0=None):
    """Orvieto et al.'s LRU block: LN(x + GLU(GELU(LRU(x)))), GLU(g) = g[:d] ⊗ σ(g[d:]),
    g = u·W + b (pre-norm: x + GLU(GELU(LRU(LN(x))))). LN ε = 1e-5, exact GELU.
    Returns (output, LRU state)."""
    x = x.astype(np.float64)

    def norm(t):
        mean, var = t.mean(-1, keepdims=True), t.var(-1, keepdims=True)
        return (t - mean) / np.sqrt(var + 1e-5) * w["norm/gamma"] + w["norm/beta"]

    y, h = lru(norm(x) if norm_first else x, {k[4:]: v for k, v in w.items() if k.startswith("lru/")}, h0, mask)
    g = gelu(y) @ w["glu/kernel"] + w["glu/bias"]
    d = x.shape[-1]
    out = x + g[..., :d] * sigmoid(g[..., d:])
    return (out if norm_first else norm(out)), h


def block_diagonal(x, kernel, bias):
    """y_h = x_h·W_h + b_h per head h of x (…, H·w)."""
    heads, block = kernel.shape[:2]
    xh = x.reshape(*x.shape[:-1], heads, block)
    return (np.einsum("...hi,hij->...hj", xh, kernel) + bias).reshape(x.shape)


def rglru(x, w, c=8.0, h0=None, mask=None):
    """RG-LRU (Griffin, De et al. 2024, arXiv 2402.19427) as recurrentgemma:
    log a_t = −c·σ(BlockDiag_a(x_t))·softplus(a_param),
    h_t = a_t ⊗ h_{t−1} + √(1 − a_t²) ⊗ σ(BlockDiag_x(x_t)) ⊗ x_t, with the
    reset a = 0, multiplier 1 at the first valid step when no h0 is given;
    masked steps keep h and give 0. Returns (y, final state)."""
    x = x.astype(np.float64)
    h = np.zeros((x.shape[0], x.shape[2])) if h0 is None else h0.astype(np.float64)
    mask = np.ones(x.shape[:2], bool) if mask is None else mask
    seen = np.zeros(x.shape[0], bool) if h0 is None else np.ones(x.shape[0], bool)
    ys = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        gate_x = sigmoid(block_diagonal(xt, w["input_gate_kernel"], w["input_gate_bias"]))
        gate_a = sigmoid(block_diagonal(xt, w["a_gate_kernel"], w["a_gate_bias"]))
        a = np.exp(-c * gate_a * np.log1p(np.exp(w["a_param"])))
        mult = np.sqrt(1.0 - a**2)
        reset = (mask[:, t] & ~seen)[:, None]
        a, mult = np.where(reset, 0.0, a), np.where(reset, 1.0, mult)
        m = mask[:, t, None]
        h = np.where(m, a * h + mult * gate_x * xt, h)
        seen |= mask[:, t]
        ys.append(np.where(m, h, 0.0))
    return np.stack(ys, 1), h


def recurrent_block(x, w, conv_width=4, state=None):
    """Griffin's recurrent block: n = x/√(mean(x²) + 1e-6)·(1 + scale),
    out = x + (RG-LRU(CausalConv(n·Wx + bx)) ⊗ GELU_tanh(n·Wy + by))·Wout + bout.
    `state` = (conv_state, lru_state) or None. Returns (out, state)."""
    x = x.astype(np.float64)
    normed = x / np.sqrt(np.mean(x**2, -1, keepdims=True) + 1e-6) * (1 + w["norm_scale"])
    y = gelu_tanh(normed @ w["linear_y_kernel"] + w["linear_y_bias"])
    u = normed @ w["linear_x_kernel"] + w["linear_x_bias"]
    conv_state, lru_state = (None, None) if state is None else state
    prev = np.zeros((x.shape[0], conv_width - 1, u.shape[-1])) if conv_state is None else conv_state
    padded = np.concatenate([prev, u], 1)
    conv = w["conv_bias"] + sum(
        padded[:, tap:tap + x.shape[1]] * w["conv_kernel"][tap] for tap in range(conv_width))
    h, last = rglru(conv, {k[7:]: v for k, v in w.items() if k.startswith("rg_lru/")}, h0=lru_state)
    out = x + (h * y) @ w["linear_out_kernel"] + w["linear_out_bias"]
    return out, (padded[:, -(conv_width - 1):], last)


def shift_image(image, dy, dx):
    """image (H, W, C) moved down by dy and right by dx whole pixels, zeros where nothing moved in."""
    h, w = image.shape[:2]
    out = np.zeros_like(image)
    for y in range(h):
        for x in range(w):
            if 0 <= y - dy < h and 0 <= x - dx < w:
                out[y, x] = image[y - dy, x - dx]
    return out


# TRecViT
# --- TRecViT (Pătrăucean et al. 2024, arXiv 2412.14294), written from the official JAX model's
# formulas, on its own parameter names ('/'-joined Flax names as in trecvit_B_k400.npz, leading
# singleton axes kept), independent of glu_zoo's layers and weight names. float64.

def trecvit_griffin_block(x, p):
    """recurrentgemma's ResidualBlock without MLP on x (rows, T, d), `p` below
    `encoder/residualblock_XX/`: x + RecurrentBlock(RMSNorm(x)), reset at t = 0."""
    q = below(p, "recurrent_block/")
    n = x / np.sqrt(np.mean(x**2, -1, keepdims=True) + 1e-6) * (1.0 + p["temporal_pre_norm/scale"])
    y = gelu_tanh(n @ q["linear_y/kernel"] + q["linear_y/bias"])
    u = n @ q["linear_x/kernel"] + q["linear_x/bias"]
    w = q["conv_1d/w"]  # w[-1] multiplies the current frame, w[-1 - s] frame t − s
    conv = np.zeros_like(u) + q["conv_1d/b"]
    for t in range(u.shape[1]):
        for s in range(min(w.shape[0], t + 1)):
            conv[:, t] += u[:, t - s] * w[w.shape[0] - 1 - s]
    gate_x = sigmoid(block_diagonal(conv, q["rg_lru/input_gate/w"], q["rg_lru/input_gate/b"]))
    gate_a = sigmoid(block_diagonal(conv, q["rg_lru/a_gate/w"], q["rg_lru/a_gate/b"]))
    log_a = -8.0 * gate_a * np.log1p(np.exp(q["rg_lru/a_param"]))
    a, m = np.exp(log_a), np.sqrt(1.0 - np.exp(2.0 * log_a))
    a[:, 0], m[:, 0] = 0.0, 1.0  # the reset at segment position 0
    h = np.zeros_like(conv[:, 0])
    out = np.zeros_like(conv)
    for t in range(conv.shape[1]):
        h = a[:, t] * h + m[:, t] * gate_x[:, t] * conv[:, t]
        out[:, t] = h
    return x + (out * y) @ q["linear_out/kernel"] + q["linear_out/bias"]


def trecvit_vit_block(x, p):
    """big_vision's Encoder1DBlock on x (rows, N, d): Flax MultiHeadDotProductAttention
    (kernels (d, H, k), out (H, k, d)) and a tanh-GELU MLP, LayerNorms ε 1e-6."""
    def ln(t, name):
        return layer_norm(t, p[f"{name}/scale"], p[f"{name}/bias"], 1e-6)

    att = below(p, "MultiHeadDotProductAttention_0/")
    h = ln(x, "LayerNorm_0")
    q, k, v = (np.einsum("bnd,dhk->bnhk", h, att[f"{n}/kernel"]) + att[f"{n}/bias"] for n in ("query", "key", "value"))
    weights = softmax(np.einsum("bqhk,bshk->bhqs", q / np.sqrt(q.shape[-1]), k))
    x = x + np.einsum("bqhk,hkd->bqd", np.einsum("bhqs,bshk->bqhk", weights, v), att["out/kernel"]) + att["out/bias"]
    mlp_block = below(p, "MlpBlock_0/")
    h = gelu_tanh(ln(x, "LayerNorm_1") @ mlp_block["Dense_0/kernel"] + mlp_block["Dense_0/bias"])
    return x + h @ mlp_block["Dense_1/kernel"] + mlp_block["Dense_1/bias"]


def trecvit(frames, p, frames_per_clip=None):
    """The official TRecViT forward: frames (B, T, H, W, C) → logits (B, K).
    Clips: max(T // frames_per_clip, 1) equal parts, each on its own; per
    frame: patches (the 3-D conv kernel (1, p, p, C, d)) + pos_embedding, then
    cls first; per layer: the Griffin block over time for every token, the ViT
    block over the tokens of each frame; encoder_norm; tanh(pre_logits) of the
    class token, mean over the clip's frames, cls_head; mean over clips."""
    b, t = frames.shape[:2]
    clips = 1 if frames_per_clip is None else max(t // frames_per_clip, 1)
    assert t % clips == 0
    t //= clips
    x = frames.astype(np.float64).reshape(b * clips * t, *frames.shape[2:])
    kernel = p["tokenizer/embedding/kernel"][0]
    tokens = patch_embedding(x, kernel, p["tokenizer/embedding/bias"], kernel.shape[0])
    tokens = tokens + p["tokenizer/pos_embedding"][0]
    cls = np.broadcast_to(p["tokenizer/cls"][0], (tokens.shape[0], 1, tokens.shape[2]))
    x = np.concatenate([cls, tokens], axis=1)
    n, d = x.shape[1:]
    x = x.reshape(b * clips, t, n, d)
    depth = len({k.split("/")[1] for k in p if k.startswith("encoder/residualblock_")})
    for i in range(depth):
        rows = x.transpose(0, 2, 1, 3).reshape(-1, t, d)
        rows = trecvit_griffin_block(rows, below(p, f"encoder/residualblock_{i:02d}/"))
        x = rows.reshape(b * clips, n, t, d).transpose(0, 2, 1, 3)
        x = trecvit_vit_block(x.reshape(-1, n, d), below(p, f"encoder/encoderblock_{i}/")).reshape(b * clips, t, n, d)
    x = layer_norm(x, p["encoder/encoder_norm/scale"], p["encoder/encoder_norm/bias"], 1e-6)
    z = np.tanh(x[:, :, 0] @ p["decoder/pre_logits/kernel"] + p["decoder/pre_logits/bias"])
    logits = z.mean(axis=1) @ p["decoder/cls_head/kernel"] + p["decoder/cls_head/bias"]
    return logits.reshape(b, clips, -1).mean(axis=1)


# RecTable
# --- RecTable (Ishikawa et al. 2025, arXiv 2503.20731), its velocity network written from the paper and the
# official PyTorch model (DDPM-style MLP with GLU blocks). Weights as float64 arrays keyed by their path below
# the network ("time_dense_in/kernel", "block_0/kernel", "head/bias"); GLU kernels fused as [gate | linear].

def rectable_time_embedding(t, dim, max_period=10000.0):
    """[cos(t·f), sin(t·f)] with f_i = max_period^(−i/(dim/2)), i = 0 … dim/2 − 1."""
    half = dim // 2
    freqs = np.exp(-math.log(max_period) * np.arange(half) / half)
    args = np.asarray(t, np.float64)[:, None] * freqs[None, :]
    return np.concatenate([np.cos(args), np.sin(args)], axis=-1)


def rectable_net(x, t, w, hidden_dims, time_dim):
    """v(x, t) = head(GLU_k(…GLU_1(W_in·x + b_in + MLP_t(emb(999·t))))), GLU(h) = σ(h·W + b_W) ⊗ (h·V + b_V),
    MLP_t(e) = W₂·SiLU(W₁·e + b₁) + b₂."""
    e = rectable_time_embedding(999.0 * np.asarray(t, np.float64), time_dim)
    e = e @ w["time_dense_in/kernel"] + w["time_dense_in/bias"]
    e = e * sigmoid(e)
    e = e @ w["time_dense_out/kernel"] + w["time_dense_out/bias"]
    h = np.asarray(x, np.float64) @ w["input_projection/kernel"] + w["input_projection/bias"] + e
    for i, units in enumerate(hidden_dims):
        a = h @ w[f"block_{i}/kernel"] + w[f"block_{i}/bias"]
        h = sigmoid(a[:, :units]) * a[:, units:]
    return h @ w["head/kernel"] + w["head/bias"]


# --- GRU (ParallelGRU, DEER) ---


def gru(x, kernel, recurrent_kernel, bias, h0=None, mask=None):
    """Keras's GRU with reset_after=True, step by step in float64 (Cho et al.
    2014): z = σ(x_z + h_z), r = σ(x_r + h_r), n = tanh(x_h + r·h_h),
    h ← z·h + (1 − z)·n; a masked step keeps h. Returns every step's h."""
    x = np.asarray(x, np.float64)
    batch, length, _ = x.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units)) if h0 is None else np.asarray(h0, np.float64)
    xp = x @ kernel + bias[0]
    out = np.zeros((batch, length, units))
    for t in range(length):
        hp = h @ recurrent_kernel + bias[1]
        z = sigmoid(xp[:, t, :units] + hp[:, :units])
        r = sigmoid(xp[:, t, units:2 * units] + hp[:, units:2 * units])
        n = np.tanh(xp[:, t, 2 * units:] + r * hp[:, 2 * units:])
        new = z * h + (1 - z) * n
        h = new if mask is None else np.where(mask[:, t, None], new, h)
        out[:, t] = h
    return out


# --- L2-SVM / GRU-SVM ---
# Agarap 2017 (arXiv 1709.03082): decision values o = hW + b; loss ½‖W‖² + C·Σ_i Σ_k max(0, 1 − y_ik·o_ik)² with
# y in one-vs-rest ±1 coding. float64.


def plus_minus(labels, num_classes):
    """One-vs-rest ±1 coding (batch, K) of class ids (batch,) / (batch, 1), one-hot or ±1 labels (batch, K)."""
    labels = np.asarray(labels, np.float64)
    if labels.ndim == 1 or labels.shape[-1] == 1:
        ids = labels.reshape(-1).astype(int)
        return np.array([[1.0 if k == i else -1.0 for k in range(num_classes)] for i in ids])
    return np.array([[1.0 if v > 0 else -1.0 for v in row] for row in labels])


def squared_hinge(labels, o, C):
    """C·Σ_k max(0, 1 − y_k·o_k)² of each example, shape (batch,)."""
    o = np.asarray(o, np.float64)
    y = plus_minus(labels, o.shape[-1])
    return C * np.sum(np.maximum(0.0, 1.0 - y * o) ** 2, axis=-1)


def l2svm_objective(labels, o, kernel, C):
    """The paper's objective of one batch: ½‖W‖² + C·Σ_i Σ_k max(0, 1 − y_ik·o_ik)²."""
    return 0.5 * np.sum(np.asarray(kernel, np.float64) ** 2) + np.sum(squared_hinge(labels, o, C))


def l2svm_objective_grad(x, labels, kernel, bias, C):
    """(∂/∂W, ∂/∂b) of the objective for o = xW + b: W − 2C·xᵀ(y·max(0, 1 − y·o)), −2C·Σ_i y·max(0, 1 − y·o)."""
    x, kernel, bias = (np.asarray(a, np.float64) for a in (x, kernel, bias))
    o = x @ kernel + bias
    y = plus_minus(labels, o.shape[-1])
    slack = np.maximum(0.0, 1.0 - y * o)
    return kernel - 2 * C * x.T @ (y * slack), -2 * C * np.sum(y * slack, axis=0)


def gru_svm(x, w):
    """GRUSVM's outputs: the last output of Keras's GRU (reset_after=True) through the linear head
    ("gru/kernel", "gru/recurrent_kernel", "gru/bias", "head/kernel", "head/bias")."""
    h = gru(x, w["gru/kernel"], w["gru/recurrent_kernel"], w["gru/bias"])[:, -1]
    return h @ w["head/kernel"] + w["head/bias"]


# --- attention (issue 13) ---
# ALiBi (Press et al. 2021, arXiv 2108.12409), T5's relative position buckets (Raffel et al. 2019,
# arXiv 1910.10683) and multi-head attention in glu_zoo's MultiHeadAttention layout: kernels
# query_kernel, key_kernel, value_kernel (d, H·k), output_kernel (H·k, d), head-major columns. float64.

def alibi_bias(slopes, query_positions, key_positions):
    """−slope_h·|q_i − k_j|, (batch, heads, Tq, Tk) from positions (batch, Tq), (batch, Tk)."""
    distance = np.abs(np.asarray(query_positions)[:, :, None] - np.asarray(key_positions)[:, None, :])
    return -np.asarray(slopes, np.float64)[None, :, None, None] * distance[:, None]


def t5_relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """T5's bucketing of r = key − query, one position at a time, as the paper's Mesh TensorFlow code."""
    def one(r):
        n, bucket = num_buckets, 0
        if bidirectional:
            n //= 2
            if r > 0:
                bucket += n
            r = abs(r)
        else:
            r = max(-r, 0)
        max_exact = n // 2
        if r < max_exact:
            return bucket + r
        large = max_exact + int(math.log(r / max_exact) / math.log(max_distance / max_exact) * (n - max_exact))
        return bucket + min(large, n - 1)

    rel = np.asarray(relative_position)
    return np.vectorize(one, otypes=[np.int64])(rel)


def attention(q, k, v, bias=None, mask=None, scale=None):
    """softmax(scale·q·kᵀ + bias) v over the keys where mask is True, (batch, T, heads, dim) layout;
    a query with no key gets 0."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = np.einsum("bthd,bshd->bhts", q, k) * scale
    if bias is not None:
        logits = logits + bias
    mask = np.ones(logits.shape, bool) if mask is None else np.broadcast_to(mask, logits.shape)
    logits = np.where(mask, logits, -np.inf)
    top = np.max(logits, axis=-1, keepdims=True)
    e = np.where(mask, np.exp(logits - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = e.sum(-1, keepdims=True)
    probs = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    return np.einsum("bhts,bshd->bthd", probs, v)


def projected_attention(query, key_value, w, num_heads, bias=None, mask=None, scale=None):
    """Multi-head attention: project, split heads, `attention`, merge, project back."""
    def heads(x, name):
        y = x @ w[f"{name}_kernel"] + w.get(f"{name}_bias", 0.0)
        return y.reshape(*y.shape[:-1], num_heads, -1)

    key_value = query if key_value is None else key_value
    out = attention(heads(query, "query"), heads(key_value, "key"), heads(key_value, "value"), bias, mask, scale)
    return out.reshape(*out.shape[:2], -1) @ w["output_kernel"] + w.get("output_bias", 0.0)


# --- T5 in transformers' names (issue 13) ---
# transformers' T5ForConditionalGeneration written out in NumPy (float64), on a state dict
# {name: array} of torch Linear weights (out, in): RMSNorm without mean, unscaled attention logits,
# relative position bias from block 0 of each stack, FFN relu / gated (act(wi_0 x) ⊗ wi_1 x) wo.

def t5_rms_norm(x, scale, eps=1e-6):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * scale


def t5_position_bias(table, query_length, key_length, bidirectional, num_buckets, max_distance):
    rel = np.arange(key_length)[None, :] - np.arange(query_length)[:, None]
    buckets = t5_relative_position_bucket(rel, bidirectional, num_buckets, max_distance)
    return np.transpose(table[buckets], (2, 0, 1))[None]  # (1, heads, Tq, Tk)


def t5_attention(sd, prefix, x, kv, bias, mask, num_heads):
    def heads(y, letter):
        z = y @ sd[f"{prefix}.{letter}.weight"].T
        return z.reshape(*z.shape[:2], num_heads, -1)

    out = attention(heads(x, "q"), heads(kv, "k"), heads(kv, "v"), bias, mask, scale=1.0)
    return out.reshape(*out.shape[:2], -1) @ sd[f"{prefix}.o.weight"].T


def t5_ffn(sd, prefix, x, act):
    if f"{prefix}.wi.weight" in sd:
        h = act(x @ sd[f"{prefix}.wi.weight"].T)
    else:
        h = act(x @ sd[f"{prefix}.wi_0.weight"].T) * (x @ sd[f"{prefix}.wi_1.weight"].T)
    return h @ sd[f"{prefix}.wo.weight"].T


def t5_forward(sd, config, encoder_ids, encoder_mask, decoder_ids, decoder_mask):
    """Decoder logits (batch, T_dec, vocab) of a T5 state dict and its config.json dict."""
    sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
    heads, eps = config["num_heads"], config.get("layer_norm_epsilon", 1e-6)
    buckets, distance = config.get("relative_attention_num_buckets", 32), config.get("relative_attention_max_distance",
                                                                                     128)
    proj = config.get("feed_forward_proj", "relu")
    relu, silu = (lambda z: np.maximum(z, 0.0)), (lambda z: z * sigmoid(z))
    # transformers maps "gated-gelu" to the tanh form ("gelu_new"); plain "gelu" is exact.
    act = {"relu": relu, "gelu": gelu, "gelu_new": gelu_tanh, "gated-gelu": gelu_tanh, "gated-relu": relu,
           "gated-silu": silu, "silu": silu}[proj]
    emb = sd["shared.weight"]
    enc_keys = np.asarray(encoder_mask, bool)[:, None, None, :]
    x = emb[encoder_ids]
    t = x.shape[1]
    bias = t5_position_bias(sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"], t, t, True,
                            buckets, distance)
    for i in range(config["num_layers"]):
        p = f"encoder.block.{i}.layer"
        h = t5_rms_norm(x, sd[f"{p}.0.layer_norm.weight"], eps)
        x = x + t5_attention(sd, f"{p}.0.SelfAttention", h, h, bias, enc_keys, heads)
        x = x + t5_ffn(sd, f"{p}.1.DenseReluDense", t5_rms_norm(x, sd[f"{p}.1.layer_norm.weight"], eps), act)
    enc = t5_rms_norm(x, sd["encoder.final_layer_norm.weight"], eps)
    y = emb[decoder_ids]
    t = y.shape[1]
    bias = t5_position_bias(sd["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"], t, t, False,
                            buckets, distance)
    self_mask = np.asarray(decoder_mask, bool)[:, None, None, :] & np.tril(np.ones((t, t), bool))[None, None]
    for i in range(config.get("num_decoder_layers") or config["num_layers"]):
        p = f"decoder.block.{i}.layer"
        h = t5_rms_norm(y, sd[f"{p}.0.layer_norm.weight"], eps)
        y = y + t5_attention(sd, f"{p}.0.SelfAttention", h, h, bias, self_mask, heads)
        h = t5_rms_norm(y, sd[f"{p}.1.layer_norm.weight"], eps)
        y = y + t5_attention(sd, f"{p}.1.EncDecAttention", h, enc, None, enc_keys, heads)
        y = y + t5_ffn(sd, f"{p}.2.DenseReluDense", t5_rms_norm(y, sd[f"{p}.2.layer_norm.weight"], eps), act)
    y = t5_rms_norm(y, sd["decoder.final_layer_norm.weight"], eps)
    if config.get("tie_word_embeddings", True):
        return (y * config["d_model"] ** -0.5) @ emb.T
    return y @ sd["lm_head.weight"].T


# --- MosaicBERT (issue 13) ---
# The official BertForMaskedLM of mosaicml/examples (examples/benchmarks/bert/src/bert_layers.py) written out in
# NumPy (float64) on its state dict {name: array} of torch Linear weights (out, in): no position table, post-LN,
# fused Wqkv "(t h d)", ALiBi −slope·|i − j| over the padded row plus −10000 on padding keys, GeGLU with the FIRST
# half of gated_layers through exact GELU, the head's LayerNorm at ε 1e-12, decoder tied to the word table.

def mosaic_alibi_slopes(n):
    """The official slopes: start = 2^(−2^−(log2 n − 3)), start·start^i; other n from the next powers of two."""
    def power_of_2(m):
        start = 2.0 ** (-(2.0 ** -(math.log2(m) - 3)))
        return [start * start ** i for i in range(m)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + mosaic_alibi_slopes(2 * closest)[0::2][:n - closest]


def mosaic_bert_forward(sd, config, ids, attention_mask):
    """MLM logits (batch, L, vocab) of an official state dict; `config` holds num_attention_heads,
    num_hidden_layers, intermediate_size and layer_norm_eps. The hidden states at padding are 0 before the
    head, as the official model pads its unpadded output back."""
    sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
    heads, eps, inter = config["num_attention_heads"], config["layer_norm_eps"], config["intermediate_size"]
    mask = np.asarray(attention_mask, np.float64)
    length = ids.shape[1]

    def linear(x, name):
        return x @ sd[f"{name}.weight"].T + sd.get(f"{name}.bias", 0.0)

    def ln(x, name, eps=eps):
        return layer_norm(x, sd[f"{name}.weight"], sd[f"{name}.bias"], eps)

    x = sd["bert.embeddings.word_embeddings.weight"][ids] + sd["bert.embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "bert.embeddings.LayerNorm")
    slopes = np.asarray(mosaic_alibi_slopes(heads))
    distance = np.abs(np.arange(length)[None, :] - np.arange(length)[:, None])
    bias = -slopes[None, :, None, None] * distance[None, None] + (1.0 - mask)[:, None, None, :] * -10000.0
    for i in range(config["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}"
        qkv = linear(x, f"{p}.attention.self.Wqkv").reshape(*x.shape[:2], 3, heads, -1)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1]) + bias
        att = np.einsum("bhqk,bkhd->bqhd", softmax(scores, axis=-1), v).reshape(x.shape)
        x = ln(linear(att, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        h = linear(x, f"{p}.mlp.gated_layers")
        h = gelu(h[..., :inter]) * h[..., inter:]
        x = ln(linear(h, f"{p}.mlp.wo") + x, f"{p}.mlp.layernorm")
    x = x * mask[..., None]
    x = ln(gelu(linear(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm", 1e-12)
    return x @ sd["bert.embeddings.word_embeddings.weight"].T + sd["cls.predictions.decoder.bias"]


# === T5 block / reversible embedding (layer tests) ===
# glu_zoo's T5Block (Raffel et al. 2019, arXiv 1910.10683; GLU FFNs, Shazeer 2020, arXiv 2002.05202) on its
# weights keyed by their path below the block ("self_attention/query_kernel", "ffn/kernel_in"), and the
# ReversibleEmbedding's forward and reverse maps. float64.

def t5_block(x, w, num_heads, mlp_kind, causal=False, position_bias=None, padding_mask=None, encoder_outputs=None,
             encoder_padding_mask=None, num_buckets=32, max_distance=128, eps=1e-6):
    """(y, position_bias) of one T5 layer, pre-norm RMSNorm (scale only), no biases, unscaled logits:

        x ← x + SelfAttention(RMSNorm(x), bias = position_bias, keys ∧ (j ≤ i if causal))
        x ← x + CrossAttention(RMSNorm(x), encoder_outputs, encoder keys)   (when given)
        x ← x + MLP(RMSNorm(x))

    position_bias None: the block's own table ("relative_position_bias/embeddings"), bidirectional unless
    causal."""
    t = x.shape[1]
    if position_bias is None:
        position_bias = t5_position_bias(w["relative_position_bias/embeddings"], t, t, not causal, num_buckets,
                                         max_distance)
    mask = np.ones((1, 1, t, t), bool)
    if padding_mask is not None:
        mask = mask & np.asarray(padding_mask, bool)[:, None, None, :]
    if causal:
        mask = mask & np.tril(np.ones((t, t), bool))[None, None]
    h = t5_rms_norm(x, w["self_attention_norm/scale"], eps)
    x = x + projected_attention(h, h, below(w, "self_attention/"), num_heads, position_bias, mask, scale=1.0)
    if encoder_outputs is not None:
        cross_mask = None
        if encoder_padding_mask is not None:
            cross_mask = np.asarray(encoder_padding_mask, bool)[:, None, None, :]
        h = t5_rms_norm(x, w["cross_attention_norm/scale"], eps)
        x = x + projected_attention(h, encoder_outputs, below(w, "cross_attention/"), num_heads, None, cross_mask,
                                    scale=1.0)
    x = x + mlp(t5_rms_norm(x, w["ffn_norm/scale"], eps), below(w, "ffn/"), mlp_kind)
    return x, position_bias


def reversible_embedding(ids, embeddings):
    """E[ids]: (…, T) ids → (…, T, d)."""
    return np.asarray(embeddings)[np.asarray(ids)]


def reversible_logits(x, embeddings, logit_scale=1.0, reverse_embeddings=None):
    """(x·logit_scale)·Eᵀ tied, (x·logit_scale)·W_out untied (W_out (d, vocabulary))."""
    kernel = np.asarray(embeddings).T if reverse_embeddings is None else np.asarray(reverse_embeddings)
    return (np.asarray(x) * logit_scale) @ kernel
