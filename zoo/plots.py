"""The pictures of a run: learning curves and the confusion matrix (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(rows: list[dict], path: Path, title: str) -> None:
    """Loss and accuracy per epoch, training and validation, from history.csv rows."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    epochs = [int(row.get("epoch", i)) + 1 for i, row in enumerate(rows)]
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for prefix, style in (("", "-o"), ("val_", "--o")):
            values = [row.get(prefix + metric) for row in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, markersize=3, label=f"{'validation' if prefix else 'training'}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """Counts per (true, predicted) class on the test split."""
    import numpy as np

    plt = _pyplot()
    cm = np.asarray(matrix)
    size = max(4.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size), constrained_layout=True)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for (i, j), count in np.ndenumerate(cm):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if count > threshold else "black")
    ax.set_title(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
