"""Interaction matrices of bilinear layers and their eigen-decomposition
(Pearce et al. 2024, "Bilinear MLPs enable weight-based mechanistic
interpretability", arXiv 2410.08417).

A bias-free bilinear layer g(x) = ((x·W) ⊗ (x·V))·P has no element-wise
nonlinearity, so for any output direction u

    u·g(x) = Σ_k (P·u)_k (w_k·x)(v_k·x) = xᵀQx,   Q = Σ_k (P·u)_k ½(w_k v_kᵀ + v_k w_kᵀ),

with Q symmetric. Its eigen-decomposition Q = Σ_i λ_i v_i v_iᵀ writes the
output as Σ_i λ_i (v_i·x)²: the eigenvectors are input features, the
eigenvalues their signed weights, and a few of them carry most of Q.

    q = interaction_matrix(model, u)             # u over the logits, Q over the pixels
    eig = decompose(model)                       # one decomposition per class
    eig.features(3, model.image_shape)           # top eigenvectors as images
    accuracy_against_k(model, x_test, y_test)    # the model with each Q cut to its top k
"""

import dataclasses
import math

import keras
import numpy as np

from glu_zoo.layers.ffn import GatedFFN
from glu_zoo.plotting import pyplot

__all__ = ["Eigen", "EigenQuadratic", "accuracy_against_k", "bilinear_layers", "decompose", "eigendecomposition",
           "interaction_matrix", "plot_accuracy", "plot_features", "plot_spectrum", "quadratic_form", "report",
           "truncate"]

# Layers that are the identity at inference, or only reshape: allowed around the bilinear layer.
_PASS_THROUGH = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Dropout, keras.layers.GaussianNoise,
                 keras.layers.GaussianDropout, keras.layers.Identity)


def bilinear_layers(model):
    """The bilinear `GatedFFN` layers of a model, in order (possibly none)."""
    return [layer for layer in _operations(model) if _is_bilinear(layer)]


def _operations(model):
    ops = getattr(model, "operations", None) or getattr(model, "layers", [])
    return [op for op in ops if not isinstance(op, keras.layers.InputLayer)]


def _is_bilinear(layer):
    return isinstance(layer, GatedFFN) and layer.variant == "bilinear"


def _name(obj):
    return f"{type(obj).__name__} {getattr(obj, 'name', '')!r}".strip()


def _check_bilinear(layer, owner):
    if not isinstance(layer, GatedFFN):
        raise ValueError(
            f"{owner}: `layer` must be a GatedFFN with variant 'bilinear', or a model built around one; got "
            f"{_name(layer)}."
        )
    if layer.variant != "bilinear":
        raise ValueError(
            f"{owner}: `layer` {layer.name!r} is a GatedFFN with variant {layer.variant!r}; only variant "
            f"'bilinear' has no element-wise nonlinearity, so only it is a quadratic form of its input."
        )
    if layer.use_bias:
        raise ValueError(
            f"{owner}: `layer` {layer.name!r} has biases (use_bias=True); u·out(x) = xᵀQx holds only for a "
            f"bias-free bilinear layer."
        )
    if not layer.built:
        raise ValueError(f"{owner}: `layer` {layer.name!r} is not built yet; call it on an input first.")


def _dense_matrix(layer, owner):
    if layer.use_bias or layer.activation not in (keras.activations.linear, None):
        raise ValueError(
            f"{owner}: Dense layer {layer.name!r} has a bias or an activation; only bias-free linear layers may "
            f"stand before or after the bilinear layer."
        )
    return np.asarray(keras.ops.convert_to_numpy(layer.kernel), "float64")


@dataclasses.dataclass(frozen=True)
class QuadraticForm:
    """A model's output as a quadratic form of its (flattened) input:
    out(x) = R·g(A·x) with g the bilinear layer, A the linear map before it
    (input_dim, d) and R the read-out after it (layer outputs, model outputs)."""

    layer: GatedFFN
    before: np.ndarray
    after: np.ndarray
    input_shape: tuple

    @property
    def input_dim(self):
        return self.before.shape[0]

    @property
    def output_dim(self):
        return self.after.shape[1]


