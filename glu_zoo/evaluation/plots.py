"""Pictures of a synthetic table against the real one (PNG, matplotlib: the `plot` extra).

- `plot_marginals`: each column's distribution, real and synthetic overlaid
  (histograms on the real column's bins for numbers, bar pairs for categories);
- `plot_correlations`: both Pearson correlation matrices of the numerical
  columns and their absolute difference, side by side.
"""

import math

import numpy as np

from glu_zoo.evaluation._common import check_spec, check_table
from glu_zoo.plotting import pyplot

__all__ = ["plot_correlations", "plot_marginals"]


def plot_marginals(real, synthetic, spec, path, columns_per_row=5, bins=20):
    """Each column of `spec`, real against synthetic, saved as a PNG at `path` (returned)."""
    owner = "plot_marginals"
    spec = check_spec(spec, owner)
    real = check_table("real", real, spec, owner)
    synthetic = check_table("synthetic", synthetic, spec, owner)
    plt = pyplot(owner)
    columns = list(spec.columns)
    cols = min(columns_per_row, len(columns))
    rows = math.ceil(len(columns) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    for ax, column in zip(axes.ravel(), columns):
        r, s = real[column], synthetic[column]
        if column in spec.numerical_columns:
            values = r.dropna().to_numpy(float)
            edges = np.histogram_bin_edges(values, bins=bins)
            ax.hist(values, bins=edges, density=True, alpha=0.5, label="real")
            ax.hist(np.clip(s.dropna().to_numpy(float), edges[0], edges[-1]), bins=edges, density=True,
                    alpha=0.5, label="synthetic")
        else:
            categories = sorted(set(r.dropna()) | set(s.dropna()), key=str)
            p = r.value_counts(normalize=True).reindex(categories, fill_value=0.0)
            q = s.value_counts(normalize=True).reindex(categories, fill_value=0.0)
            x = np.arange(len(categories))
            ax.bar(x - 0.2, p.to_numpy(), width=0.4, label="real")
            ax.bar(x + 0.2, q.to_numpy(), width=0.4, label="synthetic")
            ax.set_xticks(x, [str(c) for c in categories], rotation=30, fontsize=7)
        ax.set_title(str(column), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(columns):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_correlations(real, synthetic, spec, path):
    """Pearson correlations of the numerical columns: real, synthetic and |difference|, as a PNG at
    `path` (returned). A table with fewer than two numerical columns is a ValueError."""
    owner = "plot_correlations"
    spec = check_spec(spec, owner)
    real = check_table("real", real, spec, owner)
    synthetic = check_table("synthetic", synthetic, spec, owner)
    columns = list(spec.numerical_columns)
    if len(columns) < 2:
        raise ValueError(f"{owner}: correlations need at least two numerical columns; the spec has {columns}.")
    plt = pyplot(owner)
    matrices = [real[columns].astype(float).corr().to_numpy(), synthetic[columns].astype(float).corr().to_numpy()]
    matrices.append(np.abs(matrices[0] - matrices[1]))
    size = max(4.0, 0.3 * len(columns) + 2.0)
    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size))
    for ax, matrix, title in zip(axes, matrices, ("real", "synthetic", "|real − synthetic|")):
        image = ax.imshow(matrix, vmin=0.0 if title.startswith("|") else -1.0, vmax=1.0, cmap="RdBu_r")
        ax.set_title(title)
        ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
        ax.set_yticks(range(len(columns)), columns, fontsize=7)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
