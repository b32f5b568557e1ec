"""Wall time of `zoo --help` and `zoo list` (goal: <= 0.5 s each) and of a prediction with the
pretrained LeNet-5 on a picture of a digit (goal: < 1 s), beside `python -c pass` and `import tensorflow`.

    python benchmarks/cli_startup.py [--repeat 7]

Runs are interleaved; medians are printed with their ratio to bare Python. The prediction
needs no dataset: the picture is a drawn 1, dark ink on a light page, 120×160 pixels.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "zoo --help": [sys.executable, "-m", "zoo.cli", "--help"],
    "zoo summary --help": [sys.executable, "-m", "zoo.cli", "summary", "--help"],
    "zoo list": [sys.executable, "-m", "zoo.cli", "list"],
    "import tensorflow": [sys.executable, "-c", "import tensorflow"],
}
GOAL_S = 0.5
PREDICT_GOAL_S = 1.0


def _digit(folder: Path) -> str:
    import numpy as np
    from PIL import Image

    page = np.full((160, 120), 225, np.uint8)
    page[40:120, 55:63] = 30  # a one, written in dark ink
    path = folder / "one.png"
    Image.fromarray(page).save(path)
    return str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(describe())  # the CPU changes between sessions: compare figures within one run only
    folder = Path(tempfile.mkdtemp())
    CASES["zoo predict lenet5.mnist one.png"] = [sys.executable, "-m", "zoo.cli", "predict", "lenet5.mnist",
                                                 _digit(folder)]
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeat):
        for name, cmd in CASES.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<36}{'median s':>10}{'x python':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<36}{median:>10.3f}{median / base:>10.1f}")
    met = True
    for name, goal in (("zoo --help", GOAL_S), ("zoo list", GOAL_S), ("zoo predict lenet5.mnist one.png", PREDICT_GOAL_S)):
        seconds = statistics.median(times[name])
        met &= seconds <= goal
        print(f"{name} {'meets' if seconds <= goal else 'misses'} the {goal} s goal ({seconds:.3f} s); "
              f"{statistics.median(times['import tensorflow']) / seconds:.1f}x faster than importing TensorFlow")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