def quadratic_form(obj):
    """The `QuadraticForm` of a bilinear layer, or of a model that is one
    chain: reshapes and inference-time identities (Flatten, Dropout,
    GaussianNoise), bias-free linear Dense layers, exactly one bias-free
    bilinear `GatedFFN`, then bias-free linear Dense layers."""
    owner = "interaction_matrix"
    if not isinstance(obj, keras.Model):
        _check_bilinear(obj, owner)
        d, m = obj.kernel_in.shape[0], obj.kernel_out.shape[1]
        return QuadraticForm(obj, np.eye(d), np.eye(m), (d,))
    if not obj.built:
        raise ValueError(f"{owner}: model {obj.name!r} is not built yet; call it on an input first.")
    found = bilinear_layers(obj)
    if not found:
        raise ValueError(
            f"{owner}: model {obj.name!r} has no bilinear GatedFFN (variant 'bilinear'); these tools read "
            f"bilinear layers only (GLU models with a nonlinear gate: see glu_zoo.interpret.logit_lens)."
        )
    if len(found) > 1:
        raise ValueError(
            f"{owner}: model {obj.name!r} has {len(found)} bilinear layers "
            f"({', '.join(repr(layer.name) for layer in found)}); its outputs are one quadratic form only with one. "
            f"Decompose one layer against its own input instead: interaction_matrix(model.get_layer("
            f"{found[-1].name!r}), u)."
        )
    input_shape = tuple(obj.inputs[0].shape[1:]) if getattr(obj, "inputs", None) else None
    if input_shape is None or any(s is None for s in input_shape):
        raise ValueError(f"{owner}: model {obj.name!r} needs a fixed input shape; got {input_shape}.")
    before, after, layer = np.eye(math.prod(input_shape)), None, None
    for op in _operations(obj):
        if isinstance(op, _PASS_THROUGH):
            continue
        if _is_bilinear(op):
            _check_bilinear(op, owner)
            layer, after = op, np.eye(op.kernel_out.shape[1])
        elif isinstance(op, keras.layers.Dense):
            if layer is None:
                before = before @ _dense_matrix(op, owner)
            else:
                after = after @ _dense_matrix(op, owner)
        else:
            raise ValueError(
                f"{owner}: model {obj.name!r} holds {_name(op)}, which is not linear; the model's outputs are a "
                f"quadratic form only if the bilinear layer is surrounded by bias-free linear layers."
            )
    if before.shape[1] != layer.kernel_in.shape[0]:  # e.g. a Dense on an unflattened axis
        raise ValueError(f"{owner}: model {obj.name!r} is not one chain of flattened layers.")
    return QuadraticForm(layer, before, after, input_shape)


def _directions(u, width, owner, name="u"):
    u = np.asarray(keras.ops.convert_to_numpy(u) if not isinstance(u, (list, tuple, np.ndarray)) else u)
    if not np.issubdtype(u.dtype, np.number) or u.ndim not in (1, 2) or u.shape[-1] != width:
        raise ValueError(
            f"{owner}: `{name}` must be one direction of size {width} (the outputs' width), or a batch "
            f"(n, {width}); got shape {u.shape} and dtype {u.dtype}."
        )
    if not np.all(np.isfinite(u)):
        raise ValueError(f"{owner}: `{name}` holds NaN or infinite values.")
    return u.astype("float64")


