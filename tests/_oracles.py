"""Independent oracles the tests compare zoo's answers with: written out plainly, never imported from zoo."""

from __future__ import annotations

import numpy as np


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Guo et al.'s expected calibration error, bin by bin: 15 equal bins (lo, hi] of the top-1
    probability, each |accuracy - mean confidence| weighted by its share of the examples."""
    confidence, predicted, total = probs.max(1), probs.argmax(1), 0.0
    for i in range(bins):
        inside = (confidence > i / bins) & (confidence <= (i + 1) / bins)
        if inside.any():
            total += inside.mean() * abs((predicted[inside] == y[inside]).mean() - confidence[inside].mean())
    return total
