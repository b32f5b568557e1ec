"""The pictures of a run: learning curves and the confusion matrix (matplotlib, no screen needed).

Each is a `matplotlib.figure.Figure` of its own, drawn by Agg, without pyplot: pyplot keeps global
state (the current figure, the backend), which would make two pictures drawn at once in two threads
(zoo.training.fit draws them beside the model's saving) step on each other.
"""

from __future__ import annotations

from pathlib import Path


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def plot_curves(rows: list[dict], path: Path, title: str) -> None:
    """Loss and accuracy per epoch, training and validation, from history.csv rows."""
    fig = _figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
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


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """Counts per (true, predicted) class on the test split."""
    import numpy as np

    cm = np.asarray(matrix)
    size = max(4.0, 0.5 * len(labels) + 2)
    fig = _figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
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


def plot_reliability(diagrams: list[tuple[str, dict]], path: Path, title: str) -> None:
    """Reliability diagrams side by side (zoo.metrics.reliability): per bin of the top-1
    probability, the share of right answers against the diagonal of perfect calibration, and
    how many examples fell in each bin."""
    import numpy as np

    fig = _figure(figsize=(max(6.2, 4.6 * len(diagrams)), 5.8), layout="constrained")
    axes = fig.subplots(2, len(diagrams), squeeze=False, height_ratios=(3, 1), sharex=True)
    for (name, diagram), ax, ax_count in zip(diagrams, axes[0], axes[1]):
        edges = np.asarray(diagram["edges"])
        width = np.diff(edges)
        accuracy = np.array([np.nan if a is None else a for a in diagram["accuracy"]])
        confidence = np.array([np.nan if c is None else c for c in diagram["confidence"]])
        ax.bar(edges[:-1], accuracy, width=width, align="edge", color="#4c72b0", edgecolor="white",
               label="accuracy")
        # the gap runs from the bin's accuracy to its mean confidence, over or into the bar
        ax.bar(edges[:-1], confidence - accuracy, bottom=accuracy, width=width, align="edge",
               facecolor=(0.85, 0.2, 0.2, 0.15), edgecolor="#c44e52", hatch="//", linewidth=0.8,
               label="gap to mean confidence")
        ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}\nECE {diagram['ece']:.2%}")
        ax.grid(alpha=0.3)
        ax_count.bar(edges[:-1], diagram["counts"], width=width, align="edge", color="gray")
        ax_count.set_yscale("log")
        ax_count.set_xlabel("top-1 probability")
        ax_count.set_ylabel("examples")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