def interaction_matrix(layer, u):
    """The symmetric Q with u·out(x) = xᵀQx.

    Q = A·Q_g·Aᵀ, Q_g = Σ_k c_k ½(w_k v_kᵀ + v_k w_kᵀ), c = P·(R·u): W, V
    the bilinear layer's two halves of `kernel_in`, P its `kernel_out`, A and R
    the linear maps before and after it (identities for a bare layer).

    Args:
        layer: a bias-free `GatedFFN(variant="bilinear")`, or a model of one
            such layer between bias-free linear layers (`BilinearMLP` with one
            layer); Q is then over the model's flattened input.
        u: a direction over the outputs (a class: a one-hot row), shape (m,),
            or a batch of them (n, m).

    Returns:
        float64 array (d, d), or (n, d, d) for a batch of directions.
    """
    form = quadratic_form(layer)
    u = _directions(u, form.output_dim, "interaction_matrix")
    kernel = np.asarray(keras.ops.convert_to_numpy(form.layer.kernel_in), "float64")
    hidden = kernel.shape[1] // 2
    w, v = kernel[:, :hidden], kernel[:, hidden:]
    p = np.asarray(keras.ops.convert_to_numpy(form.layer.kernel_out), "float64")
    c = u @ form.after.T @ p.T  # (..., hidden)
    b = np.einsum("ik,...k,jk->...ij", w, c, v)
    q = 0.5 * (b + np.swapaxes(b, -1, -2))
    return np.einsum("ai,...ij,bj->...ab", form.before, q, form.before)


@dataclasses.dataclass(frozen=True)
class Eigen:
    """Eigen-decompositions Q = Σ_i λ_i v_i v_iᵀ, ordered by |λ| descending.

    values: (..., n); vectors: (..., n, n), row i the unit eigenvector v_i.
    """

    values: np.ndarray
    vectors: np.ndarray

    @property
    def size(self):
        """n, the number of eigen-components of each matrix."""
        return self.values.shape[-1]

    def top(self, k):
        """The k components of largest |λ|."""
        k = check_k(k, self.size, "Eigen.top")
        return Eigen(self.values[..., :k], self.vectors[..., :k, :])

    def share(self, k):
        """Σ_{i≤k} λ_i² / Σ_i λ_i²: the share of ‖Q‖²_F the top k hold (1 − the
        relative squared error of the best rank-k approximation)."""
        k = check_k(k, self.size, "Eigen.share")
        squares = self.values**2
        total = squares.sum(-1)
        return np.where(total > 0, squares[..., :k].sum(-1) / np.where(total > 0, total, 1.0), 1.0)

    def matrix(self, k=None):
        """Σ_{i≤k} λ_i v_i v_iᵀ (k=None: all, i.e. Q)."""
        eig = self if k is None else self.top(k)
        return np.einsum("...i,...ia,...ib->...ab", eig.values, eig.vectors, eig.vectors)

    def features(self, k, shape=None):
        """The top-k eigenvectors, (..., k, *shape): images for an image model."""
        vectors = self.top(k).vectors
        return vectors if shape is None else vectors.reshape(*vectors.shape[:-1], *shape)


