"""The machine a benchmark ran on, in one line: CPU model, the vector flags that decide
TensorFlow's kernels, cores and versions (zoo.machine reads them). The CPU changes between
sessions here, so every benchmark prints this first, and figures are compared only within one run."""

from __future__ import annotations

import os
import platform

from zoo.machine import cpu


def describe() -> str:
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1 (zoo's default)")
    return (f"machine: {cpu().describe()}; python {platform.python_version()}; "
            f"TF_ENABLE_ONEDNN_OPTS={onednn}")


if __name__ == "__main__":
    print(describe())
