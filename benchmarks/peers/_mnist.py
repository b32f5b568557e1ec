"""MNIST from the IDX files in $ZOO_DATA_DIR/mnist, as NumPy arrays: what a tutorial's
`datasets.MNIST(download=True)` or `keras.datasets.mnist.load_data()` gives, without a download
(there is no network here) and without zoo, so that a peer carries none of zoo's code."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np


def _idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): uint8 images (N, 28, 28) and uint8 labels."""
    folder = Path(os.environ.get("ZOO_DATA_DIR", "../shared/data")) / "mnist"
    return tuple(_idx(folder / name) for name in (
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))