def check_k(k, n, owner):
    """`k` an int in [1, n], or a ValueError naming it and the allowed range."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(
            f"{owner}: `k` must be an integer in [1, {n}] ({n}: the number of eigen-components, the size of the "
            f"interaction matrix); got {k!r}."
        )
    return int(k)


def eigendecomposition(q):
    """The `Eigen` of a symmetric matrix (n, n), or of a batch (..., n, n),
    in float64, components ordered by |λ| descending."""
    q = np.asarray(q, "float64")
    if q.ndim < 2 or q.shape[-1] != q.shape[-2] or q.shape[-1] == 0:
        raise ValueError(f"eigendecomposition: `q` must be square matrices (..., n, n); got shape {q.shape}.")
    if not np.all(np.isfinite(q)):
        raise ValueError("eigendecomposition: `q` holds NaN or infinite values.")
    asymmetry = np.abs(q - np.swapaxes(q, -1, -2)).max()
    if asymmetry > 1e-9 * max(1.0, np.abs(q).max()):
        raise ValueError(
            f"eigendecomposition: `q` must be symmetric (an interaction matrix); the largest |q − qᵀ| is "
            f"{asymmetry:.3g}."
        )
    values, vectors = np.linalg.eigh(q)  # ascending; columns
    order = np.argsort(-np.abs(values), axis=-1, kind="stable")
    values = np.take_along_axis(values, order, axis=-1)
    vectors = np.take_along_axis(np.swapaxes(vectors, -1, -2), order[..., None], axis=-2)
    return Eigen(values, vectors)


def decompose(model, directions=None):
    """The eigen-decomposition of the interaction matrix of each direction.

    directions: (n, m) rows over the outputs; None: one per output (for a
    classifier, one per class). Returns an `Eigen` with a leading axis over
    the directions, its eigenvectors over the (flattened) input.
    """
    form = quadratic_form(model)
    directions = np.eye(form.output_dim) if directions is None else _directions(
        directions, form.output_dim, "decompose", "directions")
    if directions.ndim == 1:
        directions = directions[None]
    return eigendecomposition(interaction_matrix(model, directions))


@keras.saving.register_keras_serializable(package="glu_zoo")
class EigenQuadratic(keras.layers.Layer):
    """out_c = Σ_i λ_ci (v_ci·x)²: a sum of weighted squared projections, the
    truncated form of a bilinear model (arXiv 2410.08417). Weights `values`
    (outputs, k) and `vectors` (outputs, k, d), not trainable."""

    def __init__(self, outputs, rank, **kwargs):
        super().__init__(**kwargs)
        self.outputs, self.rank = outputs, rank

    def build(self, input_shape):
        self.values = self.add_weight(name="values", shape=(self.outputs, self.rank), initializer="zeros",
                                      trainable=False)
        self.vectors = self.add_weight(name="vectors", shape=(self.outputs, self.rank, input_shape[-1]),
                                       initializer="zeros", trainable=False)

    def call(self, x):
        projections = keras.ops.einsum("bd,ckd->bck", x, keras.ops.cast(self.vectors, x.dtype))
        return keras.ops.sum(keras.ops.cast(self.values, x.dtype) * projections**2, axis=-1)

    def get_config(self):
        return {**super().get_config(), "outputs": self.outputs, "rank": self.rank}


def truncate(model, k, directions=None):
    """The model with each interaction matrix replaced by its top-k
    eigen-components: a `keras.Model` with the same input whose output c is
    Σ_{i≤k} λ_ci (v_ci·x)² (x flattened). At k = n it equals the model."""
    form = quadratic_form(model)
    eig = decompose(model, directions)
    k = check_k(k, eig.size, "truncate")
    top = eig.top(k)
    inputs = keras.Input(shape=form.input_shape, name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(form.input_shape) > 1 else inputs
    layer = EigenQuadratic(top.values.shape[0], k, name="eigen_quadratic")
    outputs = layer(x)
    layer.values.assign(top.values.astype("float32"))
    layer.vectors.assign(top.vectors.astype("float32"))
    return keras.Model(inputs, outputs, name=f"{getattr(model, 'name', 'bilinear')}_top{k}")


def _flat_inputs(form, x, owner):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) or tuple(x.shape[1:]) != tuple(form.input_shape):
        raise ValueError(
            f"{owner}: `x` must be floating inputs of shape (batch, {', '.join(map(str, form.input_shape))}); got "
            f"shape {x.shape} and dtype {x.dtype}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{owner}: `x` holds NaN or infinite values.")
    return x.reshape(len(x), -1).astype("float64")


def accuracy_against_k(model, x, y, ks=None, eig=None):
    """Accuracy of the truncated model (`truncate(model, k)`) for each k.

    All k at once: with p_ci = (v_ci·x)², the truncated logits are the
    cumulative sums Σ_{i≤k} λ_ci p_ci. Returns {k: accuracy}; ks defaults to
    1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, … up to n.
    """
    form = quadratic_form(model)
    eig = decompose(model) if eig is None else eig
    n = eig.size
    ks = default_ks(n) if ks is None else [check_k(k, n, "accuracy_against_k") for k in ks]
    x = _flat_inputs(form, x, "accuracy_against_k")
    y = np.asarray(y)
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"accuracy_against_k: `y` must be integer labels of shape ({len(x)},); got shape {y.shape} "
                         f"and dtype {y.dtype}.")
    terms = eig.values[None] * np.einsum("bd,ckd->bck", x, eig.vectors) ** 2  # (batch, classes, n)
    logits = np.cumsum(terms, axis=-1)
    return {k: float(np.mean(np.argmax(logits[..., k - 1], axis=-1) == y)) for k in ks}


def default_ks(n):
    """1–6, then about 4 steps per doubling, up to n."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k = k + 1 if k < 6 else k + max(1, 2 ** int(math.log2(k)) // 4)
    return ks + [n]


