"""The machine a benchmark ran on, in one line: CPU model, the vector flags that decide
TensorFlow's kernels, cores and versions. The CPU changes between sessions here, so every
benchmark prints this first, and figures are compared only within one run."""

from __future__ import annotations

import os
import platform

FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def describe() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    present = [flag for flag in FLAGS if flag in flags] or ["none of " + "/".join(FLAGS)]
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1 (zoo's default)")
    return (f"machine: {model}; flags {' '.join(present)}; {os.cpu_count()} cores; "
            f"python {platform.python_version()}; TF_ENABLE_ONEDNN_OPTS={onednn}")


if __name__ == "__main__":
    print(describe())
