"""Classification metrics from predicted probabilities: accuracy, loss, per-class P/R/F1, confusion,
and the expected calibration error with its reliability bins.

The expected calibration error (ECE) here is the one of Guo et al. (ICML 2017): 15 equal-width
bins of the top-1 probability, (lo, hi], each bin's |accuracy - mean confidence| weighted by
its share of the examples.
"""

from __future__ import annotations

import numpy as np

BINS = 15


def top1(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The predicted class and its probability of each row of (N, C) class probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    return probs.argmax(axis=1), probs.max(axis=1)


def reliability(probs: np.ndarray, y_true: np.ndarray, bins: int = BINS) -> dict:
    """Per bin of the top-1 probability: its edges, how many examples fall in it, their mean
    confidence and their accuracy (None for an empty bin)."""
    predicted, confidence = top1(probs)
    correct = predicted == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin i holds (edges[i], edges[i + 1]]; a top-1 probability is never 0 (it is at least 1/C)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    correct_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    filled = counts > 0
    return {
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "confidence": [float(c / n) if n else None for c, n in zip(conf_sum, counts)],
        "accuracy": [float(a / n) if n else None for a, n in zip(correct_sum, counts)],
        "ece": float(np.abs(correct_sum[filled] - conf_sum[filled]).sum() / max(len(confidence), 1)),
    }


def ece(probs: np.ndarray, y_true: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: sum over bins of (count / N) * |accuracy - mean confidence|."""
    return reliability(probs, y_true, bins)["ece"]



def as_class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """(N, C) probabilities; a single sigmoid column becomes (N, 2)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return np.bincount(n * np.asarray(y_true) + np.asarray(y_pred), minlength=n * n).reshape(n, n)


def classification_metrics(y_true: np.ndarray, outputs: np.ndarray, labels: list[str]) -> dict:
    """The metrics of a run's card: test_accuracy, test_loss (cross-entropy), test_ece (expected
    calibration error, 15 bins), per_class, confusion_matrix."""
    probs = as_class_probabilities(outputs)
    y_true = np.asarray(y_true, dtype=np.int64)
    n = len(labels)
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, n)
    true_p = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = np.divide(true_p, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(true_p, actual, out=np.zeros(n), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n), where=denom > 0)
    picked = np.clip(probs[np.arange(len(y_true)), y_true], 1e-7, 1.0)
    return {
        "test_accuracy": float((y_pred == y_true).mean()),
        "test_loss": float(-np.log(picked).mean()),
        "test_ece": ece(probs, y_true),
        "test_examples": int(len(y_true)),
        "per_class": {
            label: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(actual[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
    }