def plot_spectrum(eig, path, labels=None, top=20):
    """Eigenvalues against their rank (by |λ|), one line per direction."""
    plt = pyplot("plot_spectrum")
    values = np.atleast_2d(eig.values)[:, :top]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, row in enumerate(values):
        ax.plot(np.arange(1, len(row) + 1), row, marker=".", label=str(labels[i]) if labels is not None else str(i))
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_xlabel("component (by |eigenvalue|)")
    ax.set_ylabel("eigenvalue")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_features(eig, image_shape, path, k=3, labels=None):
    """The top-k eigenvectors of each direction as images (red +, blue −)."""
    plt = pyplot("plot_features")
    features = eig.features(k, image_shape)
    features = features.reshape(-1, k, *image_shape)
    values = np.atleast_2d(eig.values)[:, :k]
    rows = len(features)
    fig, axes = plt.subplots(rows, k, figsize=(1.3 * k, 1.3 * rows), squeeze=False)
    for r in range(rows):
        for c in range(k):
            image = features[r, c].mean(-1) if features.ndim == 5 else features[r, c]
            limit = np.abs(image).max() or 1.0
            axes[r, c].imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            axes[r, c].set_title(f"λ={values[r, c]:.2f}", fontsize=6)
        axes[r, 0].set_ylabel(str(labels[r]) if labels is not None else str(r), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy(accuracies, path, full=None):
    """Accuracy of the truncated model against k (and the full model's)."""
    plt = pyplot("plot_accuracy")
    ks = sorted(accuracies)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(ks, [accuracies[k] for k in ks], marker="o", label="top-k eigen-components")
    if full is not None:
        ax.axhline(full, color="grey", linestyle="--", label=f"full model {full:.3f}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (eigen-components per class)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(model, x=None, y=None, out=None, k=3, labels=None, verbose=True):
    """What `glu-zoo interpret` shows for a bilinear model: per output the
    top-k eigenvalues and the share of Q they hold; with test data the
    accuracy against k; with `out` the PNGs (spectrum, features, accuracy).
    Returns a JSON-able dict."""
    import pathlib

    form = quadratic_form(model)
    eig = decompose(model)
    k = check_k(k, eig.size, "report")
    labels = list(range(form.output_dim)) if labels is None else list(labels)
    progress = keras.utils.Progbar(3, unit_name="step") if verbose else None
    result = {
        "analysis": "bilinear",
        "input_dim": int(form.input_dim),
        "components": int(eig.size),
        "outputs": [
            {"label": label if isinstance(label, (int, str)) else str(label),
             "top_eigenvalues": [float(v) for v in eig.values[i, :k]],
             f"share_top_{k}": float(eig.share(k)[i])}
            for i, label in enumerate(labels)
        ],
    }
    if progress:
        progress.add(1)
    full = None
    if x is not None and y is not None:
        accuracies = accuracy_against_k(model, x, y, eig=eig)
        logits = keras.ops.convert_to_numpy(model.predict_on_batch(np.asarray(x, "float32")))
        full = float(np.mean(np.argmax(logits, -1) == np.asarray(y)))
        result["accuracy_against_k"] = {str(key): value for key, value in accuracies.items()}
        result["full_accuracy"] = full
    if progress:
        progress.add(1)
    if out is not None:
        out = pathlib.Path(out)
        out.mkdir(parents=True, exist_ok=True)
        plots = [str(plot_spectrum(eig, out / "eigenspectrum.png", labels))]
        if len(form.input_shape) == 3:
            plots.append(str(plot_features(eig, form.input_shape, out / "eigenvectors.png", k=k, labels=labels)))
        if "accuracy_against_k" in result:
            plots.append(str(plot_accuracy(accuracies, out / "accuracy_against_k.png", full)))
        result["plots"] = plots
    if progress:
        progress.add(1)
    return result
