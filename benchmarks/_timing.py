"""Per-epoch wall time, shared by the training benchmarks (train_throughput.py, levers.py)."""

from __future__ import annotations

import time


def epoch_timer():
    """A Keras callback that records each epoch's wall time in `.seconds`."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def rate(n: int, seconds: list[float]) -> float:
    """Samples per second over the epochs after the first (which pays for tracing)."""
    later = seconds[1:] or seconds
    return n * len(later) / sum(later)
